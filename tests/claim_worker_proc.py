"""One bot process for the one-reply-per-command test:

    python -m tests.claim_worker_proc --db URL --account bot1 --script said.json --log replies.jsonl

The account hears every line of ``--script`` (room, sender, text), each under a message id of
its own as real WeChat accounts do, in order with a little jitter, and writes every reply it
sends as a JSON line to the shared ``--log`` (``tests.relay_worker_proc``'s platform). With ``--barrier`` it says ready-<account> in
that folder and waits for its go file, so that the processes hear the lines at the same time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.chat.dispatch import Bot
from matrix.blueprint import load_blueprint
from matrix.db import make_engine
from matrix.platform import IncomingMessage
from tests.relay_worker_proc import FilePlatform


class LogPlatform(FilePlatform):
    """The relay workers' file platform, hearing what it is told (its echoes go nowhere)."""

    def __init__(self, account: str, log: Path) -> None:
        super().__init__(account, [], log, 0.0)
        self.hear: Callable[[IncomingMessage], Awaitable[None]] | None = None
        self.echo = self._no_echo

    async def _no_echo(self, msg: IncomingMessage) -> None:
        pass

    def on_message(self, handler: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        self.hear = handler

    def on_room_event(self, handler: Any) -> None:
        pass

    def on_echo(self, handler: Any) -> None:
        pass


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--script", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--barrier", type=Path)
    args = parser.parse_args()
    engine = make_engine(args.db)
    platform = LogPlatform(args.account, args.log)
    bot = Bot(engine, load_blueprint("young_pioneers"))
    bot.attach(platform)
    script = json.loads(args.script.read_text(encoding="utf-8"))
    if args.barrier:
        (args.barrier / f"ready-{args.account}").touch()
        while not (args.barrier / "go").exists():
            await asyncio.sleep(0.01)
    rng = random.Random(args.account)
    assert platform.hear is not None
    for n, (room, sender, text) in enumerate(script):
        await asyncio.sleep(rng.uniform(0, 0.01))
        await platform.hear(IncomingMessage(f"{args.account}:{n}", room, sender, text))
    bot.close()


if __name__ == "__main__":
    asyncio.run(main())
