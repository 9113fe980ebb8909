"""Benchmark: each input bomb of issue 9 against the real command line (``qunmatrix import``),
wall seconds and peak memory of the refusing process. Goal: each ≤ 5 s and ≤ 300 MB.

    .venv/bin/python tests/benchmarks/bench_bombs.py [--out DIR]

The bombs are built as in tests/test_input_limits.py (tests/bombs.py); the database holds a
small province roster, which the refusal must leave as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from matrix.blueprint import load_blueprint  # noqa: E402
from matrix.db import make_engine, migrate  # noqa: E402
from matrix.roster import import_roster, read_roster  # noqa: E402
from tests import worlds  # noqa: E402
from tests.bombs import BOMBS  # noqa: E402


def refuse(db: str, units: Path, persons: Path) -> tuple[float, float, int, str]:
    """(seconds, peak MB, exit code, last line of stderr) of one import."""
    args = [sys.executable, str(ROOT / "tests" / "capped_cli.py"), "0", "--db", db, "import"]
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*args, str(units), str(persons)], stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT
        )
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak, not this process's
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines() or [""]
    return seconds, usage.ru_maxrss / 1024, proc.returncode, lines[-1][:90]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    base = args.out or Path(tempfile.mkdtemp(prefix="qunmatrix-bombs-"))
    bp = load_blueprint("young_pioneers")
    print(f"{'bomb':<30} {'file MB':>8} {'seconds':>8} {'peak MB':>8}  exit  message")
    for name, (build, _) in BOMBS.items():
        folder = base / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        db = f"sqlite:///{folder / 'bench.db'}"
        engine = make_engine(db)
        migrate(engine)
        good = folder / "good"
        good.mkdir()
        import_roster(engine, read_roster(*worlds.write_roster(good, *worlds.province()), bp), bp)
        engine.dispose()
        units, persons = build(folder)
        size = max(units.stat().st_size, persons.stat().st_size) / 1024 / 1024
        seconds, peak, code, last = refuse(db, units, persons)
        print(f"{name:<30} {size:>8.1f} {seconds:>8.2f} {peak:>8.0f}  {code:>4}  {last}")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
