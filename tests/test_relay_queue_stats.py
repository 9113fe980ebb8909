"""After a notice queues a burst of copies, PostgreSQL's planner is told how big the queue is:
with the statistics of the empty queue it planned the claims and wake-ups as scans of every
pending row per group (bench_relay: 812 deliveries/s instead of ~3,000)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from matrix.relay.delivery import QUEUE_BURST, refresh_queue_stats


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
