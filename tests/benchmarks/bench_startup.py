"""Benchmark: how long a small command takes, start to exit, beside the least Python can do
the same in (issue 12: `qunmatrix blueprint` and `qunmatrix --help` ≤ 0.4 s wall):

    .venv/bin/python tests/benchmarks/bench_startup.py [--runs 15]

Each command runs as the console script a user types (``.venv/bin/qunmatrix``, bytecode caches
written), alternated with its bound in the same run:

- ``blueprint``: Python importing what the command cannot do without (typer, pydantic's
  ``BaseModel``, jinja2) and exiting;
- ``--help``: Python importing typer and the rich help it prints with.

This machine's speed drifts by half within minutes, so a fixed Python loop is timed before and
after (its CPU seconds: the higher, the slower the machine was); min and median per side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BOUNDS = {
    "blueprint": "import typer, jinja2\nfrom pydantic import BaseModel",
    "--help": "import typer, typer.rich_utils",
}
GOAL = 0.4


def _probe() -> float:
    """The fixed loop the README's figures cite, run at module level as they were."""
    start = time.process_time()
    exec("total = 0\nfor i in range(10**7):\n    total += i", {})
    return time.process_time() - start


def _wall(cmd: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _line(name: str, times: list[float]) -> str:
    return f"{name:<22} min {min(times):.3f} s  median {statistics.median(times):.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = BIN / "qunmatrix"
    if not script.exists():
        sys.exit(f"no console script at {script}: install with pip install -e . first")
    print(f"fixed loop before: {_probe():.2f} s CPU")
    for command, bound in BOUNDS.items():
        ours, bare = [script, command], [sys.executable, "-c", bound]
        _wall(ours), _wall(bare)  # bytecode caches written, files in the page cache
        mine: list[float] = []
        floor: list[float] = []
        for _ in range(args.runs):
            mine.append(_wall([str(c) for c in ours]))
            floor.append(_wall([str(c) for c in bare]))
        print(_line(f"qunmatrix {command}", mine))
        print(_line("bound", floor), f"({bound.replace(chr(10), '; ')})")
        ratio = statistics.median(mine) / statistics.median(floor)
        verdict = "met" if statistics.median(mine) <= GOAL else "NOT met"
        print(f"  ratio (medians) {ratio:.2f}; goal ≤ {GOAL} s wall: {verdict}")
    print(f"fixed loop after: {_probe():.2f} s CPU")


if __name__ == "__main__":
    main()
