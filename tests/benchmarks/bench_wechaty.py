"""What the real Wechaty layer costs: messages said in a provisioned province reach the
dispatcher through ``wechaty.Wechaty`` over the in-process puppet, and replies go back the same
way. Prints per-message latency (said → handled, one at a time, so no queueing) and throughput.

    .venv/bin/python tests/benchmarks/bench_wechaty.py [--messages 2000] [--commands 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.chat.dispatch import Bot
from bot.logs import setup_logging
from bot.platforms.inprocess_puppet import InProcessPuppet
from bot.platforms.simulated import SimulatedWeChat
from bot.platforms.wechaty_adapter import WechatyPlatform
from matrix.blueprint import Blueprint, load_blueprint
from matrix.db import make_engine, migrate
from matrix.platform import IncomingMessage
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.worlds import ACCOUNT, provisioned_world


def built(folder: Path) -> tuple[Engine, Blueprint, SimulatedWeChat]:
    """A province of 20 counties with its groups planned and built (outside the event loop
    the measure runs in)."""
    bp = load_blueprint("young_pioneers")
    engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
    migrate(engine)
    units, persons = worlds.write_roster(folder, *worlds.province(counties=20, schools=8))
    import_roster(engine, read_roster(units, persons, bp), bp)
    return engine, bp, provisioned_world(engine, bp)


async def measure(
    messages: int, commands: float, engine: Engine, bp: Blueprint, world: SimulatedWeChat
) -> None:
    world.accounts[ACCOUNT].pacer.rate = 1e9  # measure the bot, not WeChat's pacing
    world.accounts[ACCOUNT].pacer.burst = world.accounts[ACCOUNT].pacer.tokens = 1e9
    platform = WechatyPlatform(lambda: InProcessPuppet(world, ACCOUNT), send_interval=0)
    done: asyncio.Queue[str] = asyncio.Queue()

    async def handled(msg: IncomingMessage) -> None:
        await done.put(msg.message_id)

    rng = random.Random(7)
    talk = [
        (room.room_id, cid)
        for room in world.rooms.values()
        for cid in room.members
        if cid != ACCOUNT
    ]
    latencies: dict[str, list[float]] = {"chat": [], "command": []}
    async with platform.running():
        dispatcher = Bot(engine, bp)
        dispatcher.attach(platform)
        platform.on_message(handled)  # after the dispatcher's: runs once it is done
        started = time.perf_counter()
        for n in range(messages):
            room, sender = rng.choice(talk)
            kind = "command" if rng.random() < commands else "chat"
            text = "#帮助" if kind == "command" else f"第{n}条普通消息"
            t0 = time.perf_counter()
            await world.say(room, sender, text)
            await done.get()
            latencies[kind].append(time.perf_counter() - t0)
        total = time.perf_counter() - started
    replies = sum(1 for m in world.messages() if m.contact_id == ACCOUNT)
    print(f"rooms {len(world.rooms)}, people {len(world.contacts) - 1}, messages {messages}")
    print(f"commands answered {dispatcher.stats.commands}, replies in the world {replies}")
    for kind, values in latencies.items():
        values.sort()
        p99 = values[max(0, int(len(values) * 0.99) - 1)]
        print(
            f"{kind:<8} n={len(values):<5} median {statistics.median(values) * 1000:.2f} ms"
            f"  p99 {p99 * 1000:.2f} ms  (said → handled, reply sent)"
        )
    print(f"throughput {messages / total:.0f} messages/s (one at a time)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--commands", type=float, default=0.2, help="share that are #帮助")
    args = parser.parse_args()
    setup_logging("WARNING")
    with tempfile.TemporaryDirectory(prefix="bench-wechaty-") as tmp:
        asyncio.run(measure(args.messages, args.commands, *built(Path(tmp))))


if __name__ == "__main__":
    main()
