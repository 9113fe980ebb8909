"""One reply per command: several bot accounts hear every message of a group (in one process
or in several on one PostgreSQL database); exactly one of them answers each, the others stay
silent (``matrix.claims``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.chat.dispatch import Bot
from matrix import claims
from matrix.blueprint import Blueprint
from matrix.models import CommandClaim
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.test_wechaty_inprocess import wechaty_bot
from tests.worlds import ACCOUNT, build_matrix, provisioned_world, room_of

ROOT = Path(__file__).resolve().parent.parent
K1_OFFICE, TEACHER = "wxK1n008", "wxK1S1n012"


def test_the_account_holding_a_claim_answers_repeats_and_another_takes_over_only_later(
    engine: Engine,
):
    key = claims.fingerprint("m", "room1", TEACHER, "#帮助")
    assert claims.claim(engine, key, "bot1", at=1000.0)
    assert not claims.claim(engine, key, "bot2", at=1000.5)  # the same message, heard by bot2
    assert claims.claim(engine, key, "bot1", at=1010.0)  # a repeat: bot1 answers it again
    assert not claims.claim(engine, key, "bot2", at=1010.2)
    # bot1 went quiet: a minute later bot2 answers such a message
    assert claims.claim(engine, key, "bot2", at=1010.0 + claims.WINDOW + 1)
    assert not claims.claim(engine, key, "bot1", at=1010.0 + claims.WINDOW + 2)
    other = claims.fingerprint("m", "room1", TEACHER, "#帮助 同意")
    assert claims.claim(engine, other, "bot1", at=1100.0)
    assert claims.prune(engine, before=1100.0) == 1
    with engine.connect() as conn:
        assert conn.execute(select(CommandClaim.fingerprint)).scalars().all() == [other]


def script(rooms: dict[tuple[str, str, int], str]) -> list[tuple[str, str, str]]:
    """What people say in K1's and K2's counselor groups: some commands more than once."""
    k1, k2 = rooms[("K1", "county-counselors", 0)], rooms[("K2", "county-counselors", 0)]
    said = []
    for n in range(4):
        said += [
            (k1, K1_OFFICE, "#帮助"),
            (k1, TEACHER, "#帮助"),
            (k2, "wxK2n018", "#帮助 同意"),
            (k1, K1_OFFICE, f"#帮助 {['同意', '拒绝', '核查', '通知'][n]}"),
        ]
    return said


def bot_process(engine: Engine, tmp_path: Path, account: str) -> subprocess.Popen[bytes]:
    url = engine.url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "tests.claim_worker_proc", "--db", url, "--account", account]
    files = ["--script", str(tmp_path / "said.json"), "--log", str(tmp_path / "replies.jsonl")]
    return subprocess.Popen(
        [*command, *files, "--barrier", str(tmp_path / "barrier")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )


@pytest.mark.postgres
def test_two_bot_processes_on_postgresql_answer_each_command_exactly_once(
    pg_engine: Engine, bp: Blueprint, tmp_path: Path
):
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    import_roster(pg_engine, read_roster(units, persons, bp), bp)
    said = script(build_matrix(pg_engine, bp, ["bot1", "bot2"]))
    (tmp_path / "said.json").write_text(json.dumps(said, ensure_ascii=False), encoding="utf-8")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [bot_process(pg_engine, tmp_path, a) for a in ("bot1", "bot2")]
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs if p.stderr]
        time.sleep(0.05)
    (barrier / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    replies = [json.loads(line) for line in (tmp_path / "replies.jsonl").read_text().splitlines()]
    # as many replies as commands (each heard by both), each in the room it was asked in
    assert len(replies) == len(said)
    assert Counter(r["room"] for r in replies) == Counter(room for room, _, _ in said)
    assert all("你在本群可以使用" in r["text"] or "命令 #" in r["text"] for r in replies)


def test_two_accounts_in_one_process_over_wechaty_answer_each_command_once(province_db, bp, errors):
    """Each account hears the message under an id of its own (as in real WeChat): the claim
    is keyed by what they hear alike."""
    world = provisioned_world(province_db, bp)
    room = room_of(world, "乙1县少先队大队辅导员群")
    second = "qunmatrix-bot-2"
    world.account(second, "群矩阵助手二号", rate=100.0, burst=100)
    world.room(room).members[second] = ""
    ours = {ACCOUNT, second}

    async def scenario() -> None:
        async with (
            wechaty_bot(world, errors, ACCOUNT) as one,
            wechaty_bot(world, errors, second) as two,
        ):
            dispatcher = Bot(province_db, bp)
            dispatcher.attach(one)
            dispatcher.attach(two)
            mark = len(world.messages())
            for text in ("#帮助", "#帮助 同意", "#帮助"):
                await world.say(room, K1_OFFICE, text)
            await one.drained()
            await two.drained()
            await asyncio.sleep(0.2)  # an answer the second account would send late
            await one.drained()
            await two.drained()
            answers = [m for m in world.messages(room, since=mark) if m.contact_id in ours]
            assert [a.text.split("：")[0] for a in answers] == [
                "K1office_staff，你在本群可以使用",
                "命令 #同意（approve）",
                "K1office_staff，你在本群可以使用",
            ]
            dispatcher.close()

    asyncio.run(scenario())
