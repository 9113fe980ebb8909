"""Scheduled and recurring notices in conversation: ``定时 明天 8:00`` holds the notice until
then (listed by #进度, cancelled by #撤回), ``每周五 9:00`` sends a notice of its own every
Friday until #停止. The stage's clock starts on Tuesday 24 November 2026, 09:00 (Beijing)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from bot.rehearsal.stage import Line, Stage
from matrix.tables import DELIVERY, NOTICE, PERSON, POSITION, RELAY_JOB, UNIT
from tests.chat.conftest import (
    K1_GROUP,
    K1_OFFICE,
    MORNING,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    audit,
    bot_lines,
)

TZ = MORNING.tzinfo
TOMORROW_8 = datetime(2026, 11, 25, 8, 0, tzinfo=TZ)


def copies(stage: Stage) -> int:
    with stage.engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(DELIVERY.c.kind == "notice", DELIVERY.c.state == "sent")
        ).scalar_one()


def headers(lines: list[Line]) -> list[str]:
    return [line.text.split("\n")[0] for line in bot_lines(lines)]


# --- 定时 --------------------------------------------------------------------------------------


def test_a_scheduled_notice_waits_and_goes_out_at_its_time(stage):
    reply = stage.reply(
        PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 定时 明天 8:00 截止 17:00 请报送周报"
    )
    assert reply.startswith(
        "通知 T1 已受理，将于 11月25日 08:00 定时发往 5 个群（省级 1 个，市级 1 个，县级 3 个）。"
    )
    assert "截止 11月25日 17:00" in reply and reply.endswith("发送“#撤回 T1”可取消。")
    assert copies(stage) == 0
    progress = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度")
    assert "状态：定时 11月25日 08:00 发送，尚未发出" in progress and "送达" not in progress
    assert [e["state"] for e in audit(stage, "relay.notice")] == ["scheduled"]

    assert bot_lines(stage.advance(datetime(2026, 11, 25, 7, 59, tzinfo=TZ))) == []
    sent = stage.advance(TOMORROW_8)
    assert headers(sent) == ["【通知 T1】示范省"] * 5
    assert copies(stage) == 5
    # the reminders count back from the deadline of the day it went out
    reminders = bot_lines(stage.advance(datetime(2026, 11, 25, 15, 0, tzinfo=TZ)))
    assert reminders and reminders[0].text.startswith(
        "【提醒】通知 T1（示范省）将于 11月25日 17:00"
    )
    # and it went once
    stage.advance(datetime(2026, 11, 26, 9, 0, tzinfo=TZ))
    assert copies(stage) == 5


def test_progress_lists_the_notices_still_waiting(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 定时 明天 8:00 请报送周报")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 今天的通知")  # T2, at once
    assert "本群还有待发的通知：T1" in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T2")


def test_a_withdrawn_scheduled_notice_never_goes(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 定时 明天 8:00 请报送周报")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1")
    assert reply == "已取消通知 T1（定时通知），它没有发出。"
    assert bot_lines(stage.advance(datetime(2026, 11, 25, 9, 0, tzinfo=TZ))) == []
    assert copies(stage) == 0
    with stage.engine.connect() as conn:
        assert conn.execute(select(RELAY_JOB.c.state)).scalars().all() == ["cancelled"]


def test_a_scheduled_notice_corrected_before_it_goes_goes_with_the_new_text(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 定时 明天 8:00 请报送周报")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#更正 T1 请报送月报")
    assert reply == "通知 T1 还没有发出，已改为新的正文，发出时以新正文为准。"
    sent = bot_lines(stage.advance(TOMORROW_8))
    assert sent and all(line.text.split("\n")[1] == "请报送月报" for line in sent)


@pytest.mark.parametrize(
    "text, says",
    [
        ("#通知 定时 8:00 开会", "定时 11月24日 08:00 已经过去。请写一个将来的时间"),
        ("#通知 定时 开会", "定时后面缺少时间。请这样写：定时 明天 8:00"),
        ("#通知 定时 25:00 开会", "时间 25:00 不存在。"),
        (
            "#通知 定时 明天 8:00 截止 7:00 开会",
            "截止时间 11月25日 07:00 早于发送时间 11月25日 08:00",
        ),
        ("#通知 定时 明天 8:00 每周五 9:00 开会", "定时和每周重复只能选一个。"),
        ("#通知 每周五 开会", "每周重复缺少时间。"),
    ],
)
def test_bad_times_are_refused_and_nothing_is_written(stage, text, says):
    assert says in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, text)
    with stage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(NOTICE)).scalar_one() == 0


# --- 每周五 9:00 ---------------------------------------------------------------------------------


def test_a_weekly_notice_goes_every_friday_until_stopped(stage):
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 每周五 9:00 无需回执 请报送周报")
    assert reply.startswith(
        "通知 T1 已受理，将于每周五 09:00 发往 5 个群（省级 1 个，市级 1 个，县级 3 个），"
        "首次 11月27日 09:00。"
    )
    assert reply.endswith("发送“#停止 T1”停止重复。")
    first = stage.advance(datetime(2026, 11, 27, 9, 0, tzinfo=TZ))
    assert headers(first) == ["【通知 T2】示范省"] * 5  # each time a notice of its own
    second = stage.advance(datetime(2026, 12, 4, 9, 0, tzinfo=TZ))
    assert headers(second) == ["【通知 T3】示范省"] * 5
    assert "本通知是重复通知 T1 的一次" in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T3")
    progress = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T1")
    assert "状态：每周五 09:00 重复发送，已发 2 次，下次 12月11日 09:00" in progress

    stopped = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#停止 T1")
    assert stopped == "已停止重复通知 T1（每周五 09:00），此前共发出 2 次，已发出的仍可查看进度。"
    assert bot_lines(stage.advance(datetime(2026, 12, 18, 10, 0, tzinfo=TZ))) == []
    assert copies(stage) == 10
    assert [e["notice"] for e in audit(stage, "relay.stop")] == ["T1"]
    # stopping an occurrence stops its series; a second #停止 says it is done
    assert (
        stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#停止 T2") == "通知 T1 已经停止。无需重复。"
    )


def test_stop_is_for_recurring_notices_and_their_office(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 每天 8:00 请报日报")
    stage.say(K1_GROUP, K1_OFFICE, "#通知 县里开会 无需回执")  # T2
    assert stage.reply(K1_GROUP, K1_OFFICE, "#停止 T2") == (
        "通知 T2 不是重复发送的通知。要收回已发的通知，请发送“#撤回 T2”。"
    )
    assert stage.reply(K1_GROUP, K1_OFFICE, "#停止 T1") == (
        "通知 T1 由示范省发出，只有示范省或其上级单位的办公室同志可以停止。请联系示范省办公室。"
    )
    assert "没有编号为 T9 的通知" in stage.reply(K1_GROUP, K1_OFFICE, "#停止 T9")
    sent = stage.advance(datetime(2026, 11, 25, 8, 0, tzinfo=TZ))
    assert headers(sent) == ["【通知 T3】示范省"] * 5  # T1 still runs


def test_a_scheduled_notice_that_can_no_longer_go_ends_instead_of_failing_every_tick(stage):
    stage.say(K1_GROUP, K1_OFFICE, "#通知 定时 明天 8:00 请报送周报")
    with stage.engine.begin() as conn:  # 乙1县 and its schools leave the roster meanwhile
        conn.execute(UNIT.update().where(UNIT.c.code.startswith("K1")).values(removed_at=MORNING))
    [told] = bot_lines(stage.advance(TOMORROW_8))
    assert (told.group, told.text.split("：")[0]) == (
        "乙1县少先队大队辅导员群",
        "【提醒】定时通知 T1 未能发出，已取消",
    )
    assert "不在名册" in told.text
    with stage.engine.connect() as conn:
        state, reason = conn.execute(select(NOTICE.c.state, NOTICE.c.reason)).one()
    assert state == "withdrawn" and "不在名册" in reason
    assert bot_lines(stage.advance(datetime(2026, 11, 26, 9, 0, tzinfo=TZ))) == []  # told once
    # the relay goes on: the province's notice still goes out
    assert len(bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 明天开会"))) == 5


def test_a_scheduled_notice_whose_issuer_left_the_office_does_not_go(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 定时 明天 8:00 请报送周报")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 每周五 9:00 请报送周报")
    with stage.engine.begin() as conn:  # a roster re-import ended the issuer's office post
        person = conn.execute(
            select(PERSON.c.id).where(PERSON.c.wechat_id == PROVINCE_OFFICE)
        ).scalar_one()
        conn.execute(POSITION.delete().where(POSITION.c.person_id == person))
    [told] = bot_lines(stage.advance(TOMORROW_8))
    assert told.text.startswith("【提醒】定时通知 T1 未能发出，已取消：发文人")
    assert "已不是示范省办公室人员" in told.text
    assert copies(stage) == 0
    friday = bot_lines(stage.advance(datetime(2026, 11, 27, 9, 0, tzinfo=TZ)))
    assert [line.text.split("：")[0] for line in friday] == ["【提醒】定时通知 T2 未能发出，已取消"]
    assert copies(stage) == 0
    with stage.engine.connect() as conn:
        assert set(conn.execute(select(NOTICE.c.state)).scalars()) == {"withdrawn"}
