"""Benchmark: does one national command freeze the bot? A ``#帮助`` probe every 100 ms in a
county group and plain chat beside it, while the national office runs ``#建群``, ``#核查`` and
``#汇总`` for the whole country.

    .venv/bin/python tests/benchmarks/bench_responsiveness.py [--out /tmp/prov-national]

The database is the national ``built.db`` of ``bench_provision.py`` (generated once into
``--out`` and kept: ~200,000 units, 3,756 groups, ~620,000 actual members, with drift),
copied afresh for every run. Two of its rooms exist in a simulated WeChat: the national group
(the office's) and one county counselors' group (the probe's); the bot hears them through the
real ``wechaty.Wechaty`` over the in-process puppet, as ``qunmatrix run`` does, with the relay
serving beside it, on the real clock and without pacing (this measures the bot, not WeChat's
limits).

Printed: the probe's latency (due → the bot's reply in the room: a line the frozen loop could
not send in time counts from when it was due) as p50 / p99 / max, plain chat's (due →
handled; every other line is on the watch list), each heavy command's duration
(said → reply), the longest stall of the event loop (a 10 ms timer's lateness), and the
relay's blocking database calls on the loop. Target: probe p99 ≤ 50 ms.

``--code DIR`` runs the same scenario against another checkout's ``bot``/``matrix`` (e.g. an
export of main), for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROBE_EVERY = 0.1
COUNTY_GROUP, NATIONAL_GROUP = 4, 1  # wgroup ids in built.db: 东城区 counselors, the national one
HEAVY = ("#建群", "#核查", "#汇总")


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"n={len(ms)} p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"


def mirror(engine: Any, world: Any, account: str, gids: tuple[int, ...]) -> dict[int, str]:
    """Create the rooms of groups ``gids`` in ``world`` with their recorded members."""
    from sqlalchemy import text

    rooms = {}
    with engine.connect() as conn:
        for gid in gids:
            room_id, name = conn.execute(
                text("SELECT room_id, name FROM wgroup WHERE id = :g"), {"g": gid}
            ).one()
            seats = conn.execute(
                text(
                    "SELECT m.contact_id, coalesce(p.name, m.contact_id) FROM membership m"
                    " LEFT JOIN person p ON p.id = m.person_id"
                    " WHERE m.group_id = :g AND m.state = 'actual' AND m.contact_id IS NOT NULL"
                ),
                {"g": gid},
            ).all()
            for contact, person in seats:
                world.add_contact(contact, person)
            rooms[gid] = world.create_room(account, name, [c for c, _ in seats], room_id=room_id)
    return rooms


def office_of(engine: Any, gid: int) -> str:
    """An admin of group ``gid`` (its leading unit's office staff)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT contact_id FROM membership WHERE group_id = :g AND state = 'actual'"
                    " AND is_admin ORDER BY id LIMIT 1"
                ),
                {"g": gid},
            ).scalar_one()
        )


async def scenario(engine: Any, bp: Any, exports: Path) -> dict[str, Any]:
    from bot.chat.dispatch import Bot
    from bot.chat.relay_runner import PromptClock
    from bot.chat.summary import SummaryOptions
    from bot.platforms.inprocess_puppet import InProcessPuppet
    from bot.platforms.simulated import SimulatedWeChat
    from bot.platforms.wechaty_adapter import WechatyPlatform
    from matrix.provisioning.schedule import AccountQuota
    from matrix.relay import RelayEnv, RelayOptions

    account = "bot"  # the owner the national database records for every room
    world = SimulatedWeChat(max_room_size=bp.matrix.max_group_size)
    world.account(account, "群矩阵助手", rate=1e9, burst=10**9)
    rooms = mirror(engine, world, account, (NATIONAL_GROUP, COUNTY_GROUP))
    county, national = rooms[COUNTY_GROUP], rooms[NATIONAL_GROUP]
    office = office_of(engine, NATIONAL_GROUP)
    teacher = next(c for c in world.rooms[county].members if c != account)

    # every message the bot says, as it lands in the world
    said_by_bot: dict[str, list[float]] = {county: [], national: []}
    arrived = {county: asyncio.Event(), national: asyncio.Event()}
    post = world._post

    async def observed(room: Any, contact_id: str, text: str, *args: Any, **kw: Any) -> str:
        answer = room.room_id == national or "你在本群可以使用" in text  # not a watch alert
        if contact_id == account and room.room_id in said_by_bot and answer:
            said_by_bot[room.room_id].append(time.perf_counter())
            arrived[room.room_id].set()
        return await post(room, contact_id, text, *args, **kw)

    world._post = observed  # type: ignore[method-assign]

    relay = RelayEnv(engine, bp, RelayOptions(watch_words=["投诉"]), clock=PromptClock())
    bot = Bot(
        engine,
        bp,
        quotas=[AccountQuota(account)],
        relay=relay,
        summaries=SummaryOptions(export_dir=exports),
    )
    relay_calls: list[float] = []
    for name in ("_jobs", "_next_job"):
        real = getattr(bot.relay, name)

        def timed(real: Any = real) -> Any:
            start = time.perf_counter()
            try:
                return real()
            finally:
                relay_calls.append(time.perf_counter() - start)

        setattr(bot.relay, name, timed)

    chat_sent: dict[str, float] = {}
    chat_latency: list[float] = []
    handle = bot.on_message

    async def timed_message(platform: Any, msg: Any) -> None:
        await handle(platform, msg)
        if msg.text in chat_sent:
            chat_latency.append(time.perf_counter() - chat_sent.pop(msg.text))

    bot.on_message = timed_message  # type: ignore[method-assign]
    platform = WechatyPlatform(lambda: InProcessPuppet(world, account), send_interval=0)
    stalls: list[float] = []
    probe_sent: list[float] = []
    heavy: dict[str, float] = {}
    stop = asyncio.Event()

    async def stall_meter() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - start - 0.01)

    async def probe() -> None:
        # open loop, timed from when each line was due: a frozen loop cannot send either, so
        # the lines it held back go out late and count from when they should have (no
        # coordinated omission)
        n = 0
        due = time.perf_counter()
        while not stop.is_set():
            while due <= time.perf_counter():
                n += 1
                probe_sent.append(due)
                await world.say(county, teacher, "#帮助")
                line = f"有家长说要投诉（{n}）" if n % 2 else f"大家好（{n}）"
                chat_sent[line] = due
                await world.say(county, teacher, line)
                due += PROBE_EVERY
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async with platform.running(login_timeout=30):
        bot.attach(platform)
        await bot.relay.start()
        background = [
            asyncio.create_task(bot.relay.serve()),
            asyncio.create_task(stall_meter()),
        ]
        probing = asyncio.create_task(probe())
        await asyncio.sleep(2.0)  # the probe alone first
        for command in HEAVY:
            before = len(said_by_bot[national])
            arrived[national].clear()
            start = time.perf_counter()
            await world.say(national, office, command)
            while len(said_by_bot[national]) <= before:
                await asyncio.wait_for(arrived[national].wait(), 600)
                arrived[national].clear()
            heavy[command] = said_by_bot[national][before] - start
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        stop.set()
        await probing
        await asyncio.sleep(0.5)  # the last probes' replies
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await platform.drained()
    replies = said_by_bot[county]
    latencies = [r - s for s, r in zip(probe_sent, replies, strict=False)]
    close = getattr(bot, "close", None)
    if close is not None:
        close()
    return {
        "probes": latencies,
        "unanswered": len(probe_sent) - len(replies),
        "chat": chat_latency,
        "heavy": heavy,
        "stalls": stalls,
        "relay_calls": relay_calls,
        "errors": bot.stats.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/prov-national"))
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose bot to run")
    opts = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import bench_provision  # the national database, generated once and cached in --out

    _, built = bench_provision.prepare(opts.out, fresh=False)
    sys.path.insert(0, str(opts.code.resolve()))
    from bot.logs import setup_logging
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine, migrate

    setup_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bench.db"
        shutil.copy(built, copy)
        engine = make_engine(f"sqlite:///{copy}")
        migrate(engine)
        bp = load_blueprint("young_pioneers")
        r = asyncio.run(scenario(engine, bp, Path(tmp) / "exports"))
        engine.dispose()
    print(f"code: {opts.code.resolve()}")
    print(f"probe #帮助 every {PROBE_EVERY * 1000:.0f} ms: {spread(r['probes'])}")
    print(f"  unanswered at the end: {r['unanswered']}")
    print(f"plain chat (half on the watch list): {spread(r['chat'])}")
    print(
        "national commands (said → reply): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in r["heavy"].items())
    )
    print(f"event loop stalls (10 ms timer lateness): {spread(r['stalls'])}")
    print(f"relay jobs/next-job calls on the loop: {spread(r['relay_calls'])}")
    print(f"bot errors: {r['errors']}")


if __name__ == "__main__":
    main()
