"""Benchmark: qunmatrix beside the bare lower bound of the same work, measured in the same run
(issue 12). Prints, per piece of work, the project's figure, the bound's, and their ratio:

    .venv/bin/python tests/benchmarks/bench_bounds.py [--out DIR] [--no-summary]

The national sample (``qunmatrix sample --scale national``, 198,833 units, 745,966 persons) is
generated once into DIR (default /tmp/qunmatrix-bench-national) and reused. Every step runs in
its own process, so that its peak memory (max RSS) is its own.

- import, SQLite: ``read_roster`` + ``import_roster`` into a fresh database, against stdlib csv
  + ``sqlite3.executemany`` into the same schema (the migrations: same indexes, triggers), with
  the same pragmas, in one transaction, computing the same derived columns (depth, path,
  person key and id, seq);
- re-import unchanged: the same import again, against reading both files and all three tables
  and comparing them;
- tree load: ``UnitTree.load`` against a SELECT + DiGraph with attributes + ``is_arborescence``;
- national summary: ``build_status`` for the country (best of 3, groups and memberships as
  bench_summary.py fills them), against one SQL aggregate over the same tables.

Each line gives wall and CPU seconds (the process's own and its children's, psql's) of each
side, their peak memory, the ratios of both, and the load average: under load the CPU ratio is
the fair comparison.

Goals: import ≤ 1.5× and ≤ 700 MB; re-import ≤ 1.5× and ≤ 1.0 GB; tree load ≤ 1.2×.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000")


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for (psql): on 2 shared
    cores the wall clock measures the neighbours as much as the work, the CPU time does not."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class _Clock:
    """Wall and CPU seconds from when it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), _cpu()

    def figures(self, **more: Any) -> dict[str, Any]:
        return {"seconds": time.perf_counter() - self.wall, "cpu": _cpu() - self.cpu, **more}


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _levels() -> tuple[dict[str, str], dict[str, int], dict[str, str]]:
    from matrix.blueprint import load_blueprint

    bp = load_blueprint("young_pioneers")
    level_of = {k: lvl.key for lvl in bp.levels for k in (lvl.key, lvl.label)}
    depth = {lvl.key: i for i, lvl in enumerate(bp.levels)}
    role_of = {k: r.key for r in bp.roles for k in (r.key, r.label)}
    return level_of, depth, role_of


def _read_units(
    path: Path, level_of: dict[str, str], depth: dict[str, int]
) -> list[tuple[Any, ...]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        raw = [(c, n, level_of[lv], p or None) for c, n, lv, p in reader]
    parent = {r[0]: r[3] for r in raw}
    paths: dict[str, str] = {}
    for code in parent:
        chain, node = [], code
        while node is not None and node not in paths:
            chain.append(node)
            node = parent[node]
        prefix = paths[node] if node is not None else "/"
        for n in reversed(chain):
            prefix = paths[n] = f"{prefix}{n}/"
    rows = [(c, n, lv, depth[lv], p, paths[c]) for c, n, lv, p in raw]
    rows.sort(key=lambda r: r[3])
    return rows


def _read_persons(
    path: Path, role_of: dict[str, str]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    persons: dict[str, tuple[Any, ...]] = {}
    positions: list[tuple[Any, ...]] = []
    seq: dict[tuple[str, str], int] = defaultdict(int)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for unit, name, role, phone, wechat in reader:
            key = (
                f"wx:{wechat}"
                if wechat
                else f"tel:{phone}:{name}"
                if phone
                else f"unit:{unit}:{name}"
            )
            known = persons.get(key)
            pid = known[0] if known else len(persons) + 1
            if known is None:
                persons[key] = (pid, key, name, phone or None, wechat or None)
            role = role_of[role]
            seq[(unit, role)] += 1
            positions.append((pid, unit, role, seq[(unit, role)]))
    return list(persons.values()), positions


def _read_both(folder: Path) -> tuple[_Clock, tuple[list[tuple[Any, ...]], ...]]:
    """(clock, (units, persons, positions)): the blueprint is read before the clock."""
    level_of, depth, role_of = _levels()
    start = _Clock()
    units = _read_units(folder / "units.csv", level_of, depth)
    return start, (units, *_read_persons(folder / "persons.csv", role_of))


def bound_import(folder: Path, db: Path) -> dict[str, Any]:
    start, (units, persons, positions) = _read_both(folder)
    conn = _connect(db)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO unit (code, name, level, depth, parent_code, path) VALUES (?, ?, ?, ?, ?, ?)",
        units,
    )
    conn.executemany(
        "INSERT INTO person (id, key, name, phone, wechat_id) VALUES (?, ?, ?, ?, ?)", persons
    )
    conn.executemany(
        "INSERT INTO position (person_id, unit_code, role, seq) VALUES (?, ?, ?, ?)", positions
    )
    conn.execute("COMMIT")
    conn.close()
    return start.figures(rows=len(units) + len(persons))


def bound_reimport(folder: Path, db: Path) -> dict[str, Any]:
    start, (units, persons, positions) = _read_both(folder)
    conn = _connect(db)
    stored_units = {
        r[0]: r
        for r in conn.execute(
            "SELECT code, name, level, depth, parent_code, path FROM unit WHERE removed_at IS NULL"
        )
    }
    stored_persons = {
        r[1]: r
        for r in conn.execute(
            "SELECT id, key, name, phone, wechat_id FROM person WHERE removed_at IS NULL"
        )
    }
    stored_positions = set(conn.execute("SELECT person_id, unit_code, role, seq FROM position"))
    conn.close()
    same = (
        all(stored_units.get(u[0]) == u for u in units)
        and all(stored_persons.get(p[1], (None,))[1:] == p[1:] for p in persons)
        and len(stored_positions) == len(positions)
    )
    return start.figures(unchanged=same)


def bound_tree(db: Path) -> dict[str, Any]:
    import networkx as nx

    start = _Clock()
    conn = _connect(db)
    rows = conn.execute(
        "SELECT code, name, level, parent_code FROM unit WHERE removed_at IS NULL"
    ).fetchall()
    conn.close()
    graph: Any = nx.DiGraph()
    graph.add_nodes_from((c, {"name": n, "level": lv}) for c, n, lv, _ in rows)
    graph.add_edges_from((p, c) for c, _, _, p in rows if p is not None)
    assert nx.is_arborescence(graph)
    return start.figures(nodes=graph.number_of_nodes())


def project_import(folder: Path, db: Path) -> dict[str, Any]:
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine
    from matrix.roster import import_roster, read_roster

    bp = load_blueprint("young_pioneers")
    engine = make_engine(f"sqlite:///{db}")
    start = _Clock()
    report = import_roster(
        engine, read_roster(folder / "units.csv", folder / "persons.csv", bp), bp
    )
    return start.figures(rows=report.units.added + report.persons.added, unchanged=report.unchanged)


def project_tree(db: Path) -> dict[str, Any]:
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine
    from matrix.tree import UnitTree

    bp = load_blueprint("young_pioneers")
    engine = make_engine(f"sqlite:///{db}")
    start = _Clock()
    tree = UnitTree.load(engine, bp.level_keys)
    return start.figures(nodes=len(tree))


def summary(db: Path) -> dict[str, Any]:
    """Both sides in one process: the groups are filled once, then each is timed, best of 3."""
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine
    from matrix.sample import NATIONAL_CODE
    from matrix.summary import build_status
    from tests.benchmarks.bench_summary import fill

    bp = load_blueprint("young_pioneers")
    engine = make_engine(f"sqlite:///{db}")
    fill(engine, bp)

    def project() -> None:
        build_status(
            engine, bp, requester=NATIONAL_CODE, target=NATIONAL_CODE, as_of=date(2026, 5, 1)
        )

    def bound() -> None:
        conn = _connect(db)
        conn.execute(
            "SELECT u.level, count(DISTINCT g.id), count(DISTINCT g.room_id),"
            " sum(m.state = 'expected'), sum(m.state = 'actual')"
            " FROM unit u JOIN wgroup g ON g.unit_code = u.code"
            " LEFT JOIN membership m ON m.group_id = g.id"
            " WHERE u.removed_at IS NULL AND u.path >= '/' GROUP BY u.level"
        ).fetchall()
        conn.close()

    figures: dict[str, Any] = {}
    for name, fn in (("project", project), ("bound", bound)):
        runs = []
        for _ in range(3):
            start = _Clock()
            fn()
            runs.append(start.figures())
        figures[name] = min(runs, key=lambda f: f["seconds"])
    return figures


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def pg_drop(name: str, *, create: bool = False) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_SERVER.replace("postgresql:", "postgresql+psycopg:") + "/test")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        if create:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def pg_fresh(name: str) -> str:
    """A new, migrated PostgreSQL database ``name`` (dropped first if it exists)."""
    from matrix.db import make_engine, migrate

    pg_drop(name, create=True)
    engine = make_engine(f"{PG_SERVER}/{name}")
    migrate(engine)
    engine.dispose()
    return f"{PG_SERVER}/{name}"


def pg_project_import(folder: Path, url: str) -> dict[str, Any]:
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine
    from matrix.roster import import_roster, read_roster

    bp = load_blueprint("young_pioneers")
    engine = make_engine(url)
    start = _Clock()
    import_roster(engine, read_roster(folder / "units.csv", folder / "persons.csv", bp), bp)
    return start.figures()


def pg_bound_import(folder: Path, url: str) -> dict[str, Any]:
    """The same derived rows written to CSV and loaded by `psql \\copy`, in one transaction."""
    start, (units, persons, positions) = _read_both(folder)
    parts = {
        "unit (code, name, level, depth, parent_code, path)": units,
        "person (id, key, name, phone, wechat_id)": persons,
        "position (person_id, unit_code, role, seq)": positions,
    }
    script = ["BEGIN;"]
    for i, (target, rows) in enumerate(parts.items()):
        path = folder / f"bound-{i}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)
        script.append(f"\\copy {target} FROM '{path}' WITH (FORMAT csv)")
    script.append("COMMIT;")
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input="\n".join(script), text=True, check=True
    )
    return start.figures()


def step(name: str, folder: Path, url: str) -> dict[str, Any]:
    db = Path(url)
    done = {
        "project-import": lambda: project_import(folder, db),
        "bound-import": lambda: bound_import(folder, db),
        "project-reimport": lambda: project_import(folder, db),
        "bound-reimport": lambda: bound_reimport(folder, db),
        "project-tree": lambda: project_tree(db),
        "bound-tree": lambda: bound_tree(db),
        "summary": lambda: summary(db),
        "pg-project-import": lambda: pg_project_import(folder, url),
        "pg-bound-import": lambda: pg_bound_import(folder, url),
    }[name]()
    done["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return done


def run(name: str, folder: Path, db: Path | str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--step", name, "--out", str(folder), "--db", str(db)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fresh(db: Path) -> Path:
    from matrix.db import make_engine, migrate

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)  # the schema is not part of either figure
    engine.dispose()
    return db


def _side(f: dict[str, Any]) -> str:
    return f"{f['seconds']:>7.2f} s {f['cpu']:>7.2f} s {f.get('peak_mb', 0):>5.0f} MB"


def show(work: str, project: dict[str, Any], bound: dict[str, Any]) -> None:
    """One line: each side's wall and CPU seconds and peak memory, both ratios, and the load
    average the line was measured under (two other jobs may share the cores)."""
    wall, cpu = project["seconds"] / bound["seconds"], project["cpu"] / bound["cpu"]
    load = os.getloadavg()[0]
    print(
        f"{work:<28} {_side(project)}   {_side(bound)}   {wall:>5.2f} {cpu:>5.2f}  {load:>4.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/qunmatrix-bench-national"))
    parser.add_argument("--db", default="")  # a file, or a PostgreSQL URL (no Path: it folds //)
    parser.add_argument("--step", default="")
    parser.add_argument("--no-summary", action="store_true")
    parser.add_argument("--pg", action="store_true", help="also import on PostgreSQL (COPY)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each side N times, alternating; keep the best"
    )
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.step, args.out, args.db)))
        return
    if not (args.out / "persons.csv").exists():
        from matrix.sample import generate

        generate("national", args.out, seed=1)
    project_db, bound_db = args.out / "project.db", args.out / "bound.db"
    side = f"{'wall':>9} {'CPU':>9} {'peak':>8}"
    print(f"{'':<28} {'qunmatrix':^28}   {'bound':^28}   {'ratio':^11}")
    print(f"{'work':<28} {side}   {side}   {'wall':>5} {'CPU':>5}  load")

    def best(*runs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # the machine is shared: alternate the two sides and keep each one's best run
        sides: list[list[dict[str, Any]]] = [[], []]
        for _ in range(args.repeat):
            for side, make in zip(sides, runs, strict=True):
                side.append(make())
        return min(sides[0], key=lambda f: f["seconds"]), min(sides[1], key=lambda f: f["seconds"])

    first, bound = best(
        lambda: run("project-import", args.out, fresh(project_db)),
        lambda: run("bound-import", args.out, fresh(bound_db)),
    )
    show("import, SQLite", first, bound)
    again, bound = best(
        lambda: run("project-reimport", args.out, project_db),
        lambda: run("bound-reimport", args.out, project_db),
    )
    assert again["unchanged"], "the re-import found changes"
    show("re-import unchanged, SQLite", again, bound)
    show(
        "tree load",
        *best(
            lambda: run("project-tree", args.out, project_db),
            lambda: run("bound-tree", args.out, project_db),
        ),
    )
    if args.pg:
        show(
            "import, PostgreSQL",
            *best(
                lambda: run("pg-project-import", args.out, pg_fresh("qm_bench_project")),
                lambda: run("pg-bound-import", args.out, pg_fresh("qm_bench_bound")),
            ),
        )
        pg_drop("qm_bench_project")
        pg_drop("qm_bench_bound")
    if not args.no_summary:
        figures = run("summary", args.out, project_db)
        show("national summary (best of 3)", figures["project"], figures["bound"])


if __name__ == "__main__":
    main()
