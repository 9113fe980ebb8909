"""A scheduled notice survives restarts and goes once: it is a job in the database, and the job
is marked done in the same transaction that queues the copies. A bot that dies while sending
it (before that transaction commits, or after, in the middle of the copies) leaves neither a
lost notice nor a second one. A recurring notice makes one notice per occurrence, however often
the bot restarts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from matrix.blueprint import Blueprint
from matrix.relay import RelayOptions, issue_notice, lifecycle
from matrix.tables import DELIVERY, NOTICE, RELAY_JOB
from tests.worlds import MORNING, TZ, RelayWorld

EIGHT = datetime(2026, 11, 25, 8, 0, tzinfo=TZ)
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=TZ)


class Crash(BaseException):
    """The process dies here."""


def _copies(relay: RelayWorld, code: str) -> dict[str, int]:
    return {room: len(relay.copies(room, code)) for room in relay.rooms.values()}


def _schedule(relay: RelayWorld, text: str = "定时 明天 8:00 截止 17:00 开会") -> None:
    issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), text)


def test_a_scheduled_notice_survives_restarts_and_goes_once(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    _schedule(relay)
    for hour in (10, 14, 20):  # the bot restarts several times before the time
        relay.deliver(until=MORNING.replace(hour=hour))
        relay.restart()
    assert set(_copies(relay, "T1").values()) == {0}
    relay.deliver(until=NOON)
    assert set(_copies(relay, "T1").values()) == {1}
    relay.restart()
    relay.deliver(until=NOON.replace(hour=16))
    assert set(_copies(relay, "T1").values()) == {1}
    assert not [c for r in relay.rooms.values() for c in relay.copies(r, "T1") if "补发" in c]


def test_a_crash_inside_the_send_job_loses_nothing_and_repeats_nothing(
    province_db: Engine, bp: Blueprint, monkeypatch: pytest.MonkeyPatch
):
    relay = RelayWorld(province_db, bp)
    _schedule(relay)
    real = lifecycle.release_notice

    def dies_after(conn: Any, env: Any, notice_id: int, **kw: Any) -> Any:
        real(conn, env, notice_id, **kw)  # the copies are written, not committed
        raise Crash("release")

    monkeypatch.setattr(lifecycle, "release_notice", dies_after)
    with pytest.raises(Crash):
        relay.deliver(until=NOON)
    with province_db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DELIVERY)).scalar_one() == 0
        assert conn.execute(
            select(RELAY_JOB.c.state).where(RELAY_JOB.c.kind == "send")
        ).scalar() == ("pending")
    monkeypatch.setattr(lifecycle, "release_notice", real)
    relay.restart()
    relay.deliver(until=NOON)
    assert set(_copies(relay, "T1").values()) == {1}


def test_a_crash_while_its_copies_go_out_finishes_them_once(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp, options=RelayOptions(rate=1.0, jitter=0.0, claim_batch=1))
    _schedule(relay)
    sent = 0

    def dies_on_the_third(point: str) -> None:
        nonlocal sent
        if point == "after_send":
            sent += 1
            if sent == 3:
                raise Crash(point)

    relay.restart(faults=dies_on_the_third)
    with pytest.raises(Crash):
        relay.deliver(until=NOON)
    relay.restart()
    relay.deliver(until=NOON)
    got = _copies(relay, "T1")
    assert all(n >= 1 for n in got.values())
    with province_db.connect() as conn:
        jobs = conn.execute(
            select(RELAY_JOB.c.state, func.count())
            .where(RELAY_JOB.c.kind == "send")
            .group_by(RELAY_JOB.c.state)
        ).all()
        rows = conn.execute(select(func.count()).where(DELIVERY.c.kind == "notice")).scalar_one()
    assert jobs == [("done", 1)] and rows == len(relay.rooms)  # queued once
    # only the copy whose send the crash left unrecorded may come twice, marked 补发
    extra = [c for r in relay.rooms.values() for c in relay.copies(r, "T1")[1:]]
    assert len(extra) <= 1 and all(c.startswith("【补发】") for c in extra)


def test_a_weekly_notice_makes_one_notice_per_week_across_restarts(
    province_db: Engine, bp: Blueprint
):
    relay = RelayWorld(province_db, bp)
    _schedule(relay, "每周五 9:00 无需回执 报周报")
    restart: Callable[[], None] = relay.restart
    for day in (26, 27, 28, 30):  # Thursday … Monday, the bot restarting each day
        relay.deliver(until=datetime(2026, 11, day, 12, 0, tzinfo=TZ))
        restart()
    relay.deliver(until=datetime(2026, 12, 4, 12, 0, tzinfo=TZ))
    with province_db.connect() as conn:
        made = conn.execute(
            select(NOTICE.c.id, NOTICE.c.deadline)
            .where(NOTICE.c.series_id == 1)
            .order_by(NOTICE.c.id)
        ).all()
    assert [n for n, _ in made] == [2, 3]
    assert [TZ and d.astimezone(TZ).strftime("%m-%d %H:%M") for _, d in made] == [
        "11-27 23:59",
        "12-04 23:59",
    ]
    assert set(_copies(relay, "T2").values()) == {1} and set(_copies(relay, "T3").values()) == {1}
