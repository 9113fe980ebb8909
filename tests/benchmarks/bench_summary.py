"""Benchmark: the build-status summary (附件2) for the whole country and for one province.

    .venv/bin/python tests/benchmarks/bench_summary.py [--backend sqlite|postgresql|both]

Generates the national sample (as ``qunmatrix sample --scale national --out /tmp/sum-national``),
imports it into a fresh SQLite file and a fresh PostgreSQL database (QUNMATRIX_TEST_PG's server),
then inserts, as provisioning would leave them: one main group for every unit of a leading
level (split into shards of at most 500 where the expected members need it), room ids for about
90% of them, expected memberships from the blueprint's main-group selectors, and actual
memberships for about 85% of the expected persons of each built group plus a few unknown
contacts. It prints the time of ``build_status`` for the country and for the largest province
(first call and the best of five). Targets: national ≤ 1 s, province ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, create_engine, insert, select, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from matrix.blueprint import Blueprint, load_blueprint  # noqa: E402
from matrix.db import make_engine, migrate  # noqa: E402
from matrix.models import Group, Position, Unit  # noqa: E402
from matrix.roster import import_roster, read_roster  # noqa: E402
from matrix.sample import NATIONAL_CODE, generate  # noqa: E402
from matrix.summary import build_status  # noqa: E402

OUT = Path("/tmp/sum-national")
PG_URL = os.environ.get("QUNMATRIX_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BUILT_SHARE = 0.9
JOINED_SHARE = 0.85
UNKNOWN_SHARE = 0.02


def timed(label: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = fn()
    print(f"  {label}: {time.perf_counter() - start:.2f} s", flush=True)
    return result


def sample() -> tuple[Path, Path]:
    units, persons = OUT / "units.csv", OUT / "persons.csv"
    if not (units.exists() and persons.exists()):
        generate("national", OUT, seed=1)
    return units, persons


names: dict[str, str] = {}
SHARD_NAMES = "一二三四五六七八九十"


def expected_members(engine: Engine, bp: Blueprint) -> dict[tuple[str, str], list[int]]:
    """(leading unit, kind) → person ids, from each main group's selectors (self/children and
    the per-unit quota), computed from position tuples as provisioning would."""
    unit_t, pos_t = Unit.__table__, Position.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        parent = dict(conn.execute(select(unit_t.c.code, unit_t.c.parent_code)).all())
        level = dict(conn.execute(select(unit_t.c.code, unit_t.c.level)).all())
        names.update(conn.execute(select(unit_t.c.code, unit_t.c.name)).all())
        holders: dict[tuple[str, str], list[int]] = defaultdict(list)
        for pid, unit, role in conn.execute(
            select(pos_t.c.person_id, pos_t.c.unit_code, pos_t.c.role).order_by(
                pos_t.c.unit_code, pos_t.c.role, pos_t.c.seq
            )
        ):
            holders[(unit, role)].append(pid)
    children: dict[str, list[str]] = defaultdict(list)
    for code, up in parent.items():
        if up is not None:
            children[up].append(code)
    out: dict[tuple[str, str], list[int]] = {}
    for spec in bp.groups:
        if not spec.main:
            continue
        for code in (c for c, lvl in level.items() if lvl == spec.led_by):
            people: list[int] = []
            for sel in spec.members:
                units = [code] if sel.scope == "self" else children[code]
                for u in units:
                    found = holders.get((u, sel.role), [])
                    people += found[: sel.max] if sel.max else found
            out[(code, spec.key)] = list(dict.fromkeys(people))
    return out


def fill(engine: Engine, bp: Blueprint) -> None:
    """Groups and memberships for every leading unit's main group."""
    rng = random.Random(7)
    wanted = timed("expected members computed", lambda: expected_members(engine, bp))
    cap = bp.matrix.max_group_size
    groups: list[dict[str, Any]] = []
    members: list[tuple[int, str, int | None, str | None]] = []
    gid = 0
    for (code, kind), people in sorted(wanted.items()):
        shards = max(1, -(-len(people) // (cap - 3)))
        for s in range(shards):
            gid += 1
            built = rng.random() < BUILT_SHARE
            part = people[s::shards]
            groups.append(
                {
                    "id": gid,
                    "unit_code": code,
                    "kind": kind,
                    "shard": 0 if shards == 1 else s + 1,
                    "name": bp.group(kind).name.format(
                        unit=SimpleNamespace(name=names[code], code=code),
                        shard="" if shards == 1 else SHARD_NAMES[s],
                    ),
                    "room_id": f"room-{gid}" if built else None,
                }
            )
            members += [(gid, "expected", p, None) for p in part]
            if built:
                members += [(gid, "actual", p, None) for p in part if rng.random() < JOINED_SHARE]
                unknown = round(len(part) * UNKNOWN_SHARE)
                members += [(gid, "actual", None, f"wxid_{gid}_{i}") for i in range(unknown)]
    print(f"  {len(groups):,} groups, {len(members):,} memberships", flush=True)
    group_t = Group.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(insert(group_t), groups)
        raw: Any = conn.connection.dbapi_connection
        cur = raw.cursor()
        cols = "group_id, state, person_id, contact_id, is_admin, source, updated_at"
        if engine.dialect.name == "postgresql":
            with cur.copy(f"COPY membership ({cols}) FROM STDIN") as copy:
                for g, state, p, contact in members:
                    copy.write_row((g, state, p, contact, False, "bench", "2026-01-01"))
        else:
            cur.executemany(
                f"INSERT INTO membership ({cols}) VALUES (?, ?, ?, ?, 0, 'bench', '2026-01-01')",
                members,
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))


def _largest(conn: Any) -> str:
    group_t = Group.__table__  # type: ignore[attr-defined]
    unit_t = Unit.__table__  # type: ignore[attr-defined]
    # the province whose counties lead the most groups: the heaviest province table
    rows = conn.execute(
        select(unit_t.c.path, group_t.c.id).join(group_t, group_t.c.unit_code == unit_t.c.code)
    ).all()
    counts: dict[str, int] = defaultdict(int)
    for path, _ in rows:
        parts = path.strip("/").split("/")
        if len(parts) >= 2:
            counts[parts[1]] += 1
    return max(counts, key=lambda k: counts[k])


def measure(engine: Engine, bp: Blueprint, label: str, target: str) -> None:
    def run() -> Any:
        return build_status(
            engine, bp, requester=NATIONAL_CODE, target=target, as_of=date(2026, 5, 1)
        )

    start = time.perf_counter()
    status = run()
    first = time.perf_counter() - start
    times = []
    for _ in range(5):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    levels = " · ".join(
        f"{lv.label} 建群 {lv.built_groups}/{lv.expected_groups} 入群 "
        f"{lv.joined_members}/{lv.expected_members} 联系人 {lv.members}"
        for lv in status.levels
    )
    print(
        f"  {label} ({status.unit.name}): first {first * 1000:.0f} ms, "
        f"best {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms; "
        f"{levels}; 未建 {len(status.unbuilt)} 个单位",
        flush=True,
    )


def bench(engine: Engine, bp: Blueprint, units: Path, persons: Path) -> None:
    migrate(engine)
    roster = timed("roster read", lambda: read_roster(units, persons, bp))
    timed("roster import", lambda: import_roster(engine, roster, bp))
    timed("groups and memberships inserted", lambda: fill(engine, bp))
    province = _province(engine)
    measure(engine, bp, "national", NATIONAL_CODE)
    measure(engine, bp, "province", province)


def _province(engine: Engine) -> str:
    with engine.connect() as conn:
        return _largest(conn)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--keep", action="store_true", help="keep the PostgreSQL database (for EXPLAIN ANALYZE)"
    )
    args = parser.parse_args()
    bp = load_blueprint("young_pioneers")
    units, persons = timed("national sample", sample)
    if args.backend in ("sqlite", "both"):
        print("SQLite", flush=True)
        db = OUT / "bench-summary.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{db}")
        bench(engine, bp, units, persons)
        engine.dispose()
    if args.backend in ("postgresql", "both"):
        print("PostgreSQL", flush=True)
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        name = f"qm_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(PG_URL.rsplit("/", 1)[0] + f"/{name}")
        try:
            bench(engine, bp, units, persons)
        finally:
            engine.dispose()
            if args.keep:
                print(f"  kept: {PG_URL.rsplit('/', 1)[0]}/{name}")
            else:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
