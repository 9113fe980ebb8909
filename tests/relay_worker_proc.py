"""One relay worker as its own process, for the multi-process and kill tests:

    python -m tests.relay_worker_proc --db URL --account bot1 --rooms rooms.txt --log sent.jsonl

Its platform writes every message it sends as a JSON line to the shared ``--log`` (appends of one
short line are atomic), echoes it back to the worker like WeChat does, and can wait ``--delay``
seconds per send so that processes overlap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from matrix.blueprint import load_blueprint
from matrix.db import make_engine
from matrix.platform import IncomingMessage, NotSupported, Presence, Room
from matrix.relay import DeliveryWorker, RelayEnv, RelayOptions, drive
from tests.worlds import compose


class FilePlatform:
    """A bot account whose rooms are listed in a file and whose messages go to a log."""

    def __init__(self, account: str, rooms: list[str], log: Path, delay: float) -> None:
        self._account = account
        self.rooms = rooms
        self.log = log
        self.delay = delay
        self.sent = 0
        self.echo: Any = None

    @property
    def account_id(self) -> str:
        return self._account

    @property
    def presence(self) -> Presence:
        return Presence.ONLINE  # a file is always there

    def on_presence(self, handler: Any) -> None:
        pass

    async def list_rooms(self) -> list[Room]:
        return [Room(r, r) for r in self.rooms]

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.sent += 1
        message_id = f"{self._account}-{self.sent}"
        line = json.dumps(
            {"room": room_id, "account": self._account, "text": text}, ensure_ascii=False
        )
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        await self.echo(IncomingMessage(message_id, room_id, self._account, text, is_self=True))
        return message_id

    def __getattr__(self, name: str) -> Any:
        async def unsupported(*args: Any, **kwargs: Any) -> Any:
            raise NotSupported(name)

        return unsupported


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--rooms", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument(
        "--barrier",
        type=Path,
        help="say ready-<account> in this folder, then wait for its go file before relaying",
    )
    args = parser.parse_args()
    options = RelayOptions(rate=0.0, claim_batch=args.batch, steal_after_seconds=0, lease_seconds=5)
    env = RelayEnv(make_engine(args.db), load_blueprint("young_pioneers"), options)
    platform = FilePlatform(args.account, args.rooms.read_text().split(), args.log, args.delay)
    worker = DeliveryWorker(env, platform, compose)  # type: ignore[arg-type]
    platform.echo = worker.observe
    await worker.start()
    if args.barrier:
        # every worker relays from the same moment, so sharing does not hang on start-up speed
        (args.barrier / f"ready-{args.account}").touch()
        while not (args.barrier / "go").exists():
            await asyncio.sleep(0.01)
    await drive(env, [worker])


if __name__ == "__main__":
    asyncio.run(main())
