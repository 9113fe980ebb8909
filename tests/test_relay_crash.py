"""No notice lost across crashes: the bot is killed at random points of the delivery (between
claim and send, after a send before it is recorded, in the middle of writing a batch …),
restarted, killed again, and finally left to finish. Every target group must have the notice,
and every copy after the first in a group must say 补发."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from matrix.blueprint import Blueprint
from matrix.relay import RelayOptions, issue_notice
from matrix.roster import import_roster, read_roster
from matrix.tables import DELIVERY
from tests import worlds
from tests.worlds import RelayWorld


class Crash(BaseException):
    """The process dies here (a BaseException: nothing in the engine may catch it)."""


class CrashAt:
    """Kill the bot at the ``n``-th fault point it passes."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.points: list[str] = []

    def __call__(self, point: str) -> None:
        self.points.append(point)
        self.left -= 1
        if self.left == 0:
            raise Crash(point)


@pytest.fixture
def ten_counties(engine: Engine, bp: Blueprint, tmp_path: Path) -> Engine:
    units, persons = worlds.write_roster(tmp_path, *worlds.province(counties=10, cores=1))
    import_roster(engine, read_roster(units, persons, bp), bp)
    return engine


@pytest.mark.parametrize("seed", range(24))
def test_a_bot_killed_at_any_moment_finishes_the_relay_and_marks_every_duplicate(
    ten_counties: Engine, bp: Blueprint, seed: int
):
    rng = random.Random(seed)
    options = RelayOptions(
        rate=rng.choice([0.0, 1.0]),  # unpaced runs claim whole batches
        burst=rng.choice([1, 3]),
        jitter=0.0,
        claim_batch=rng.choice([1, 4, 16]),
    )
    relay = RelayWorld(ten_counties, bp, options=options)
    issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), "截止 17:00 开会")
    lunch = relay.clock.now().replace(hour=4)  # 12:00 in Beijing, before any reminder

    crashes: list[str] = []
    for life in range(rng.randint(1, 4)):
        crash = CrashAt(rng.randint(1, 30 if life == 0 else 12))
        relay.restart(faults=crash)
        try:
            relay.deliver(until=lunch)
        except Crash as dead:
            crashes.append(str(dead))
        else:
            break
    assert crashes, "the first life always dies"
    relay.restart()
    relay.deliver(until=lunch)

    for room in relay.rooms.values():
        copies = relay.copies(room, "T1")
        assert copies, f"{room} never got the notice (crashes at {crashes})"
        assert all(c.startswith("【补发】【通知 T1】") for c in copies[1:]), crashes
    with ten_counties.connect() as conn:
        states = conn.execute(
            select(DELIVERY.c.state, DELIVERY.c.claimed_by).where(DELIVERY.c.kind == "notice")
        ).all()
    assert states == [("sent", None)] * len(relay.rooms)
