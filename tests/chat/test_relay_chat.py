"""The same-day relay in conversation: a notice goes down to every relay group, child units say
收到, offices follow #进度, the stage clock runs on to the reminders and the deadline, the guard
blocks, reports go up. The world (conftest.py) is 示范省 P → 甲市 C1 → 乙1–3县 K1–K3 → two
schools each; the stage's clock starts at 09:00 on 2026-11-24 (Beijing)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.rehearsal.stage import Line, Stage, StageError
from matrix.models import Delivery, Notice
from matrix.relay import RelayOptions
from tests.chat.conftest import (
    BUILD_DAY,
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    K2_GROUP,
    K2_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    STRANGER,
    TEACHER,
    audit,
    bot_lines,
)

CITY_HEAD = "wxC1n006"  # 甲市's youth_dept_head: in the province group for 甲市
K1_LEAGUE = "wxK1n010"  # 乙1县's league staff: in the city group for 乙1县
TEACHER_2 = "wxK1S2n015"  # brigade counselor of 乙1县第2小学
NOTICE = "#通知 截止 17:00 请于今天17:00前报送建群情况"
COPY = (
    "【通知 T1】示范省\n请于今天17:00前报送建群情况\n——\n截止：11月24日 17:00\n"
    "请各单位负责同志在本群回复“收到 T1”确认。"
)
RELAY_GROUPS = [
    "示范省地市级团委少年部长群",
    "甲市县级少工委负责同志群",
    "乙1县少先队大队辅导员群",
    "乙2县少先队大队辅导员群",
    "乙3县少先队大队辅导员群",
]


def notify(stage: Stage) -> list[Line]:
    """The province office sends the day's notice (T1) from its own group."""
    return bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, NOTICE))


def deliveries(stage: Stage) -> dict[str, int]:
    d = Delivery.__table__  # type: ignore[attr-defined]
    with stage.engine.connect() as conn:
        return dict(conn.execute(select(d.c.state, func.count()).group_by(d.c.state)).all())


# --- #通知: down to every relay group below, the same day ---------------------------------------


def test_a_notice_reaches_every_relay_group_below_with_its_header(stage):
    plan, *sent = notify(stage)
    assert plan.group == "示范省地市级团委少年部长群"
    assert plan.text.startswith(
        "通知 T1 已受理，将发往 5 个群（省级 1 个，市级 1 个，县级 3 个），自上而下逐级发送。"
    )
    assert "截止 11月24日 17:00，请各单位回复“收到 T1”" in plan.text
    assert "将于 11月24日 15:00、11月24日 16:30 提醒未回执的单位" in plan.text
    assert [line.group for line in sent] == RELAY_GROUPS  # top-down, one copy each
    assert all(line.text == COPY for line in sent)
    assert deliveries(stage) == {"sent": 5}
    [logged] = audit(stage, "relay.notice")
    assert (logged["actor"], logged["unit"], logged["groups"]) == (PROVINCE_OFFICE, "P", 5)
    assert audit(stage, "command.notice")[0]["notice"] == "T1"


def test_the_copies_are_confirmed_by_the_platforms_echo(stage):
    notify(stage)
    d = Delivery.__table__  # type: ignore[attr-defined]
    with stage.engine.connect() as conn:
        confirmed = conn.execute(select(d.c.confirmed_at, d.c.message_id)).all()
    assert len(confirmed) == 5 and all(at is not None and mid for at, mid in confirmed)


def test_a_county_notice_goes_only_to_its_own_groups(stage):
    [plan, sent] = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "#通知 明天上午开会 无需回执"))
    assert "将发往 1 个群（县级 1 个）" in plan.text and "收到" not in plan.text
    assert sent.group == "乙1县少先队大队辅导员群" and "本通知无需回执。" in sent.text


# --- 收到 and #进度 -----------------------------------------------------------------------------


def test_receipts_from_child_units_count_and_progress_names_the_laggards(stage):
    notify(stage)
    assert stage.reply(PROVINCE_GROUP, CITY_HEAD, "收到") == "已记录 甲市 收到通知 T1。"
    assert stage.reply(CITY_GROUP, K1_LEAGUE, "收到 T1。") == "已记录 乙1县 收到通知 T1。"
    assert stage.reply(K1_GROUP, TEACHER, "收到T1") == "已记录 乙1县第1小学 收到通知 T1。"
    # a second 收到 without # is chat, and stays unanswered; with # it is answered
    assert stage.replies(K1_GROUP, TEACHER, "收到") == []
    assert stage.reply(K1_GROUP, TEACHER, "#收到") == "乙1县第1小学 已回执过通知 T1，无需重复。"

    progress = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度")
    assert progress.startswith("通知 T1（示范省）进度\n截止 11月24日 17:00")
    assert "送达 5/5 个群，回执 3/10 个单位" in progress
    assert "· 县：群 3/3，回执 1/3\n  未回执：乙2县、乙3县" in progress
    assert "· 学校：回执 1/6\n  未回执：乙1县第2小学、乙2县第1小学" in progress


def test_a_county_office_sees_its_own_part_of_a_higher_notice(stage):
    notify(stage)
    stage.say(K1_GROUP, TEACHER, "收到")
    progress = stage.reply(K1_GROUP, K1_OFFICE, "#进度 T1")
    assert progress.startswith("通知 T1（示范省）进度：乙1县范围")
    assert "送达 1/1 个群，回执 1/3 个单位" in progress
    assert "乙2县" not in progress


def test_the_issuing_unit_itself_does_not_acknowledge(stage):
    notify(stage)
    assert stage.replies(PROVINCE_GROUP, PROVINCE_OFFICE, "收到") == []
    assert "只有示范省下属单位的人员回复“收到”才计为回执" in stage.reply(
        PROVINCE_GROUP, PROVINCE_OFFICE, "#收到"
    )


# --- the stage clock: reminders before the deadline, escalation at it -------------------------


def test_reminders_mention_the_laggards_and_the_deadline_escalates(stage):
    notify(stage)
    stage.say(PROVINCE_GROUP, CITY_HEAD, "收到")
    stage.say(K1_GROUP, TEACHER, "收到")

    reminders = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "<快进 15:00>"))
    assert [r.group for r in reminders] == RELAY_GROUPS[1:]  # 甲市 answered in the province group
    k1 = reminders[1]
    assert k1.text.startswith("【提醒】通知 T1（示范省）将于 11月24日 17:00 截止，还有约 2 小时。")
    assert "以下单位尚未回执：乙1县第2小学。" in k1.text
    assert k1.mentions == (TEACHER_2,)
    assert reminders[0].mentions == ("wxK1n010", "wxK2n020", "wxK3n030")

    stage.say(K1_GROUP, TEACHER_2, "收到")  # 乙1县 is complete before the last round
    last = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "<快进 16:59>"))
    assert [r.group for r in last] == [RELAY_GROUPS[1], *RELAY_GROUPS[3:]]
    assert "还有 30 分钟" in last[0].text

    deadline = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "<快进 17:00>"))
    by_group = {line.group: line.text for line in deadline}
    assert by_group["甲市县级少工委负责同志群"].startswith(
        "【截止通报】通知 T1（示范省）已于 11月24日 17:00 截止。\n"
        "甲市下属仍有 7 个单位未回执（县 3 个，学校 4 个）"
    )
    assert "乙2县下属仍有 2 个单位未回执" in by_group["乙2县少先队大队辅导员群"]
    assert "乙1县少先队大队辅导员群" not in by_group  # nothing left owing there
    final = by_group["示范省地市级团委少年部长群"]
    assert final.startswith("【截止通报】通知 T1（示范省）进度")
    assert "回执 3/10 个单位" in final and final.endswith("请各单位督促未回执单位尽快回复。")
    # a 收到 after the deadline still counts, and says it was late
    assert (
        stage.reply(CITY_GROUP, "wxK2n020", "收到") == "已记录 乙2县 收到通知 T1（已过截止时间）。"
    )


def test_no_reminders_for_a_notice_without_receipts(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 无需回执 周五放假")
    assert bot_lines(stage.say(K1_GROUP, K1_OFFICE, "<快进 23:59>")) == []


def test_fast_forward_needs_a_real_time(stage):
    with pytest.raises(StageError, match="没有 25:00 这个时间"):
        stage.say(K1_GROUP, K1_OFFICE, "<快进 25:00>")


# --- the content guard and the watch list ------------------------------------------------------


def test_a_classified_notice_is_blocked_with_a_reason_and_audited(stage):
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 附件为机 密文件，请各校传达")
    assert reply == (
        "通知正文含有“机密”字样，可能涉密，已拦截，未发送。"
        "群内不得发布涉密信息；请删改后重发，如确非涉密内容请联系管理员调整词表。"
    )
    assert deliveries(stage) == {}
    [blocked] = audit(stage, "relay.blocked")
    assert (blocked["actor"], blocked["what"], blocked["marker"]) == (
        PROVINCE_OFFICE,
        "通知",
        "机密",
    )
    assert "传达" not in str(blocked)  # the text itself is never kept
    with stage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Notice)).scalar() == 0


def test_a_classified_report_is_blocked_too(stage):
    reply = stage.reply(K1_GROUP, TEACHER, "#上报 绝密：考试安排")
    assert reply.startswith("上报正文含有“绝密”字样，可能涉密，已拦截，未发送。")
    assert audit(stage, "relay.blocked")[0]["what"] == "上报"


def test_the_watch_list_flags_ordinary_chat_to_the_admins(province_db, bp):
    options = RelayOptions(watch_words=["罢课"], watch_limit=1)
    with Stage(province_db, bp, accounts=("bot-1",), relay=options, start=BUILD_DAY) as stage:
        stage.provision()
        [flag] = stage.replies(K1_GROUP, TEACHER, "听说明天有人要罢 课")
        assert flag.startswith(
            "【舆情提示】“乙1县少先队大队辅导员群”中 K1S1大辅 的消息含关注词“罢课”"
        )
        line = bot_lines(stage.say(K2_GROUP, "wxK2S1n022", "罢课的事大家别传"))[0]
        assert set(line.mentions) == {"wxK2n018", "wxK2n019"}  # 乙2县's office
        # the window's one alert is used up: recorded, not repeated
        assert stage.replies(K1_GROUP, TEACHER, "罢课？") == []
        assert stage.replies(K1_GROUP, TEACHER, "大家好") == []


# --- reports up: #上报 and #转报 -----------------------------------------------------------------


def test_a_report_goes_up_and_is_forwarded_one_level_at_a_time(stage):
    notify(stage)
    # 乙1县 has no group of its own: the report goes privately to its two office staff
    receipt, *sent = bot_lines(stage.say(K1_GROUP, TEACHER, "#上报 我校已完成建队仪式"))
    assert receipt.text.startswith("已上报乙1县办公室（已私信 2 位办公室同志")
    assert [x.group for x in sent] == ["私聊:wxK1n008", "私聊:wxK1n009"]
    assert sent[0].text.startswith(
        "【上报 R1】\n来自：乙1县第1小学 K1S1大辅（乙1县少先队大队辅导员群）"
    )
    assert sent[0].text.endswith("如需继续上报，请发送“#转报 R1”。")

    lines = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "#转报 R1"))
    assert [(x.group, x.text.split("\n")[0][:27]) for x in lines] == [
        ("乙1县少先队大队辅导员群", "已将上报 R1（乙1县第1小学 K1S1大辅）转报甲市"),
        ("私聊:wxC1n004", "【上报 R1】乙1县转报"),
        ("私聊:wxC1n005", "【上报 R1】乙1县转报"),
    ]
    assert "现在在甲市，只有该单位办公室同志可以转报" in stage.reply(
        K1_GROUP, K1_OFFICE, "#转报 R1"
    )
    lines = bot_lines(stage.say(CITY_GROUP, CITY_OFFICE, "#转报 r1"))
    assert lines[-1].group == "私聊:wxPn002"  # the province office, privately
    assert "· R1 乙1县第1小学 K1S1大辅：我校已完成建队仪式（现在示范省）" in stage.reply(
        PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T1"
    )
    assert [e["report"] for e in audit(stage, "relay.report_forward")] == ["R1", "R1"]


# --- who may do what ---------------------------------------------------------------------------


def test_a_county_office_cannot_notify_another_county(stage):
    stage.say(K1_GROUP, K2_OFFICE, "<加入>")
    reply = stage.reply(K1_GROUP, K2_OFFICE, "#通知 明天开会")
    assert reply == "乙1县（K1） 不在你所在单位的管辖范围内，不能对其使用 #通知。"
    [denied] = audit(stage, "command.denied")
    assert (denied["actor"], denied["unit"], denied["reason"]) == (K2_OFFICE, "K1", "outside")
    assert deliveries(stage) == {}


def test_a_higher_office_notifies_from_its_own_group(stage):
    stage.say(K1_GROUP, PROVINCE_OFFICE, "<加入>")
    reply = stage.reply(K1_GROUP, PROVINCE_OFFICE, "#通知 明天开会")
    assert reply.startswith("只有乙1县的办公室同志可以在本群下发通知")
    assert deliveries(stage) == {}


@pytest.mark.parametrize("text", ["#通知 明天开会", "#进度 T1", "#转报 R1"])
def test_a_school_counselor_is_no_office(stage, text):
    reply = stage.reply(K1_GROUP, TEACHER, text)
    assert reply.startswith("只有单位办公室（群管理员）可以使用 #")


def test_a_stranger_neither_acknowledges_nor_reports(stage):
    notify(stage)
    stage.say(K1_GROUP, STRANGER, "<加入>")
    assert stage.replies(K1_GROUP, STRANGER, "收到") == []
    assert "还没有绑定名册" in stage.reply(K1_GROUP, STRANGER, "#上报 你好")


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, says",
    [
        ("#通知 截止 25:00 开会", "时间 25:00 不存在。请这样写：截止 17:00"),
        ("#通知 截止 8:00 开会", "截止时间 11月24日 08:00 已经过去。请写一个将来的时间"),
        ("#通知 截止", "截止后面缺少时间。请这样写：截止 17:00"),
        ("#通知 截止 17:00", "通知没有正文。请这样发送：#通知 截止 17:00 正文内容。"),
        (
            "#进度 X9",
            "“X9”不是有效的通知编号，应写成 T12 这样。\n用法：#进度 [通知编号] [填报编号]",
        ),
        ("#进度 T99", "没有编号为 T99 的通知。请核对通知编号（如 T12）。"),
        ("#进度", "本群还没有下发或收到过通知。下发通知后再查看进度，或写上编号：#进度 T12。"),
        ("#转报", "缺少上报编号。\n用法：#转报 <上报编号>\n例如：#转报 R5"),
        ("#转报 T3", "“T3”不是有效的上报编号，应写成 R5 这样。"),
        ("#转报 R99", "没有编号为 R99 的上报。请核对编号。"),
        ("#上报", "缺少内容。\n用法：#上报 <内容>"),
        ("#收到 T1 谢谢", "命令后面多了“谢谢”。"),
    ],
)
def test_bad_input_says_what_was_wrong(stage, text, says):
    assert says in stage.reply(K1_GROUP, K1_OFFICE, text)


def test_chat_that_only_starts_like_a_receipt_is_left_alone(stage):
    notify(stage)
    for text in ("收到 谢谢大家", "收到了", "收到，马上办"):
        assert stage.replies(K1_GROUP, TEACHER, text) == []


def test_help_lists_the_relay_commands_as_open(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#帮助")
    for name in ("#通知（notice）", "#收到（ack）", "#进度（status）", "#上报（report）"):
        line = next(x for x in reply.split("\n") if x.startswith(name))
        assert "即将开放" not in line
    assert "#转报（forward）" in reply
    assert "例如：#转报 R5" in stage.reply(K1_GROUP, K1_OFFICE, "#帮助 转报")
