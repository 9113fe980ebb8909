"""The last look before a send (``matrix.relay.recall.look``): on PostgreSQL the question goes
out before the copy is composed and its answer is read just before the send. It must still see
a withdrawal made on another connection in between, survive its kept connection being cut,
and never hand one copy's answer to another."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text

from matrix.blueprint import Blueprint
from matrix.relay import RelayOptions, issue_notice
from matrix.relay.recall import look
from matrix.relay.withdraw import withdraw_notice
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.worlds import RelayWorld


@dataclass
class Copy:
    notice_id: int
    kind: str = "notice"
    payload: str = "{}"


@pytest.fixture
def relay(pg_engine: Engine, bp: Blueprint, tmp_path: Path) -> RelayWorld:
    """Two notices of the province office, T1 and T2, queued and not sent."""
    units, persons = worlds.write_roster(tmp_path, *worlds.province(counties=2, cores=1))
    import_roster(pg_engine, read_roster(units, persons, bp), bp)
    relay = RelayWorld(pg_engine, bp, options=RelayOptions(rate=0.0))
    office = relay.contact("P", "office_staff")
    for body in ("截止 17:00 开会", "截止 18:00 交表"):
        issue_notice(relay.env, relay.room("P"), office, body)
    return relay


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
