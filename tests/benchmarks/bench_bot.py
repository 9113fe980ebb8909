"""Benchmark: 10,000 messages from 1,000 people across 200 simulated groups, through the bot.

    .venv/bin/python tests/benchmarks/bench_bot.py [--messages 10000] [--pg [URL]]

The roster is one province, one city and 200 counties; each county has two office staff and
three schools (one brigade counselor each), so each county group holds five people and the
bot. People mostly chat (1 % of it on the watch list, 舆情监控, flagged to the office); the rest
are commands of every kind (a county notice, acks with and without #, progress, help, audit by an
office, audit refused to a teacher, a typo), and strangers join and are approved. The groups are
planned and built first (``Stage.provision``). An office's #核查 reads its room afresh from the
simulated WeChat and audits it. Timing covers only
the bot: from the platform handing it a message or event to its return (reply sent or queued),
on a virtual clock so pacing never sleeps. Printed: median and p99 handling latency, throughput,
and how many messages got no reply that should have (dropped). Targets: median <= 5 ms,
p99 <= 50 ms, nothing dropped.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.rehearsal.stage import Stage
from matrix.blueprint import load_blueprint
from matrix.db import make_engine, migrate, normalize_url
from matrix.relay import RelayOptions
from matrix.roster import import_roster, read_roster
from tests import worlds

COUNTIES, SCHOOLS = 200, 3


def roster() -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    units = [("P", "示范省", "province", ""), ("C1", "甲市", "city", "P")]
    persons = [
        ("P", "省办公室甲", "office_staff", "13000000001", "wxPoffice1"),
        ("C1", "市部长", "youth_dept_head", "13000000002", "wxC1head"),
    ]
    for k in range(COUNTIES):
        county = f"K{k:03d}"
        units.append((county, f"第{k}县", "county", "C1"))
        for i in range(2):
            persons.append(
                (county, f"县办{k}-{i}", "office_staff", f"131{k:04d}{i:04d}", f"wx{county}o{i}")
            )
        for s in range(SCHOOLS):
            school = f"{county}S{s}"
            units.append((school, f"第{k}县第{s}小学", "school", county))
            persons.append(
                (school, f"大辅{k}-{s}", "brigade_counselor", f"132{k:04d}{s:04d}", f"wx{school}")
            )
    return units, persons


def spread(ms: list[float]) -> str:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"median {statistics.median(ms):.3f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms"


def fresh_postgres(url: str) -> str:
    """A new empty database on the server of ``url`` (dropped by the caller)."""
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    name = f"qm_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return normalize_url(url).rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(url: str) -> None:
    base, name = url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--pg",
        nargs="?",
        const="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        default="",
        help="run on a fresh database on this PostgreSQL server instead of SQLite",
    )
    parser.add_argument("--seed", type=int, default=7)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)

    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_postgres(opts.pg) if opts.pg else f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        migrate(engine)
        bp = load_blueprint("young_pioneers")
        units, persons = roster()
        paths = worlds.write_roster(Path(tmp), units, persons)
        import_roster(engine, read_roster(*paths, bp), bp)
        accounts = tuple(f"bench-bot-{i}" for i in range(4))
        watch = RelayOptions(watch_words=["罢课", "投诉"])
        stage = Stage(engine, bp, accounts=accounts, burst=5, relay=watch)  # 1 op/s each
        built = stage.provision()  # planned and applied, as the operator would
        bot = stage.bot

        # time the bot only: wrap its two entry points as the accounts call them
        latencies: list[float] = []
        by_kind: dict[str, list[float]] = {"chat": [], "command": [], "event": []}
        handle_message, handle_event = bot.on_message, bot.on_room_event

        async def timed_message(platform, msg):  # type: ignore[no-untyped-def]
            if msg.is_self or msg.contact_id in bot.accounts:
                return await handle_message(platform, msg)
            start = time.perf_counter()
            await handle_message(platform, msg)
            took = time.perf_counter() - start
            latencies.append(took)
            by_kind["command" if msg.text.startswith(("#", "收到")) else "chat"].append(took)

        async def timed_event(platform, event):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            await handle_event(platform, event)
            took = time.perf_counter() - start
            latencies.append(took)
            by_kind["event"].append(took)

        bot.on_message = timed_message  # type: ignore[method-assign]
        bot.on_room_event = timed_event  # type: ignore[method-assign]

        groups = [f"K{k:03d}:county-counselors" for k in range(COUNTIES)]
        rooms = {g: stage.room_of(g) for g in groups}
        members = {
            g: [c for c in stage.world.rooms[rooms[g]].members if c not in bot.accounts]
            for g in groups
        }
        people = {c for ms in members.values() for c in ms}
        world = stage.world
        expected_replies = 0
        strangers = flagged = notices = 0
        wall = time.perf_counter()
        for n in range(opts.messages):
            group = rng.choice(groups)
            room = rooms[group]
            office = f"wx{group.split(':')[0]}o{rng.randrange(2)}"
            teacher = rng.choice(
                [m for m in members[group] if m.endswith(tuple("012")) and "S" in m]
            )
            roll = rng.random()
            stage.clock.advance(0.25)
            if roll < 0.02 and n + 1 < opts.messages:
                strangers += 1
                who = f"wxid_guest{strangers}"
                world.add_contact(who, f"访客{strangers}")
                stage.run(world.join(room, who))
                stage.run(world.say(room, office, f"#同意 {strangers}"))
                expected_replies += 2
                stage.settle()
                continue
            if roll < 0.74:
                sender, text = (
                    rng.choice(members[group]),
                    rng.choice(("大家好", "今天的活动几点开始？", "好的", "👍")),
                )
            elif roll < 0.75:
                sender, text = rng.choice(members[group]), "有家长说要去投诉"
                flagged += 1
            elif roll < 0.76:
                sender, text = office, "#通知 截止 23:00 请各校报送本周少先队活动情况"
                notices += 1
            elif roll < 0.80:
                sender, text = teacher, "#收到"
            elif roll < 0.83:
                sender, text = teacher, "收到"  # bare: answered only when it records a receipt
            elif roll < 0.84:
                sender, text = office, "#进度"
            elif roll < 0.87:
                sender, text = rng.choice(members[group]), "#帮助"
            elif roll < 0.91:
                sender, text = office, "#核查"
            elif roll < 0.94:
                sender, text = teacher, "#核查"
            elif roll < 0.96:
                sender, text = office, "#同意 abc"
            else:
                sender, text = office, "#帮助 同意"
            if text.startswith("#"):
                expected_replies += 1
            stage.run(world.say(room, sender, text))
            stage.settle()
        wall = time.perf_counter() - wall

        replies = sum(1 for m in world.messages() if m.contact_id in bot.accounts)
        dropped = max(0, expected_replies - replies) + bot.stats.replies_dropped + bot.stats.errors
        copies = sum(1 for m in world.messages() if m.text.startswith("【通知 "))
        alerts = sum(1 for m in world.messages() if m.text.startswith("【舆情提示】"))
        ms = sorted(x * 1000 for x in latencies)
        print(f"database: {engine.url.render_as_string(hide_password=True).split('@')[-1]}")
        print(
            f"world: {built.rooms} groups built in {len(built.days)} simulated days, "
            f"{len(people)} people talking, "
            f"{len(accounts)} bot accounts paced at 1 msg/s (burst 5)"
        )
        print(
            f"handled: {len(latencies)} (messages {bot.stats.messages}, commands "
            f"{bot.stats.commands}, room events {bot.stats.events}); replies {replies}"
        )
        print(f"latency (bot time), all: {spread(ms)}")
        for kind, values in by_kind.items():
            print(f"  {kind + 's':<9}{len(values):>6}: {spread([x * 1000 for x in values])}")
        print(
            f"throughput: {len(latencies) / (sum(ms) / 1000):,.0f} msgs/s of bot time; "
            f"{len(latencies) / wall:,.0f} msgs/s wall (with the simulated world)"
        )
        print(
            f"relay: {notices} notices ({copies} copies sent), {flagged} watched messages "
            f"({alerts} alerts, at most 3 per group an hour)"
        )
        print(f"dropped: {dropped}")
        stage.close()
        engine.dispose()
        if opts.pg:
            drop_postgres(url)


if __name__ == "__main__":
    main()
