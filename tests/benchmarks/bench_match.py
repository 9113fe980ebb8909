"""Benchmark: ``#匹配`` and ``#确认匹配 全部`` on a hand-built, adopted county group of 500
members (tests/match_world.py), through the bot, while another county's office sends ``#帮助``
in its own group every 50 ms.

    .venv/bin/python tests/benchmarks/bench_match.py [--schools 164] [--rounds 3]

The bot hears the simulated WeChat through the real ``wechaty.Wechaty`` over the in-process
puppet, as ``qunmatrix run`` does, on the real clock and without pacing (this measures the bot,
not WeChat's limits). Printed: each command's reply time (said → reply in the room; goal for
#匹配 ≤ 1 s), the probe's latency in the other group meanwhile (due → reply: the matching runs
in a worker thread, so the other group is answered), and the event loop's longest stall (a
10 ms timer's lateness). Figures only: timings on a loaded machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROBE_EVERY = 0.05
BOT = "bot"
OTHER_TOPIC = "乙2县少先队大队辅导员群"


def core_suggest(engine: Any, bp: Any, county: Any, times: int = 3) -> list[float]:
    """``matching.suggest`` alone for the group, in seconds: the index and the judging."""
    from matrix.provisioning import matching

    names = {s.contact_id: s.name for s in county.seats}
    took = []
    for _ in range(times):
        start = time.perf_counter()
        with engine.connect() as conn:
            matching.suggest(conn, bp, county.group_id, names)
        took.append(time.perf_counter() - start)
    return took


def build(tmp: Path, schools: int) -> tuple[Any, Any, Any, Any, str]:
    """The database, the world with both groups adopted; returns (engine, bp, world, county,
    the other group's room)."""
    from bot.platforms.simulated import SimulatedWeChat
    from matrix.blueprint import load_blueprint
    from matrix.db import make_engine, migrate
    from matrix.provisioning.adopt import adopt, read_members
    from tests import match_world as mw

    engine = make_engine(f"sqlite:///{tmp / 'bench.db'}")
    migrate(engine)
    bp = load_blueprint("young_pioneers")
    county = mw.load(engine, bp, tmp / "roster", schools)
    world = SimulatedWeChat(max_room_size=bp.matrix.max_group_size)
    world.account(BOT, "群矩阵助手", rate=1e9, burst=10**9)
    mw.hand_build(engine, bp, world, county, BOT)
    other = world.create_room(mw.OTHER_COUNTY_OFFICE, OTHER_TOPIC, [BOT])
    members = asyncio.run(world.account(BOT).list_members(other))
    with engine.begin() as conn:
        done = adopt(conn, bp, other, "K2", "county-counselors", None, "bench")
        read_members(conn, done.group_id, members, bots={BOT})
    return engine, bp, world, county, other


async def scenario(
    engine: Any, bp: Any, world: Any, room: str, other: str, exports: Path, rounds: int
) -> dict[str, Any]:
    from bot.chat.dispatch import Bot
    from bot.chat.summary import SummaryOptions
    from bot.config import LimitOptions
    from bot.platforms.inprocess_puppet import InProcessPuppet
    from bot.platforms.wechaty_adapter import WechatyPlatform
    from matrix.provisioning.schedule import AccountQuota
    from tests import match_world as mw

    said: dict[str, list[float]] = {room: [], other: []}
    arrived = asyncio.Event()
    post = world._post

    async def observed(r: Any, contact_id: str, text: str, *args: Any, **kw: Any) -> str:
        if contact_id == BOT and r.room_id in said and not kw.get("file"):
            said[r.room_id].append(time.perf_counter())
            arrived.set()
        return await post(r, contact_id, text, *args, **kw)

    world._post = observed  # type: ignore[method-assign]
    # the flood gate would silence a probe this frequent: it measures the loop, not the gate
    many = LimitOptions(per_contact=10**6, per_group=10**6)
    bot = Bot(
        engine, bp, quotas=[AccountQuota(BOT)], summaries=SummaryOptions(exports), limits=many
    )
    # through the real wechaty.Wechaty over the in-process puppet, as ``qunmatrix run`` hears
    # WeChat: the simulated world alone delivers one message at a time, in order
    platform = WechatyPlatform(lambda: InProcessPuppet(world, BOT), send_interval=0)
    stop = asyncio.Event()
    stalls: list[float] = []
    probes: list[float] = []
    timings: dict[str, list[float]] = {"#匹配": [], "#确认匹配 全部": []}

    async def stall_meter() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - start - 0.01)

    async def probe() -> None:
        due = time.perf_counter()
        while not stop.is_set():
            while due <= time.perf_counter():
                probes.append(due)
                await world.say(other, mw.OTHER_COUNTY_OFFICE, "#帮助")
                due += PROBE_EVERY
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async with platform.running(login_timeout=30):
        bot.attach(platform)
        background = [asyncio.create_task(stall_meter()), asyncio.create_task(probe())]
        await asyncio.sleep(0.5)  # the probe alone first
        for n in range(rounds):
            for command in timings:
                if command != "#匹配" and n < rounds - 1:
                    continue  # binding is done once: later rounds would find nothing to bind
                before = len(said[room])
                arrived.clear()
                start = time.perf_counter()
                await world.say(room, mw.OWNER, command)
                while len(said[room]) <= before:
                    await asyncio.wait_for(arrived.wait(), 120)
                    arrived.clear()
                timings[command].append(said[room][before] - start)
                await asyncio.sleep(0.3)
        stop.set()
        await asyncio.sleep(0.3)  # the last probes' replies
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await platform.drained()
    replies = said[other]
    bot.close()
    return {
        "timings": timings,
        "probes": [r - s for s, r in zip(probes, replies, strict=False)],
        "unanswered": len(probes) - len(replies),
        "stalls": stalls,
        "errors": bot.stats.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=164, help="3 members each (164: 500)")
    parser.add_argument("--rounds", type=int, default=3, help="times #匹配 is said")
    opts = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    from bench_responsiveness import spread  # the same p50 / p99 / max line

    from bot.logs import setup_logging

    setup_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        engine, bp, world, county, other = build(Path(tmp), opts.schools)
        members = len(world.rooms[county.room].members)
        core = core_suggest(engine, bp, county)
        r = asyncio.run(
            scenario(engine, bp, world, county.room, other, Path(tmp) / "x", opts.rounds)
        )
        engine.dispose()
    print(f"group: {members} members ({len(county.seats)} unbound), one bot account, SQLite")
    print("core matching.suggest alone: " + ", ".join(f"{t * 1000:.0f} ms" for t in core))
    for command, times in r["timings"].items():
        shown = ", ".join(f"{t:.2f} s" for t in times)
        print(
            f"{command} (said → reply): {shown}   goal ≤ 1 s"
            if command == "#匹配"
            else f"{command} (said → reply): {shown}"
        )
    print(f"other group's #帮助 every {PROBE_EVERY * 1000:.0f} ms meanwhile: {spread(r['probes'])}")
    print(f"  unanswered at the end: {r['unanswered']}")
    print(f"event loop stalls (10 ms timer lateness): {spread(r['stalls'])}")
    print(f"bot errors: {r['errors']}")


if __name__ == "__main__":
    main()
