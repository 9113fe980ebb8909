"""After a notice queues a burst of copies, PostgreSQL's planner is told how big the queue is:
with the statistics of the empty queue it planned the claims and wake-ups as scans of every
pending row per group (bench_relay: 812 deliveries/s instead of ~3,000)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, text

from matrix.blueprint import load_blueprint
from matrix.relay.clock import VirtualClock
from matrix.relay.delivery import refresh_queue_stats
from matrix.relay.env import RelayEnv
from matrix.relay.outbox import QUEUE_BURST, Outbox
from matrix.relay.people import GroupRef
from matrix.tables import GROUP, UNIT

START = datetime(2026, 11, 24, tzinfo=UTC)


def _reltuples(engine: Engine) -> float:
    with engine.connect() as conn:
        return float(
            conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'relay_delivery'")
            ).scalar_one()
        )


def test_a_burst_of_copies_refreshes_the_planners_picture_of_the_queue(pg_engine: Engine) -> None:
    assert _reltuples(pg_engine) == -1  # never analyzed: the planner guesses
    refresh_queue_stats(pg_engine, QUEUE_BURST - 1)  # a few copies: autovacuum will do
    assert _reltuples(pg_engine) == -1
    refresh_queue_stats(pg_engine, QUEUE_BURST)
    assert _reltuples(pg_engine) == 0  # analyzed: the queue as it really is


def _one_group(engine: Engine) -> GroupRef:
    with engine.begin() as conn:
        conn.execute(
            insert(UNIT).values(code="1", name="全国", level="national", depth=0, path="/1/")
        )
        gid = conn.execute(
            insert(GROUP)
            .values(unit_code="1", kind="k", shard=0, name="群", room_id="r1")
            .returning(GROUP.c.id)
        ).scalar_one()
    return GroupRef(id=gid, unit_code="1", kind="k", shard=0, name="群", room_id="r1")


def _queue(engine: Engine, group: GroupRef, n: int, prefix: str) -> None:
    env = RelayEnv(engine, load_blueprint("young_pioneers"), clock=VirtualClock(START))
    with engine.begin() as conn:
        outbox = Outbox(conn, env)
        for i in range(n):
            outbox.add(key=f"{prefix}{i}", kind="remind", group=group, template="t", context={})
        outbox.flush()


def test_a_reminder_round_queued_through_the_outbox_refreshes_them_too(pg_engine: Engine) -> None:
    group = _one_group(pg_engine)
    _queue(pg_engine, group, QUEUE_BURST - 1, "a")
    assert _reltuples(pg_engine) == -1
    _queue(pg_engine, group, QUEUE_BURST, "b")
    # analyzed inside the outbox's transaction, which counts its own new rows
    assert _reltuples(pg_engine) >= QUEUE_BURST
