"""Benchmark: a national notice with files, beside the same notice as text only, on the
simulated WeChat with pacing off (the engine's own cost).

    .venv/bin/python tests/benchmarks/bench_notice_files.py [--accounts 8] [--files 2]
                                                            [--mb 2.0] [--out DIR] [--pg URL]

Set-up (not timed): the national sample roster and its relay groups, as ``bench_relay.py``
builds them (cached in ``--out``); ``--files`` files of ``--mb`` MB each on the issuer's "phone".

Figures, per run:
- planning: ``issue_notice`` for the national office (for the files: the checks and the copy
  into the bot's store, then one ``file`` row per group and file after each copy);
- deliveries/s: every copy and every file sent by ``--accounts`` workers, pacing off. A file is
  sent only once its group's text went, and written as sent at once (one commit per file), so
  its cost per delivery is higher than a text's; the figure says by how much.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from matrix.blueprint import load_blueprint
from matrix.db import make_engine
from matrix.relay import RelayEnv, RelayOptions, SystemClock, drive
from matrix.relay.attachments import NoticeFile
from matrix.relay.notices import issue_notice
from matrix.relay.options import AttachmentOptions
from tests.benchmarks.bench_relay import (
    PG_ADMIN,
    TZ,
    base_database,
    build_groups,
    copy_to_postgres,
    drop_database,
    fresh_copy,
    national_office,
    start_workers,
    world_for,
)


def phone_files(folder: Path, count: int, mb: float) -> list[NoticeFile]:
    """The files the issuer sent in the group (a PDF, a spreadsheet, …)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        path = folder / f"附件{i + 1}.{('pdf', 'xlsx', 'docx')[i % 3]}"
        with open(path, "wb") as out:
            out.write(f"{uuid.uuid4()}".encode())  # each run's files differ: a fresh copy
            out.truncate(int(mb * 1024 * 1024))
        files.append(NoticeFile(path.name, path.stat().st_size, str(path)))
    return files


def run(url: str, accounts: list[str], files: list[NoticeFile], store: Path, label: str) -> None:
    bp = load_blueprint("young_pioneers")
    engine = make_engine(url)
    options = RelayOptions(
        rate=0.0, claim_batch=64, attachments=AttachmentOptions(dir=str(store), store_max_mb=1e6)
    )
    env = RelayEnv(engine, bp, options, TZ, SystemClock())
    world = world_for(engine, accounts, time.monotonic, 0.0)
    workers = asyncio.run(start_workers(env, world))
    room, office = national_office(engine)
    t = time.perf_counter()
    plan = issue_notice(env, room, office, "请各级少工委当天传达到基层 无需回执", files)
    planning = time.perf_counter() - t
    t = time.perf_counter()
    asyncio.run(drive(env, workers))
    wall = time.perf_counter() - t
    texts = sum(1 for m in world.messages() if "【通知 T" in m.text)
    sent_files = sum(1 for m in world.messages() if m.file)
    assert texts == plan.groups and sent_files == plan.groups * len(files), (texts, sent_files)
    total = texts + sent_files
    print(
        f"{label}: {plan.groups:,} groups, {len(files)} files each; planning {planning:.2f} s; "
        f"{total:,} deliveries ({texts:,} texts + {sent_files:,} files) in {wall:.1f} s = "
        f"{total / wall:,.0f} deliveries/s ({len(accounts)} workers, pacing off)"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench-out/national"))
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--mb", type=float, default=2.0)
    parser.add_argument("--pg", default="", help=f"also on PostgreSQL, e.g. {PG_ADMIN}")
    args = parser.parse_args()
    bp = load_blueprint("young_pioneers")
    args.out.mkdir(parents=True, exist_ok=True)
    accounts = [f"bot{i + 1}" for i in range(args.accounts)]
    base = base_database(args.out, bp)
    ready, work = args.out / "files-ready.db", args.out / "files-work.db"
    fresh_copy(base, ready)
    engine = make_engine(f"sqlite:///{ready}")
    build_groups(engine, bp, accounts, "overlapping")
    engine.dispose()
    files = phone_files(args.out / "phone", args.files, args.mb)
    store = args.out / "store"
    for label, carried in (("text only", []), ("with files", files)):
        fresh_copy(ready, work)
        run(f"sqlite:///{work}", accounts, carried, store, f"SQLite, {label}")
        if args.pg:
            name, url = copy_to_postgres(ready, args.pg)
            try:
                run(url, accounts, carried, store, f"PostgreSQL, {label}")
            finally:
                drop_database(args.pg, name)


if __name__ == "__main__":
    main()
