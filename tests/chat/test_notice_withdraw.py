"""#撤回 and #更正 in conversation: a notice taken back is announced (with the reason) in every
group that got it and recalled where WeChat still allows it (two minutes); its reminders stop.
A correction goes to the same groups, marked as the correction; receipts carry over unless it
asks for them again. Only the issuing office, or one above it, may do either. The world
(conftest.py): 示范省 P → 甲市 C1 → 乙1–3县 K1–K3 → two schools each."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.rehearsal.stage import Stage
from matrix.tables import ACKNOWLEDGEMENT, DELIVERY, NOTICE
from tests.chat.conftest import (
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    TEACHER,
    audit,
    bot_lines,
)

RELAY_GROUPS = [
    "示范省地市级团委少年部长群",
    "甲市县级少工委负责同志群",
    "乙1县少先队大队辅导员群",
    "乙2县少先队大队辅导员群",
    "乙3县少先队大队辅导员群",
]
TEXT = "#通知 截止 17:00 请于今天17:00前报送建群情况"


def notify(stage: Stage) -> None:
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, TEXT)


def states(stage: Stage, kind: str = "notice") -> dict[str, int]:
    with stage.engine.connect() as conn:
        rows = conn.execute(
            select(DELIVERY.c.state, func.count())
            .where(DELIVERY.c.kind == kind)
            .group_by(DELIVERY.c.state)
        ).all()
    return dict(rows)


def recalled(stage: Stage, code: str) -> list[bool]:
    return [m.recalled for m in stage.world.messages() if m.text.startswith(f"【通知 {code}】")]


# --- #撤回 -------------------------------------------------------------------------------------


def test_a_withdrawal_is_announced_everywhere_the_notice_went_and_recalls_it(stage):
    notify(stage)
    reply, *told = bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1 时间写错了"))
    assert reply.text == (
        "已撤回通知 T1；将在已收到的 5 个群发出撤回说明，提醒和截止通报一并取消。"
    )
    assert [line.group for line in told] == RELAY_GROUPS
    assert all(
        line.text
        == "【撤回】示范省已撤回通知 T1，理由：时间写错了。\n原通知已从本群撤回，无需回复。"
        for line in told
    )
    assert recalled(stage, "T1") == [True] * 5
    [logged] = audit(stage, "relay.withdraw")
    assert (logged["actor"], logged["notice"], logged["reason"]) == (
        PROVINCE_OFFICE,
        "T1",
        "时间写错了",
    )
    # no reminder, no escalation: the day runs out in silence
    assert bot_lines(stage.say(K1_GROUP, K1_OFFICE, "<快进 17:30>")) == []
    progress = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T1")
    assert "状态：已于 11月24日 09:00 撤回，理由：时间写错了" in progress


def test_too_late_to_recall_the_groups_are_asked_to_ignore_it(stage):
    notify(stage)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<快进 10分钟>")
    told = bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1"))[1:]
    assert told[0].text == (
        "【撤回】示范省已撤回通知 T1。\n请忽略上面的通知 T1，无需回复“收到 T1”。"
    )
    assert recalled(stage, "T1") == [False] * 5


def test_a_higher_office_may_withdraw_a_county_notice_but_not_the_other_way(stage):
    stage.say(K1_GROUP, K1_OFFICE, "#通知 明天开会")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, TEXT)  # T2
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#撤回 T2 不对")
    assert reply == (
        "通知 T2 由示范省发出，只有示范省或其上级单位的办公室同志可以撤回。请联系示范省办公室。"
    )
    assert audit(stage, "relay.withdraw") == []
    lines = bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1 县里通知有误"))
    assert lines[0].text.startswith("已撤回通知 T1")
    assert [line.group for line in lines[1:]] == ["乙1县少先队大队辅导员群"]


@pytest.mark.parametrize(
    "text, says",
    [
        ("#撤回 T9", "没有编号为 T9 的通知。请核对通知编号（如 T12）。"),
        ("#撤回", "缺少通知编号。\n用法：#撤回 <通知编号> [理由]"),
        ("#撤回 理由", "“理由”不是有效的通知编号，应写成 T12 这样。"),
        ("#撤回 T1 " + "很" * 201, "撤回理由超过 200 字。请写得简短些。"),
        ("#撤回 T1 附件机密", "撤回正文含有“机密”字样，可能涉密，已拦截，未发送。"),
    ],
)
def test_bad_withdrawals_say_what_was_wrong_and_change_nothing(stage, text, says):
    notify(stage)
    assert says in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, text)
    assert audit(stage, "relay.withdraw") == []
    assert states(stage, "withdraw") == {}


def test_a_notice_is_withdrawn_once(stage):
    notify(stage)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1")
    assert stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1") == "通知 T1 已撤回。无需重复。"
    assert states(stage, "withdraw") == {"sent": 5}


def test_a_receipt_for_a_withdrawn_notice_is_not_recorded(stage):
    notify(stage)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1")
    assert bot_lines(stage.say(K1_GROUP, TEACHER, "收到")) == []  # said all day: no answer
    assert stage.reply(K1_GROUP, TEACHER, "#收到 T1") == (
        "通知 T1 已撤回，无需回执。请以发文单位的最新通知为准。"
    )
    with stage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ACKNOWLEDGEMENT)).scalar_one() == 0


def test_a_bare_receipt_skips_a_withdrawn_notice_for_the_one_still_standing(stage):
    notify(stage)  # T1
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 截止 17:00 第二件事")  # T2
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T2")
    assert stage.reply(K1_GROUP, TEACHER, "收到") == "已记录 乙1县第1小学 收到通知 T1。"


# --- #更正 -------------------------------------------------------------------------------------


def test_a_correction_goes_to_the_same_groups_and_receipts_carry_over(stage):
    notify(stage)
    assert stage.reply(K1_GROUP, TEACHER, "收到") == "已记录 乙1县第1小学 收到通知 T1。"
    lines = bot_lines(
        stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 请于今天17:00前报送建队情况")
    )
    reply, copies = lines[0], lines[1:]
    assert reply.text.startswith(
        "更正通知 T2（更正 T1）已受理，将发往原通知的 5 个群（省级 1 个，市级 1 个，县级 3 个）。"
    )
    assert reply.text.endswith(
        "原通知 T1 尚未发出的部分不再发送，其提醒一并取消。已回执原通知的 1 个单位无需再回复。"
    )
    assert [line.group for line in copies] == RELAY_GROUPS
    assert copies[2].text == (
        "【更正 T2】示范省\n（更正通知 T1，以本通知为准）\n请于今天17:00前报送建队情况\n——\n"
        "截止：11月24日 17:00\n已回复“收到 T1”的单位无需再回复；其他单位请在本群回复“收到 T2”确认。"
    )
    progress = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T2")
    assert "本通知是 T1 的更正" in progress and "回执 1/10 个单位" in progress
    assert "乙1县第1小学" not in progress  # its 收到 T1 counts
    assert "已由更正通知 T2 取代" in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T1")
    # a bare 收到 now answers the correction
    assert stage.reply(K1_GROUP, "wxK1S2n015", "收到") == "已记录 乙1县第2小学 收到通知 T2。"
    # the reminders are the correction's only; 乙1县's group owes nothing (one school said
    # 收到 to T1, the other to T2), so it is not reminded
    reminders = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "<快进 15:00>"))
    assert reminders and all("通知 T2" in r.text for r in reminders)
    assert "乙1县少先队大队辅导员群" not in [r.group for r in reminders]
    [logged] = audit(stage, "relay.correct")
    assert (logged["notice"], logged["correction"], logged["carried"]) == ("T1", "T2", 1)


def test_a_late_receipt_of_the_original_counts_for_the_correction_too(stage):
    notify(stage)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 请于今天17:00前报送建队情况")
    # the correction says 已回复“收到 T1”的单位无需再回复: a school that answers T1 now is done
    assert stage.reply(K1_GROUP, TEACHER, "收到 T1") == "已记录 乙1县第1小学 收到通知 T1。"
    assert "乙1县第1小学" not in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T2")
    with stage.engine.connect() as conn:
        acks = conn.execute(
            select(ACKNOWLEDGEMENT.c.notice_id).where(ACKNOWLEDGEMENT.c.unit_code == "K1S1")
        ).scalars()
        assert sorted(acks) == [1, 2]


def test_a_correction_may_ask_every_unit_again(stage):
    notify(stage)
    stage.say(K1_GROUP, TEACHER, "收到")
    reply = bot_lines(
        stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 需回执 改为报送建队情况")
    )[0]
    assert reply.text.endswith("各单位请回复“收到 T2”。")
    with stage.engine.connect() as conn:
        acks = conn.execute(
            select(func.count()).where(ACKNOWLEDGEMENT.c.notice_id == 2)
        ).scalar_one()
    assert acks == 0


def test_a_correction_of_someone_elses_notice_is_refused_and_nothing_goes(stage):
    notify(stage)
    stage.say(CITY_GROUP, CITY_OFFICE, "<加入>")
    reply = stage.reply(CITY_GROUP, CITY_OFFICE, "#更正 T1 新的正文")
    assert reply == (
        "通知 T1 由示范省发出，只有示范省或其上级单位的办公室同志可以更正。请联系示范省办公室。"
    )
    with stage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(NOTICE)).scalar_one() == 1
        assert conn.execute(select(NOTICE.c.state)).scalar_one() == "live"


@pytest.mark.parametrize(
    "text, says",
    [
        ("#更正 T1", "缺少新正文。\n用法：#更正 <通知编号> <新正文>"),
        ("#更正 T9 新的正文", "没有编号为 T9 的通知。"),
        ("#更正 T1 截止 8:00 新的正文", "截止时间 11月24日 08:00 已经过去。"),
        ("#更正 T1 定时 明天 8:00 新的正文", "更正随即发出，不能定时。"),
    ],
)
def test_bad_corrections_say_what_was_wrong_and_change_nothing(stage, text, says):
    notify(stage)
    assert says in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, text)
    with stage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(NOTICE)).scalar_one() == 1


def test_a_withdrawn_notice_cannot_be_corrected(stage):
    notify(stage)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 新的正文")
    assert reply == "通知 T1 已撤回。无需重复。"


def test_the_notice_table_shows_both(stage):
    notify(stage)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 新的正文")
    table = stage.replies(PROVINCE_GROUP, PROVINCE_OFFICE, "#汇总 通知")[0]
    assert "· T2（更正 T1） 示范省" in table
    assert "· T1（已由 T2 更正） 示范省" in table
