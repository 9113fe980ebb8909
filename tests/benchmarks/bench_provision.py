"""Benchmark: expected membership + plan + audit for the whole country, and for single counties.

    .venv/bin/python tests/benchmarks/bench_provision.py [--out /tmp/prov-national] [--fresh]

Generates the national sample (``qunmatrix sample --scale national``) and imports it into SQLite
(both once, in child processes, and kept in --out for the next run). Two states are measured:

* ``empty``: nothing built yet; the plan creates every required group and invites everyone.
* ``built``: every required group built and read back (about 690,000 actual members), with
  drift: ~2% of members missing, strangers and members of other counties in ~1% of rooms,
  some bad 群昵称; the plan repairs it and the audit finds it.

Each state is measured in a fresh child process, so the peak memory (``ru_maxrss``) is that of
the measured work only. Targets on a 2-core machine: national ≤ 10 s and ≤ 1.5 GB; a county
≤ 50 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUNMATRIX = ROOT / ".venv" / "bin" / "qunmatrix"
COUNTIES = 25  # counties timed one by one, the biggest among them


def run(*args: str) -> None:
    subprocess.run([str(QUNMATRIX), *args], check=True, stdout=subprocess.DEVNULL)


def prepare(out: Path, fresh: bool) -> tuple[Path, Path]:
    """The national roster in ``empty.db``; ``built.db`` with the groups built and drifted."""
    out.mkdir(parents=True, exist_ok=True)
    empty, built = out / "empty.db", out / "built.db"
    if fresh:
        for p in (empty, built):
            p.unlink(missing_ok=True)
    if not (out / "persons.csv").exists():
        print("generating the national sample …", flush=True)
        run("sample", "--scale", "national", "--out", str(out))
    if not empty.exists():
        print("importing it into SQLite …", flush=True)
        partial = out / "empty.db.partial"
        partial.unlink(missing_ok=True)
        run("--db", f"sqlite:///{partial}", "init")
        run(
            "--db",
            f"sqlite:///{partial}",
            "import",
            str(out / "units.csv"),
            str(out / "persons.csv"),
        )
        partial.rename(empty)
        built.unlink(missing_ok=True)
    if not built.exists():
        print("building the matrix and its drift …", flush=True)
        partial = out / "built.db.partial"
        shutil.copy(empty, partial)
        subprocess.run([sys.executable, __file__, "--build", str(partial)], check=True)
        partial.rename(built)
    return empty, built


def build(path: Path) -> None:
    """Write rooms and actual members as a sync would have, with drift (child process)."""
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine
    from matrix.provisioning.membership import survey

    rng = random.Random(2017)
    bp = load_blueprint("young_pioneers")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        s = survey(conn, bp)
    required = [t for t in s.targets if t.required]
    con = sqlite3.connect(path)
    wechat = dict(con.execute("SELECT id, wechat_id FROM person WHERE wechat_id IS NOT NULL"))
    groups, seats = [], []
    county_people = [t.members for t in required if t.kind == "county-counselors"]
    for gid, t in enumerate(required, start=1):
        groups.append((gid, t.unit, t.kind, t.shard, t.name, f"room{gid}", "bot"))
        admins = set(t.admins)
        for pid in t.members:
            if pid not in wechat or (pid not in admins and rng.random() < 0.02):
                continue
            nick = "老师" if rng.random() < 0.01 else f"单位-{pid}"
            seats.append((gid, pid, wechat[pid], pid in admins, nick))
        if rng.random() < 0.01:
            seats.append((gid, None, f"wxid_stranger{gid}", False, "陌生人"))
        if rng.random() < 0.01:
            other = rng.choice(county_people)
            pid = rng.choice(other)
            if pid in wechat and pid not in t.members:
                seats.append((gid, pid, wechat[pid], False, f"单位-{pid}"))
    con.executemany(
        "INSERT INTO wgroup (id, unit_code, kind, shard, name, room_id, owner_account, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, '2026-01-01 00:00:00')",
        groups,
    )
    con.executemany(
        "INSERT INTO membership (group_id, state, person_id, contact_id, is_admin, nickname,"
        " source, updated_at) VALUES (?, 'actual', ?, ?, ?, ?, 'platform', '2026-01-01 00:00:00')",
        seats,
    )
    con.commit()
    con.close()
    print(f"  {len(groups):,} rooms, {len(seats):,} actual members", flush=True)


def measure(path: Path) -> dict[str, object]:
    """Time one state in this (fresh) process and report the peak memory."""
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine
    from matrix.provisioning.findings import audit
    from matrix.provisioning.membership import survey
    from matrix.provisioning.plan import build_plan
    from matrix.provisioning.schedule import AccountQuota

    bp = load_blueprint("young_pioneers")
    engine = make_engine(f"sqlite:///{path}")
    accounts = [AccountQuota("bot")]
    with engine.connect() as conn:
        t0 = time.perf_counter()
        s = survey(conn, bp, bots=["bot"])
        t1 = time.perf_counter()
        plan = build_plan(s, accounts)
        t2 = time.perf_counter()
        found = audit(conn, s)
        t3 = time.perf_counter()
        members = sum(len(t.members) for t in s.targets)
        counties = sorted(
            (t for t in s.targets if t.kind == "county-counselors"), key=lambda t: -len(t.members)
        )
        codes = [t.unit for t in counties[:5]] + [
            t.unit for t in counties[5 :: max(1, len(counties) // COUNTIES)]
        ]
        codes = list(dict.fromkeys(codes))[:COUNTIES]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del s, plan, found
    county_times = []
    for code in codes:
        with engine.connect() as conn:
            c0 = time.perf_counter()
            cs = survey(conn, bp, code, bots=["bot"])
            build_plan(cs, accounts)
            audit(conn, cs)
            county_times.append((time.perf_counter() - c0) * 1000)
    with engine.connect() as conn:
        s = survey(conn, bp, bots=["bot"])
        plan = build_plan(s, accounts)
        findings = audit(conn, s)
    return {
        "survey_s": round(t1 - t0, 2),
        "plan_s": round(t2 - t1, 2),
        "audit_s": round(t3 - t2, 2),
        "total_s": round(t3 - t0, 2),
        "peak_mb": round(peak),
        "rooms": len(s.targets),
        "members": members,
        "actions": sum(plan.counts().values()),
        "counts": plan.counts(),
        "days": plan.schedule.days,
        "optimal": plan.schedule.optimal,
        "findings": len(findings),
        "county_ms_median": round(statistics.median(county_times), 1),
        "county_ms_max": round(max(county_times), 1),
        "counties": len(county_times),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/prov-national"))
    ap.add_argument("--fresh", action="store_true", help="regenerate the databases")
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(args.build)
        return
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    empty, built = prepare(args.out, args.fresh)
    for label, path in (("empty", empty), ("built", built)):
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{label:5}  national: expected {r['survey_s']} s + plan {r['plan_s']} s + audit "
            f"{r['audit_s']} s = {r['total_s']} s, peak {r['peak_mb']} MB  |  {r['rooms']:,} rooms, "
            f"{r['members']:,} expected members, {r['actions']:,} steps over {r['days']} days "
            f"(optimal: {r['optimal']}), {r['findings']:,} findings  |  one county "
            f"(of {r['counties']}, biggest first): median {r['county_ms_median']} ms, "
            f"max {r['county_ms_max']} ms"
        )
        print(f"       steps: {r['counts']}", flush=True)


if __name__ == "__main__":
    main()
