"""A notice to many groups is shown first and goes out on #确认 from the same person within
ten minutes; a small one goes at once. The stage (conftest.py) has five relay groups below the
province, so here a notice to more than two groups (``confirm_above = 2``) is a large one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from bot.rehearsal.stage import Stage
from matrix.blueprint import Blueprint
from matrix.relay import RelayOptions
from matrix.tables import DELIVERY, NOTICE
from tests.chat.conftest import (
    BUILD_DAY,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    audit,
)

OTHER_PROVINCE_OFFICE = "wxPn002"  # the province office's second staff member
ASKED = "#通知 截止 17:00 请于今天17:00前报送建群情况"


@pytest.fixture
def stage(province_db: Engine, bp: Blueprint, tmp_path: Path) -> Iterator[Stage]:
    options = RelayOptions(confirm_above=2)
    with Stage(province_db, bp, accounts=("bot-1",), relay=options, start=BUILD_DAY) as s:
        s.provision()
        yield s


def copies(stage: Stage) -> int:
    with stage.engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(DELIVERY.c.kind == "notice", DELIVERY.c.state == "sent")
        ).scalar_one()


def state(stage: Stage, notice_id: int) -> str:
    with stage.engine.connect() as conn:
        return conn.execute(select(NOTICE.c.state).where(NOTICE.c.id == notice_id)).scalar_one()


def test_a_large_notice_shows_its_plan_and_goes_out_on_confirm(stage):
    [plan] = stage.replies(PROVINCE_GROUP, PROVINCE_OFFICE, ASKED)
    assert plan.startswith(
        "通知 T1 将发往 5 个群（省级 1 个，市级 1 个，县级 3 个）。群数较多，请先核对，确认后才发出。"
    )
    assert "预计 5 秒内发完" in plan and "截止 11月24日 17:00" in plan
    assert plan.endswith("请核对后在 11月24日 09:10 前发送“#确认 T1”，逾期作废；不发则不下发。")
    assert copies(stage) == 0 and state(stage, 1) == "held"

    lines = [x for x in stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#确认") if x.by_bot]
    assert lines[0].text.startswith("通知 T1 已确认，将发往 5 个群")
    assert "将于 11月24日 15:00、11月24日 16:30 提醒未回执的单位" in lines[0].text
    assert [x.text.split("\n")[0] for x in lines[1:]] == ["【通知 T1】示范省"] * 5
    assert copies(stage) == 5 and state(stage, 1) == "live"
    assert [e["notice"] for e in audit(stage, "relay.confirm")] == ["T1"]
    # confirmed once: a second #确认 has nothing left to send
    assert "通知 T1 不在等待确认" in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#确认 T1")
    assert copies(stage) == 5


def test_a_small_notice_goes_at_once(stage):
    [plan, sent] = stage.replies(K1_GROUP, K1_OFFICE, "#通知 明天上午开会")
    assert plan.startswith("通知 T1 已受理，将发往 1 个群（县级 1 个）")
    assert sent.startswith("【通知 T1】乙1县")


def test_only_the_issuer_confirms(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, ASKED)
    reply = stage.reply(PROVINCE_GROUP, OTHER_PROVINCE_OFFICE, "#确认")
    assert reply == (
        "只有发出通知 T1 的Poffice_staff0本人可以确认发送。请由发出通知的同志发送“#确认 T1”。"
    )
    assert copies(stage) == 0 and state(stage, 1) == "held"


def test_an_office_from_elsewhere_is_refused_before_anything(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, ASKED)
    stage.say(PROVINCE_GROUP, CITY_OFFICE, "<加入>")
    reply = stage.reply(PROVINCE_GROUP, CITY_OFFICE, "#确认 T1")
    assert "不在你所在单位的管辖范围内" in reply
    assert copies(stage) == 0


def test_a_late_confirm_is_refused_and_nothing_goes(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, ASKED)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "<快进 11分钟>")
    reply = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#确认")
    assert reply == (
        "通知 T1 已超过 10 分钟未确认，已作废，没有发出。如仍需下发，请重新发送 #通知。"
    )
    assert copies(stage) == 0 and state(stage, 1) == "expired"
    progress = stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T1")
    assert "状态：未在时限内确认，已作废，没有发出" in progress
    assert "送达" not in progress


@pytest.mark.parametrize(
    "text, says",
    [
        ("#确认 T9", "没有编号为 T9 的通知。请核对通知编号（如 T12）。"),
        ("#确认 X1", "“X1”不是有效的通知编号，应写成 T12 这样。"),
    ],
)
def test_bad_confirmations_say_what_was_wrong(stage, text, says):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, ASKED)
    assert says in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, text)
    assert copies(stage) == 0 and state(stage, 1) == "held"


def test_confirm_without_a_waiting_notice_is_still_the_builds(stage):
    assert stage.reply(K1_GROUP, K1_OFFICE, "#确认").startswith("没有待确认的建群计划")
