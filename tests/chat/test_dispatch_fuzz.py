"""The dispatcher fuzzed: ≥ 10⁴ generated messages per run on SQLite (fewer on PostgreSQL,
where NUL bytes and integer overflow fail differently), from strangers, members and offices,
in matrix groups and elsewhere: every command name and alias, with and without #, bare;
control characters, huge and non-ASCII numbers, 100 KB texts, units by code and by name,
notice and report ids. No message may end in an internal error or a logged exception, and
every reply stays short whatever was typed.

Messages go to ``Bot.on_message`` in batches (then the stage settles: replies go out, the relay
sends), which keeps a run within a few tens of seconds; limits are raised so that the flood
limit does not silence the fuzzer after twenty messages (tests/chat/test_flood_limits.py has them).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from loguru import logger
from sqlalchemy import Engine

from bot.chat.registry import TABLE
from bot.chat.summary import SummaryOptions
from bot.config import LimitOptions
from bot.rehearsal.stage import Stage
from matrix.blueprint import Blueprint
from matrix.platform import IncomingMessage
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.chat.conftest import (
    BUILD_DAY,
    K1_GROUP,
    K1_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    STRANGER,
    TEACHER,
)

BATCH = 50
LIMITS = LimitOptions(per_contact=10**9, per_group=10**9, reports_per_hour=10**9)
# a reply is a screen or two at most; a relayed notice or report carries its sender's text
REPLY_LIMIT = 1500
RELAYED = ("【通知 ", "【上报 ", "【补发】")

NAMES = [n for c in TABLE for n in (c.name, c.alias)]
WORDS = [
    "建群",
    "媒体",
    "通知",
    "核查",
    "xlsx",
    "csv",
    "md",
    "html",
    "文本",
    "表格",
    "无",
    "公众号",
]
WORDS += ["网站", "抖音", "截止", "17:00", "无需回执", "K1", "C1", "P", "乙1县", "甲市", "K1S1"]
WORDS += ["13900000012", "13900000015", "T1", "R1", "1", "0", "-1", "3号", "#2", "T0"]
CONTROL = st.text(st.characters(min_codepoint=0, max_codepoint=0x1F), min_size=1, max_size=4)
DIGITS = st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=12)
HUGE = st.integers(min_value=2**31 - 2, max_value=10**40).map(str)
NUMBER = st.one_of(HUGE, DIGITS, st.integers(-5, 40).map(str), DIGITS.map(lambda d: "T" + d))
LONG = st.sampled_from(["帮", "x", "=", "\x00", "９", "<"]).map(lambda c: c * 100_000)
TOKEN = st.one_of(
    st.sampled_from(WORDS),
    NUMBER,
    CONTROL,
    st.text(max_size=30),
    st.text(st.characters(codec="utf-8"), max_size=8),
    st.sampled_from(['=HYPERLINK("http://x","y")', "<script>alert(1)</script>", "|", "@a"]),
)
SEPARATOR = st.sampled_from([" ", " ", "\u3000", "\n", "\t", "\x00", "", "  "])


@st.composite
def message_text(draw: st.DrawFn) -> str:
    head = draw(
        st.one_of(
            st.sampled_from(NAMES).map(lambda n: "#" + n),
            st.sampled_from(NAMES).map(lambda n: "＃" + n),
            st.sampled_from(["收到", "收到T1", "收到。", "#", "＃", "#接龙", "#帮组", "大家好"]),
            st.text(max_size=10).map(lambda t: "#" + t),
        )
    )
    parts = [head]
    for _ in range(draw(st.integers(0, 4))):
        parts += [draw(SEPARATOR), draw(TOKEN)]
    if draw(st.integers(0, 200)) == 0:  # now and then the 100 KB paste
        parts += [" ", draw(LONG)]
    return "".join(parts)


SENDERS = [
    (K1_GROUP, STRANGER),
    (K1_GROUP, TEACHER),
    (K1_GROUP, K1_OFFICE),
    (PROVINCE_GROUP, PROVINCE_OFFICE),
    (PROVINCE_GROUP, TEACHER),
    ("", K1_OFFICE),  # a room outside the matrix
]


def stage_on(engine: Engine, bp: Blueprint, folder: Path) -> Stage:
    units, persons = worlds.write_roster(folder, *worlds.province())
    import_roster(engine, read_roster(units, persons, bp), bp)
    exports = SummaryOptions(export_dir=folder / "exports")
    stage = Stage(
        engine, bp, accounts=("bot-1",), summaries=exports, start=BUILD_DAY, limits=LIMITS
    )
    stage.provision()
    stage.say(K1_GROUP, STRANGER, "<加入>")
    stage.say(K1_GROUP, "wxid_second", "<加入>")
    return stage


class Fuzzer:
    """Plays batches of messages on one stage and keeps what went wrong."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.ids = itertools.count()
        self.sent = 0
        self.errors: list[str] = []
        self.outside = stage.world.create_room("bot-1", "闲聊群", [K1_OFFICE, TEACHER])
        self._sink = logger.add(lambda m: self.errors.append(str(m)), level="ERROR")

    def close(self) -> None:
        logger.remove(self._sink)

    def play(self, batch: list[tuple[int, str]]) -> None:
        stage = self.stage
        account = stage.accounts[0]
        mark = len(stage.world.messages())
        self.errors.clear()  # this batch's own, so that hypothesis can shrink to the culprit
        failures = stage.bot.stats.errors

        async def deliver() -> None:
            for who, text in batch:
                group, sender = SENDERS[who]
                room = stage.room_of(group) if group else self.outside
                msg = IncomingMessage(f"fz{next(self.ids)}", room, sender, text)
                await stage.world.handled(stage.bot.on_message(account, msg))

        # a batch takes well under a second: a wait this long is a deadlock, and fails
        stage.run(asyncio.wait_for(deliver(), timeout=300))
        stage.settle()
        self.sent += len(batch)
        for line in stage.world.messages(since=mark):
            if line.contact_id not in stage.bot.accounts or line.file:
                continue
            assert "抱歉，处理出错了" not in line.text, (batch, self.errors[-1:])
            limit = LIMITS.max_command_chars + 500 if line.text.startswith(RELAYED) else REPLY_LIMIT
            assert len(line.text) <= limit, (len(line.text), line.text[:200])
        assert self.errors == [], self.errors[:1]
        assert stage.bot.stats.errors == failures


MESSAGES = st.lists(
    st.tuples(st.integers(0, len(SENDERS) - 1), message_text()), min_size=BATCH, max_size=BATCH
)
QUICK = dict(
    deadline=None,
    derandomize=False,
    database=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def fuzz(engine: Engine, bp: Blueprint, folder: Path, messages: int) -> None:
    """Play ``messages`` generated messages on a stage over ``engine``."""
    with stage_on(engine, bp, folder) as stage:
        fuzzer = Fuzzer(stage)

        @settings(max_examples=messages // BATCH, **QUICK)
        @given(MESSAGES)
        def run(batch: list[tuple[int, str]]) -> None:
            fuzzer.play(batch)

        try:
            run()
        finally:
            fuzzer.close()
        assert fuzzer.sent >= messages


def test_a_batch_that_rejects_a_held_joiner_hears_the_leave_after_the_command(
    engine: Engine, bp: Blueprint, tmp_path: Path
):
    # the removal makes the room say the joiner left; heard inside the #拒绝 that removed
    # them, the bot would wait for the room it is still busy with, and the batch never end
    with stage_on(engine, bp, tmp_path) as stage:
        fuzzer = Fuzzer(stage)
        try:
            fuzzer.play([(SENDERS.index((K1_GROUP, K1_OFFICE)), "#拒绝 1 不认识")])
        finally:
            fuzzer.close()
        assert STRANGER not in stage.world.room(stage.room_of(K1_GROUP)).members


def test_ten_thousand_hostile_messages_on_sqlite(engine: Engine, bp: Blueprint, tmp_path: Path):
    fuzz(engine, bp, tmp_path, 10_000)


@pytest.mark.postgres
def test_hostile_messages_on_postgres(pg_engine: Engine, bp: Blueprint, tmp_path: Path):
    fuzz(pg_engine, bp, tmp_path, 1_000)
