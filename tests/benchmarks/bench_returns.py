"""Benchmark: a national 填报 to every relay group of the national sample, answered by every unit
that owes it, then ``#汇总 F1 xlsx`` for the whole country.

    .venv/bin/python tests/benchmarks/bench_returns.py [--out DIR] [--answers N] [--inflight 2000]
                                                       [--batch 500]

Set-up (not timed): the national roster is imported into SQLite once (cached in ``--out``, as
``bench_relay.py`` does), its relay groups built (``bench_relay.build_groups``), and the
national office issues form F1 (two fields) with ``issue_form``; every unit that owes an answer
gets a person with a 微信号 and the room of the group it answers in.

Figures:
- answers/s along the path a chat answer takes after the dispatcher: ``parse_answer`` of the
  typed text, the process's ``AnswerWriter`` (answers in flight together go in one transaction),
  ``record_answers`` with every check (the person by contact id, their unit, the copy in that
  group, the deadline, the fields) and its writes (the answer, the receipt, the audit entry);
  ``--inflight`` answers are awaited at once, as the chat's rooms would have them;
- the same path one answer per transaction, for comparison (the first 2,000 answers of a second
  form);
- ``#汇总 F1 xlsx`` for the country: ``form_table`` (one query) and the write-only XLSX, and
  the CSV.

Targets (issue 14): ≥ 2,000 answers/s; the national XLSX in ≤ 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from bot.chat.returns import AnswerWriter, compose
from bot.render.returns import render_file
from matrix.blueprint import Blueprint, load_blueprint
from matrix.db import make_engine
from matrix.relay import RelayEnv, RelayOptions, VirtualClock
from matrix.relay.acks import expected_units
from matrix.relay.people import unit
from matrix.returns.answers import AnswerRequest, parse_answer, record_answers
from matrix.returns.forms import issue_form
from matrix.returns.table import form_table
from matrix.tables import DELIVERY, GROUP, NOTICE, PERSON, POSITION, UNIT
from tests.benchmarks.bench_relay import (
    START,
    TZ,
    base_database,
    build_groups,
    national_office,
)

FORM = "少先队员人数统计 字段 人数 中队数 截止 20:00"


class Core:
    """What ``AnswerWriter`` uses of the bot process: its quick worker threads."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(4)

    async def offload_quick(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, lambda: fn(*args, **kwargs)
        )


def answerers(engine: Engine, bp: Blueprint, notice_id: int) -> list[tuple[str, str]]:
    """(room, contact) for every unit that owes the form an answer: one of its people (given a
    微信号 if the sample left it blank) in a group of its parent's."""
    with engine.begin() as conn:
        conn.execute(
            update(PERSON)
            .where(PERSON.c.wechat_id.is_(None))
            .values(wechat_id="wxb" + PERSON.c.id.cast(PERSON.c.name.type))
        )
        top = unit(conn, conn.execute(select(NOTICE.c.unit_code)).scalar_one())
        assert top is not None
        room_of = dict(
            conn.execute(
                select(GROUP.c.unit_code, GROUP.c.room_id)
                .join(DELIVERY, DELIVERY.c.group_id == GROUP.c.id)
                .where(DELIVERY.c.notice_id == notice_id)
                .order_by(GROUP.c.shard.desc())
            ).all()
        )
        person_of: dict[str, str] = {}
        for code, contact in conn.execute(
            select(POSITION.c.unit_code, PERSON.c.wechat_id)
            .join(PERSON, PERSON.c.id == POSITION.c.person_id)
            .where(POSITION.c.unit_code.in_(expected_units(notice_id, top, bp)))
            .order_by(POSITION.c.unit_code, POSITION.c.seq)
        ):
            person_of.setdefault(code, contact)
        parents = dict(conn.execute(select(UNIT.c.code, UNIT.c.parent_code)).all())
    return [
        (room_of[parents[code]], contact)
        for code, contact in sorted(person_of.items())
        if parents.get(code) in room_of
    ]


async def answer_all(env: RelayEnv, asks: list[tuple[str, str]], inflight: int, batch: int) -> Any:
    """Every answer through the writer, ``inflight`` awaited together; (seconds, batches, refused)."""
    writer = AnswerWriter(env, Core(), limit=batch)  # type: ignore[arg-type]
    refused = 0

    async def one(room: str, contact: str, n: int) -> None:
        nonlocal refused
        draft = parse_answer(f"F1 {100 + n % 900} {1 + n % 12}")
        try:
            await writer.submit(AnswerRequest(room, contact, draft))
        except Exception:
            refused += 1

    t = time.perf_counter()
    for start in range(0, len(asks), inflight):
        chunk = asks[start : start + inflight]
        await asyncio.gather(*(one(r, c, start + i) for i, (r, c) in enumerate(chunk)))
    return time.perf_counter() - t, writer.batches, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-out/national"))
    parser.add_argument("--answers", type=int, default=0, help="at most this many (0: all)")
    parser.add_argument("--inflight", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--table-only", action="store_true", help="only #汇总 F1, on the last run's database"
    )
    args = parser.parse_args()
    bp = load_blueprint("young_pioneers")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        engine = make_engine(f"sqlite:///{args.out / 'returns.db'}")
        table_figures(RelayEnv(engine, bp, RelayOptions(), TZ, VirtualClock(START)))
        return
    base = base_database(args.out, bp)
    db = args.out / "returns.db"
    shutil.copy(base, db)
    engine = make_engine(f"sqlite:///{db}")
    build_groups(engine, bp, [f"bot{i}" for i in range(8)], "overlapping")
    env = RelayEnv(engine, bp, RelayOptions(), TZ, VirtualClock(START))
    room, office = national_office(engine)
    t = time.perf_counter()
    issued = issue_form(env, room, office, FORM, compose=compose)
    print(
        f"form {issued.code}: {issued.plan.groups} groups, issued in {time.perf_counter() - t:.2f} s"
    )
    asks = answerers(engine, bp, 1)
    if args.answers:
        asks = asks[: args.answers]
    seconds, batches, refused = asyncio.run(answer_all(env, asks, args.inflight, args.batch))
    print(
        f"answers: {len(asks):,} in {seconds:.1f} s = {len(asks) / seconds:,.0f}/s "
        f"({batches} transactions, {refused} refused)"
    )
    issue_form(env, room, office, FORM.replace("人数统计", "人数复核"), compose=compose)
    single = [AnswerRequest(r, c, parse_answer("F2 1 2")) for r, c in asks[:2000]]
    t = time.perf_counter()
    for request in single:
        record_answers(env, [request])
    alone = time.perf_counter() - t
    print(f"one per transaction: {len(single):,} in {alone:.1f} s = {len(single) / alone:,.0f}/s")
    table_figures(env)


def table_figures(env: RelayEnv) -> None:
    """``#汇总 F1 xlsx`` (and csv) for the whole country, as the chat computes and writes it."""
    t = time.perf_counter()
    table = form_table(env, 1, within=national_office_unit(env.engine), as_of=date(2026, 11, 24))
    query = time.perf_counter() - t
    book = render_file(table, "xlsx")
    xlsx = time.perf_counter() - t
    t = time.perf_counter()
    csv = render_file(table, "csv")
    print(
        f"#汇总 F1 xlsx (country): {len(table.rows):,} rows, {table.answered:,} answered: "
        f"{xlsx:.1f} s ({query:.1f} s the query), {len(book) / 1e6:.1f} MB; "
        f"csv {time.perf_counter() - t:.1f} s, {len(csv) / 1e6:.1f} MB"
    )


def national_office_unit(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(NOTICE.c.unit_code).limit(1)).scalar_one())


if __name__ == "__main__":
    main()
