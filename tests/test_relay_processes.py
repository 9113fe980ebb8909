"""Real processes: three workers sharing one PostgreSQL relay (every group gets exactly one
copy), and a worker killed with SIGKILL mid-relay and started again (nothing lost, every
duplicate marked 补发)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from matrix.blueprint import Blueprint
from matrix.relay import RelayEnv, RelayOptions, issue_notice
from matrix.relay.accounts import register_account
from matrix.roster import import_roster, read_roster
from matrix.tables import DELIVERY
from tests import worlds
from tests.worlds import build_matrix

ROOT = Path(__file__).resolve().parent.parent


def relay_world(engine: Engine, bp: Blueprint, tmp_path: Path, accounts: list[str]) -> list[str]:
    """A province with 150 counties (152 relay groups), every account in every group, and a
    notice from the province office; returns the room ids."""
    units, persons = worlds.write_roster(
        tmp_path, *worlds.province(counties=150, schools=1, cores=1)
    )
    import_roster(engine, read_roster(units, persons, bp), bp)
    rooms = build_matrix(engine, bp, accounts)
    env = RelayEnv(engine, bp, RelayOptions(rate=0.0))
    with engine.begin() as conn:
        for account in accounts:
            register_account(conn, account, 0.0, rooms.values(), env.clock.now())
    office = worlds.province()[1][0][4]  # 示范省's first office_staff
    issue_notice(env, rooms[("P", "city-youth-heads", 0)], office, "截止 明天 23:00 请报送名单")
    (tmp_path / "rooms.txt").write_text("\n".join(rooms.values()))
    return list(rooms.values())


def worker(
    engine: Engine, tmp_path: Path, account: str, delay: float = 0.0, barrier: Path | None = None
) -> subprocess.Popen[bytes]:
    url = engine.url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "tests.relay_worker_proc", "--db", url, "--account", account]
    files = ["--rooms", str(tmp_path / "rooms.txt"), "--log", str(tmp_path / "sent.jsonl")]
    if barrier is not None:
        files += ["--barrier", str(barrier)]
    return subprocess.Popen(
        [*command, *files, "--delay", str(delay)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )


def sent(tmp_path: Path) -> list[dict[str, str]]:
    log = tmp_path / "sent.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.postgres
def test_three_worker_processes_on_postgresql_send_each_group_exactly_one_copy(
    pg_engine: Engine, bp: Blueprint, tmp_path: Path
):
    accounts = ["bot1", "bot2", "bot3"]
    rooms = relay_world(pg_engine, bp, tmp_path, accounts)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [worker(pg_engine, tmp_path, a, delay=0.002, barrier=barrier) for a in accounts]
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < len(accounts):
        assert all(p.poll() is None for p in procs), "a worker died before it was ready"
        assert time.monotonic() < deadline, "workers not ready within 60 s"
        time.sleep(0.01)
    (barrier / "go").touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    copies = sent(tmp_path)
    assert Counter(c["room"] for c in copies) == Counter(rooms)  # each room exactly once
    assert not any("补发" in c["text"] for c in copies)
    assert {c["account"] for c in copies} == set(accounts)  # the work was shared
    with pg_engine.connect() as conn:
        assert set(conn.execute(select(DELIVERY.c.state)).scalars()) == {"sent"}


@pytest.mark.parametrize("seed", range(3))
def test_a_worker_killed_with_sigkill_and_restarted_finishes_the_relay(
    engine: Engine, bp: Blueprint, tmp_path: Path, seed: int
):
    rooms = relay_world(engine, bp, tmp_path, ["bot1"])
    proc = worker(engine, tmp_path, "bot1", delay=0.01)
    deadline = time.monotonic() + 60
    want = random.Random(seed).randint(5, 100)  # copies out before the kill
    while len(sent(tmp_path)) < want and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(sent(tmp_path)) < len(rooms), "killed too late to test anything"

    again = worker(engine, tmp_path, "bot1")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    by_room: dict[str, list[str]] = {}
    for copy in sent(tmp_path):
        by_room.setdefault(copy["room"], []).append(copy["text"])
    assert set(by_room) == set(rooms)
    for texts in by_room.values():
        assert all(t.startswith("【补发】") for t in texts[1:])
