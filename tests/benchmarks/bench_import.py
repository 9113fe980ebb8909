"""Benchmark: import the national sample roster into SQLite, then load the tree from the database.

    .venv/bin/python tests/benchmarks/bench_import.py [--db URL] [--out DIR]

Each step runs in its own process so that its peak memory is its own. Targets on a 2-core machine
(issue 2): import ≤ 60 s, tree load ≤ 5 s, peak memory ≤ 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def step(name: str, db: str, folder: Path) -> dict[str, float]:
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine, migrate

    bp = load_blueprint("young_pioneers")
    engine = make_engine(db)
    start = time.perf_counter()
    figures: dict[str, float] = {}
    if name == "import":
        from matrix.roster import import_roster, read_roster

        migrate(engine)
        roster = read_roster(folder / "units.csv", folder / "persons.csv", bp)
        figures["validate_s"] = time.perf_counter() - start
        report = import_roster(engine, roster, bp)
        figures["units"], figures["persons"] = report.units.added, report.persons.added
    elif name == "reimport":
        from matrix.roster import import_roster, read_roster

        report = import_roster(
            engine, read_roster(folder / "units.csv", folder / "persons.csv", bp), bp
        )
        figures["unchanged"] = float(report.unchanged)
    elif name == "tree":
        from matrix.tree import UnitTree

        tree = UnitTree.load(engine, bp.level_keys)
        figures["nodes"] = len(tree)
    figures["wall_s"] = time.perf_counter() - start
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench-out/national"))
    parser.add_argument("--db", default="")
    parser.add_argument("--step", default="")
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.step, args.db, args.out)))
        return

    from matrix.sample import generate

    if not (args.out / "persons.csv").exists():
        t = time.perf_counter()
        generate("national", args.out, seed=1)
        print(f"sample generated in {time.perf_counter() - t:.1f} s → {args.out}")
    db_file = args.out / "bench.db"
    db = args.db or f"sqlite:///{db_file}"
    if not args.db:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    print(f"database: {db}")
    for name in ("import", "tree", "reimport"):
        out = subprocess.run(
            [sys.executable, __file__, "--step", name, "--db", db, "--out", str(args.out)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        shown = ", ".join(
            f"{k}={v:,.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
        )
        print(f"{name:>9}: {shown}")


if __name__ == "__main__":
    main()
