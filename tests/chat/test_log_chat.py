"""#日志 in conversation: an office reads the audit log of its own subtree, in a few short
lines; nobody else reads it. And a stranger's flood of huge refused commands leaves only
bounded entries behind. People are named in conftest.py."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from bot.chat.limits import Gate, Limiter
from bot.chat.log import CHAT_LINES
from bot.config import LimitOptions
from bot.rehearsal.stage import Stage
from matrix import audit_log
from matrix.audit_chain import verify
from matrix.models import AuditEntry
from tests.chat.conftest import (
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    K2_GROUP,
    K2_OFFICE,
    STRANGER,
    TEACHER,
    audit,
)


def entry_lines(reply: str) -> list[str]:
    return [line for line in reply.splitlines() if line.startswith("#")]


def test_an_office_reads_what_was_done_in_its_county(stage: Stage) -> None:
    stage.reply(K1_GROUP, K1_OFFICE, "#汇总")
    stage.reply(K2_GROUP, K2_OFFICE, "#汇总")
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#日志")
    assert reply.startswith("【审计日志】乙1县及下属单位共 ")
    [summary] = [line for line in entry_lines(reply) if "汇总" in line]
    assert " 乙1县 " in summary and "table=build" in summary
    assert "乙2县" not in reply  # K2's entries are not K1's business
    [entry] = audit(stage, "command.log")
    assert (entry["actor"], entry["unit"]) == (K1_OFFICE, "K1")


def test_the_city_office_reads_both_counties(stage: Stage) -> None:
    stage.reply(K1_GROUP, K1_OFFICE, "#汇总")
    stage.reply(K2_GROUP, K2_OFFICE, "#汇总")
    reply = stage.reply(CITY_GROUP, CITY_OFFICE, "#日志")
    assert reply.startswith("【审计日志】甲市及下属单位共 ")
    summaries = [line for line in entry_lines(reply) if "汇总" in line]
    assert len(summaries) == 2 and "乙1县" in reply and "乙2县" in reply


def test_a_county_office_cannot_read_the_city_log(stage: Stage) -> None:
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#日志 甲市")
    assert "不在你所在单位的管辖范围内" in reply and "#日志" in reply
    assert not reply.startswith("【审计日志】")


def test_a_teacher_and_a_stranger_are_refused(stage: Stage) -> None:
    assert "只有单位办公室" in stage.reply(K1_GROUP, TEACHER, "#日志")
    stage.replies(K1_GROUP, STRANGER, "<加入>")
    assert "还没有绑定名册" in stage.reply(K1_GROUP, STRANGER, "#日志")
    assert audit(stage, "command.log") == []


def test_the_answer_is_the_newest_few_short_lines(stage: Stage) -> None:
    with stage.engine.begin() as conn:
        for i in range(40):
            audit_log.record(
                conn, K1_OFFICE, "command.notice", "K1S1", text=f"第{i}次" + "长" * 500
            )
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#日志")
    lines = entry_lines(reply)
    assert len(lines) == CHAT_LINES and "以下是最近 10 条" in reply
    assert "qunmatrix log show --unit K1" in reply
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    assert "第39次" in lines[0]  # newest first
    assert len(reply) <= 1500


def test_a_flood_of_huge_refused_commands_stores_only_bounded_entries(stage: Stage) -> None:
    """Issue 9 point 5: 200 × #通知 <100 KB> from a stranger grew the database by 61 MB. The
    flood limits would stop most of them before any database work (``bot.chat.limits``): lifted
    here, so every refusal reaches the audit log and its bound is what is tested."""
    stage.bot.gate = Gate(
        Limiter(LimitOptions(per_contact=10_000, per_group=10_000, max_command_chars=200_000))
    )
    stage.replies(K1_GROUP, STRANGER, "<加入>")
    body = "#通知 " + "请" * 100_000
    for _ in range(200):
        stage.replies(K1_GROUP, STRANGER, body)
    with stage.engine.connect() as conn:
        denied = audit_log.entries(conn, action="command.denied", limit=1000)
        stored = conn.execute(select(func.sum(func.length(AuditEntry.detail)))).scalar_one()
        assert verify(conn).intact
    assert len(denied) == 200
    for entry in denied:
        text = json.loads(entry.detail)["text"]
        assert text["chars"] == len(body) and text["excerpt"] == body[:200]
        assert len(entry.detail) < 1_000
    assert stored < 200 * 1_000  # against 200 × 100 KB = 20 MB unbounded
