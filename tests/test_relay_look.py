"""The last look before a send (``matrix.relay.recall.look``): on PostgreSQL the question goes
out before the copy is composed and its answer is read just before the send. It must still see
a withdrawal made on another connection in between, survive its kept connection being cut,
and never hand one copy's answer to another. A look made less than ``look_fresh_ms`` ago for an
earlier copy serves the next one, unless a notice was closed in this process since."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from matrix.blueprint import Blueprint
from matrix.relay import RelayEnv, RelayOptions, VirtualClock, issue_notice
from matrix.relay.recall import look
from matrix.relay.withdraw import withdraw_notice
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.worlds import MORNING, RelayWorld


@dataclass
class Copy:
    notice_id: int
    kind: str = "notice"
    payload: str = "{}"


def two_notices(engine: Engine, bp: Blueprint, tmp_path: Path, fresh_ms: float) -> RelayWorld:
    """Two notices of the province office, T1 and T2, queued and not sent."""
    units, persons = worlds.write_roster(tmp_path, *worlds.province(counties=2, cores=1))
    import_roster(engine, read_roster(units, persons, bp), bp)
    relay = RelayWorld(engine, bp, options=RelayOptions(rate=0.0, look_fresh_ms=fresh_ms))
    office = relay.contact("P", "office_staff")
    for body in ("截止 17:00 开会", "截止 18:00 交表"):
        issue_notice(relay.env, relay.room("P"), office, body)
    return relay


@pytest.fixture
def relay(pg_engine: Engine, bp: Blueprint, tmp_path: Path) -> RelayWorld:
    """T1 and T2 on PostgreSQL, every look asked of the server."""
    return two_notices(pg_engine, bp, tmp_path, fresh_ms=0)


def _withdrawn_elsewhere(engine: Engine, notice_id: int) -> None:
    """Another process withdraws the notice: nothing in this one hears of it."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE relay_notice SET state = 'withdrawn' WHERE id = :id"), {"id": notice_id}
        )


@contextmanager
def pool_checkouts(engine: Engine) -> Iterator[list[object]]:
    """Connections taken from the pool inside: a look on its kept connection takes none."""
    taken: list[object] = []

    def count(*_: object) -> None:
        taken.append(1)

    event.listen(engine, "checkout", count)
    try:
        yield taken
    finally:
        event.remove(engine, "checkout", count)


def _withdraw(relay: RelayWorld, notice_id: int) -> None:
    withdraw_notice(relay.env, relay.contact("P", "office_staff"), notice_id, "有误")


def test_a_withdrawal_between_the_question_and_the_answer_is_seen_by_the_next_look(
    relay: RelayWorld,
):
    first = look(relay.env, Copy(1))
    assert first()
    wanted = look(relay.env, Copy(1))
    assert wanted()
    _withdraw(relay, 1)  # committed on the pool's connection, not the look's
    assert not look(relay.env, Copy(1))()
    assert look(relay.env, Copy(2))()


def test_a_question_left_unread_does_not_answer_the_next(relay: RelayWorld):
    _withdraw(relay, 1)
    assert not look(relay.env, Copy(1))()
    with pool_checkouts(relay.engine) as taken:
        unread = look(relay.env, Copy(1))  # its copy went another way: never read
        assert look(relay.env, Copy(2))()  # T2's own answer, not T1's "withdrawn"
    assert not taken  # both on the kept connection
    assert not unread()  # read late: looked up again, still right
    first, second = look(relay.env, Copy(1)), look(relay.env, Copy(2))
    assert not first()  # read after T2 was asked: never T2's answer
    assert second()


def test_a_cut_connection_falls_back_to_the_pool_and_is_made_again(relay: RelayWorld):
    assert look(relay.env, Copy(1))()
    _withdraw(relay, 2)
    with relay.engine.connect() as conn:  # a server restart, as the kept connection sees it
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.commit()
    assert not look(relay.env, Copy(2))()
    assert look(relay.env, Copy(1))()  # on a kept connection made again
    with pool_checkouts(relay.engine) as taken:
        assert not look(relay.env, Copy(2))()
        assert look(relay.env, Copy(1))()
    assert not taken


def test_a_recent_look_serves_the_next_copy_until_it_is_look_fresh_ms_old(
    any_engine: Engine, bp: Blueprint, tmp_path: Path
):
    relay = two_notices(any_engine, bp, tmp_path, fresh_ms=20)
    assert look(relay.env, Copy(1))()
    _withdrawn_elsewhere(relay.engine, 1)
    relay.clock.advance(0.019)
    assert look(relay.env, Copy(1))()  # 19 ms old: still serves
    relay.clock.advance(0.001)
    assert not look(relay.env, Copy(1))()  # 20 ms: asked again, and the withdrawal is seen
    assert look(relay.env, Copy(2))()  # an answer is for its own notice only


def test_a_notice_closed_in_this_process_voids_every_recent_look_at_once(
    any_engine: Engine, bp: Blueprint, tmp_path: Path
):
    relay = two_notices(any_engine, bp, tmp_path, fresh_ms=20)
    assert look(relay.env, Copy(2))()
    relay.clock.advance(0.02)
    assert look(relay.env, Copy(1))()
    asked_before = look(relay.env, Copy(2))  # a question on its way while T2 is withdrawn
    _withdraw(relay, 2)
    asked_before()  # on PostgreSQL its answer predates the withdrawal: it is not remembered
    assert not look(relay.env, Copy(2))()
    _withdrawn_elsewhere(relay.engine, 1)
    assert not look(relay.env, Copy(1))()  # T1's recent answer went with T2's withdrawal


def test_another_clock_or_no_freshness_always_asks(
    any_engine: Engine, bp: Blueprint, tmp_path: Path
):
    relay = two_notices(any_engine, bp, tmp_path, fresh_ms=20)
    assert look(relay.env, Copy(1))()
    _withdrawn_elsewhere(relay.engine, 1)
    other = RelayEnv(relay.engine, bp, relay.env.options, relay.env.tz, VirtualClock(MORNING))
    assert not look(other, Copy(1))()  # an answer kept on one clock means nothing on another
    never = relay.env.options.model_copy(update={"look_fresh_ms": 0})
    assert not look(RelayEnv(relay.engine, bp, never, relay.env.tz, relay.clock), Copy(1))()
