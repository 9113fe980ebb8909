"""A withdrawal during a relay stops the rest: no copy goes out after the withdrawal was
recorded, whether it was still queued, already claimed by a worker (its batch on the way), or
left ``sending`` by a worker that died and is taken back after a restart. The groups that got
the notice, and only those, hear of the withdrawal. On SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from matrix.blueprint import Blueprint
from matrix.relay import RelayOptions, issue_notice
from matrix.relay.withdraw import withdraw_notice
from matrix.roster import import_roster, read_roster
from matrix.tables import DELIVERY
from tests import worlds
from tests.worlds import RelayWorld


class Crash(BaseException):
    """The process dies here."""


class WithdrawAt:
    """At the ``n``-th fault point named ``point``, the province office withdraws T1 (from
    another process, as it were), and the log is bookmarked; ``then_crash`` kills the worker
    right after."""

    def __init__(self, relay: RelayWorld, point: str, n: int, *, then_crash: bool = False):
        self.relay, self.point, self.left, self.then_crash = relay, point, n, then_crash
        self.mark: int | None = None

    def __call__(self, point: str) -> None:
        if point != self.point or self.mark is not None:
            return
        self.left -= 1
        if self.left:
            return
        office = self.relay.contact("P", "office_staff")
        withdraw_notice(self.relay.env, office, 1, "有误")
        self.mark = len(self.relay.world.messages())
        if self.then_crash:
            raise Crash(point)


def _counties(engine: Engine, bp: Blueprint, tmp_path: Path) -> Engine:
    units, persons = worlds.write_roster(tmp_path, *worlds.province(counties=10, cores=1))
    import_roster(engine, read_roster(units, persons, bp), bp)
    return engine


def _check(relay: RelayWorld, mark: int, *, unknown: int = 0, crashed: bool = False) -> None:
    """``unknown``: copies whose send the crash left unrecorded (taken back, then stopped)."""
    before = [m for m in relay.world.messages()[:mark] if m.text.startswith("【通知 T1】")]
    after = relay.world.messages()[mark:]
    assert before, "the withdrawal should come in the middle of the relay"
    assert not [m for m in after if "【通知 T1】" in m.text], "a copy went out after it"
    told = [m.room_id for m in after if m.text.startswith("【撤回】")]
    got = {m.room_id for m in before}
    assert len(told) == len(set(told))  # each group told once
    if crashed:  # the dead worker's batch may have reached its rooms: those are told too
        assert got <= set(told)
    else:
        assert set(told) == got
    with relay.engine.connect() as conn:
        rows = dict(
            conn.execute(
                select(DELIVERY.c.state, func.count())
                .where(DELIVERY.c.kind == "notice")
                .group_by(DELIVERY.c.state)
            ).all()
        )
    stopped = len(relay.rooms) - len(before)
    sent = len(before) - unknown
    withdrawn = stopped + unknown
    expected = {"sent": sent, "withdrawn": withdrawn}
    assert rows == {k: n for k, n in expected.items() if n}


@pytest.mark.parametrize("batch", [1, 4, 16])
@pytest.mark.parametrize("point", ["claimed", "before_send", "after_send"])
def test_a_withdrawal_mid_relay_stops_every_later_copy(
    engine: Engine, bp: Blueprint, tmp_path: Path, batch: int, point: str
):
    _counties(engine, bp, tmp_path)
    relay = RelayWorld(engine, bp, options=RelayOptions(rate=0.0, claim_batch=batch))
    issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), "截止 17:00 开会")
    # the second claim is the other account's first batch; the third send is mid-batch
    withdraw = WithdrawAt(relay, point, 2 if point == "claimed" else 3)
    relay.restart(faults=withdraw)
    relay.deliver()
    assert withdraw.mark is not None
    _check(relay, withdraw.mark)


@pytest.mark.parametrize("point", ["claimed", "before_send"])
def test_a_withdrawal_then_a_crash_sends_nothing_after_the_restart(
    engine: Engine, bp: Blueprint, tmp_path: Path, point: str
):
    """The dead worker's claimed rows come back as 补发 on restart: they are withdrawn too."""
    _counties(engine, bp, tmp_path)
    relay = RelayWorld(engine, bp, options=RelayOptions(rate=0.0, claim_batch=4))
    issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), "截止 17:00 开会")
    withdraw = WithdrawAt(relay, point, 2, then_crash=True)
    relay.restart(faults=withdraw)
    with pytest.raises(Crash):
        relay.deliver()
    assert withdraw.mark is not None
    relay.restart()
    relay.deliver()
    # the copy sent just before the crash was never recorded: its group is still told
    _check(relay, withdraw.mark, unknown=1 if point == "before_send" else 0, crashed=True)


@pytest.mark.parametrize("point", ["claimed", "before_send", "after_send"])
def test_on_postgres_too(pg_engine: Engine, bp: Blueprint, tmp_path: Path, point: str):
    """There the last look is asked before the copy is composed and read just before the send
    (``matrix.relay.recall.look``): a withdrawal mid-batch is still seen by the next copy."""
    _counties(pg_engine, bp, tmp_path)
    relay = RelayWorld(pg_engine, bp, options=RelayOptions(rate=0.0, claim_batch=4))
    issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), "截止 17:00 开会")
    withdraw = WithdrawAt(relay, point, 2 if point == "claimed" else 3)
    relay.restart(faults=withdraw)
    relay.deliver()
    assert withdraw.mark is not None
    _check(relay, withdraw.mark)
