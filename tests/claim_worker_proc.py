"""One bot process for the one-reply-per-command test:

    python -m tests.claim_worker_proc --db URL --account bot1 --script said.json --log replies.jsonl

The account hears every line of ``--script`` (room, sender, text), each under a message id of
its own as real WeChat accounts do, in order with a little jitter, and writes every reply it
sends as a JSON line to the shared ``--log``. With ``--barrier`` it says ready-<account> in
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

from bot.dispatch import Bot
from matrix.blueprint import load_blueprint
from matrix.db import make_engine
from matrix.platform import IncomingMessage, NotSupported


class LogPlatform:
    """A bot account that hears what it is told and writes what it says to a log."""

    def __init__(self, account: str, log: Path) -> None:
        self._account = account
        self.log = log
        self.sent = 0
        self.hear: Callable[[IncomingMessage], Awaitable[None]] | None = None

    @property
    def account_id(self) -> str:
        return self._account

    def on_message(self, handler: Callable[[IncomingMessage], Awaitable[None]]) -> None:
        self.hear = handler

    def on_room_event(self, handler: Any) -> None:
        pass

    def on_echo(self, handler: Any) -> None:
        pass

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        self.sent += 1
        line = json.dumps(
            {"room": room_id, "account": self._account, "text": text}, ensure_ascii=False
        )
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        return f"{self._account}-out-{self.sent}"

    def __getattr__(self, name: str) -> Any:
        async def unsupported(*args: Any, **kwargs: Any) -> Any:
            raise NotSupported(name)

        return unsupported


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
