"""Benchmark: appending to the audit chain, and verifying 10⁵ entries.

    .venv/bin/python tests/benchmarks/bench_audit.py [--entries 100000] [--backend sqlite|postgresql|both]

Into a fresh SQLite file (and a fresh PostgreSQL database on QUNMATRIX_TEST_PG's server) it
appends ``--entries`` entries through ``audit_log.record``, 100 per transaction (as a roster
import or a relay burst writes them), after timing 2,000 appends of one transaction each (as
the bot writes one per command). Each entry has a detail of the size commands leave (a text of
up to 200 characters, a few keys). Then it runs ``verify`` twice and prints the best time.
Target: verify ≤ 5 s for 10⁵ entries.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from matrix import audit_log  # noqa: E402
from matrix.audit_chain import verify  # noqa: E402
from matrix.db import make_engine, migrate  # noqa: E402

PG_URL = os.environ.get("QUNMATRIX_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SINGLE = 2_000  # appends timed one per transaction
BATCH = 100


def _record(conn: object, i: int) -> None:
    audit_log.record(
        conn,  # type: ignore[arg-type]
        f"wxid_{i % 997:04d}",
        ("command.notice", "command.summary", "join.hold", "command.denied")[i % 4],
        f"23{i % 100:04d}",
        room=f"room-{i % 3000}",
        group_id=i % 3000,
        text=("请各校于今天17:00前报送建群情况" * 10)[: 20 + i % 180],
        args={"unit": f"23{i % 100:04d}"},
    )


def run(engine: Engine, entries: int) -> None:
    migrate(engine)
    start = time.perf_counter()
    for i in range(SINGLE):
        with engine.begin() as conn:
            _record(conn, i)
    single = time.perf_counter() - start
    print(f"  append, one per transaction: {SINGLE / single:,.0f} entries/s", flush=True)
    start = time.perf_counter()
    for first in range(SINGLE, entries, BATCH):
        with engine.begin() as conn:
            for i in range(first, min(first + BATCH, entries)):
                _record(conn, i)
    batched = time.perf_counter() - start
    print(
        f"  append, {BATCH} per transaction: {(entries - SINGLE) / batched:,.0f} entries/s",
        flush=True,
    )
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        with engine.connect() as conn:
            verdict = verify(conn)
        best = min(best, time.perf_counter() - start)
    assert verdict.intact and verdict.entries == entries, verdict
    print(f"  verify {verdict.entries:,} entries: {best:.2f} s (best of 2)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        path = Path(f"/tmp/bench-audit-{uuid.uuid4().hex[:8]}.db")
        print(f"SQLite ({path})", flush=True)
        engine = make_engine(f"sqlite:///{path}")
        try:
            run(engine, args.entries)
        finally:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    if args.backend in ("postgresql", "both"):
        name = f"bench_audit_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        print(f"PostgreSQL ({name})", flush=True)
        engine = make_engine(PG_URL.rsplit("/", 1)[0] + f"/{name}")
        try:
            run(engine, args.entries)
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
