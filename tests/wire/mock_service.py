"""Start and drive the Node puppet service of the wire test (``mock_server.js``).

The service is wechaty-puppet-service's PuppetServer hosting wechaty-puppet-mock, on 127.0.0.1,
TLS off. Its HTTP control endpoint makes mock people speak and shows what the bot did. Two
protocol lines (``LINES``): the 0.x one that python-wechaty's gRPC matches fully
(``mock_server.js``, ``node_modules`` beside it) and the 1.x one (``v1/``, its own
``node_modules``).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from matrix.tables import DELIVERY

WIRE = Path(__file__).resolve().parent
TOKEN = "insecure_qunmatrix_wire"
# the service lines, each a server script with its own node_modules beside it
LINES = {"0.x": WIRE / "mock_server.js", "1.x": WIRE / "v1" / "mock_server.js"}


def require_node(line: str = "0.x") -> str:
    """The node binary, once the line's pinned npm packages are installed; otherwise skip (fail
    in CI) saying what to do."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("the wire test needs Node.js (node not found on PATH)")
    folder = LINES[line].parent
    if not (folder / "node_modules" / "wechaty-puppet-service").is_dir():
        where = folder.relative_to(WIRE.parent.parent)
        message = (
            f"{where}/node_modules is missing: run `npm ci --prefix {where}` "
            "(bash .ci/run does when node is installed)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return node


@dataclass
class MockService:
    """A running ``mock_server.js``: a mock WeChat behind a real gRPC puppet service."""

    proc: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    log: Path
    world: dict[str, Any] = field(default_factory=dict)
    line: str = "0.x"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    async def say(self, room: str, sender: str, text: str, mentions: tuple[str, ...] = ()) -> None:
        """A mock contact says ``text`` in ``room``."""
        await self._post("/say", {"from": sender, "room": room, "text": text, "mentions": mentions})

    async def join(self, room: str, contact: str, inviter: str) -> None:
        await self._post("/join", {"room": room, "contact": contact, "inviter": inviter})

    async def leave(self, room: str, contact: str) -> None:
        await self._post("/leave", {"room": room, "contact": contact})

    async def change_topic(self, room: str, topic: str, changer: str) -> None:
        await self._post("/topic", {"room": room, "topic": topic, "changer": changer})

    async def scan(self, qrcode: str, status: int = 2) -> None:
        """The service asks for a login: a QR code to scan (status 2: waiting)."""
        await self._post("/scan", {"qrcode": qrcode, "status": status})

    async def sent(self) -> list[dict[str, Any]]:
        """Everything the bot sent, in order: {id, room, type, text | filename, mentions}."""
        result: list[dict[str, Any]] = await self._request("GET", "/sent")
        return result

    def logged_sends(self) -> list[dict[str, Any]]:
        """What the bot sent, read from the service's log: also after the service was killed."""
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(x[5:]) for x in lines if x.startswith("SENT {")]

    async def room(self, room_id: str) -> dict[str, Any]:
        """The mock's own view of a room: {id, topic, owner, members}."""
        result: dict[str, Any] = await self._request("GET", f"/rooms/{room_id}")
        return result

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        await self._request("POST", path, body)

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        def call() -> Any:
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())

        return await asyncio.to_thread(call)

    def crash(self) -> None:
        """Kill the service at once, as a crash or a dropped machine would."""
        self.proc.kill()
        self.stop()

    def stop(self) -> None:
        """Stop the service (closing its stdin asks it to; it is killed if it lingers)."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stdin):
            if stream is not None and not stream.closed:
                stream.close()


def start_service(
    world: dict[str, Any], workdir: Path, grpc_port: int = 0, line: str = "0.x"
) -> MockService:
    """Start the ``line``'s ``mock_server.js`` on ``world`` (see its header) and wait until it
    listens."""
    node = require_node(line)
    server = LINES[line]
    world_file = workdir / "world.json"
    world_file.write_text(json.dumps(world, ensure_ascii=False), encoding="utf-8")
    log = workdir / f"mock_server.{line}.{grpc_port or 'first'}.log"
    env = {
        **os.environ,
        "WIRE_GRPC_PORT": str(grpc_port),
        "WECHATY_PUPPET_SERVICE_TOKEN": TOKEN,
        "WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_SERVER": "true",
    }
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [node, str(server), str(world_file)],
            cwd=server.parent,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout=30)
    first = proc.stdout.readline() if ready else b""
    if not first:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"mock_server.js did not start:\n{log.read_text(errors='replace')}")
    ports = json.loads(first)
    return MockService(proc, ports["grpc"], ports["http"], log, world, line)


@dataclass
class BotProcess:
    """``qunmatrix …`` running as its own process, its log read line by line."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[str]
    seen: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, args: list[str], cwd: Path) -> BotProcess:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import app; app()", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(WIRE.parent.parent)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        return cls(proc, lines)

    @classmethod
    def run(cls, engine: Engine, svc: MockService, account: str, cwd: Path) -> BotProcess:
        """``qunmatrix run`` over ``engine`` against ``svc``, serving ``account`` (paced fast:
        the tests that use it are not about pacing)."""
        config = cwd / "config.toml"
        config.write_text(
            f'db = "{engine.url.render_as_string(hide_password=False)}"\n'
            f'[wechaty]\nendpoint = "{svc.endpoint}"\ntoken = "{TOKEN}"\n'
            f'[[accounts]]\nid = "{account}"\nops_per_second = 1000\n',
            encoding="utf-8",
        )
        return cls.start(["run", "--config", str(config)], cwd=cwd)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The first log line containing ``text``; fails with the whole log if none comes."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        pytest.fail(f"qunmatrix never logged {text!r}:\n{self.output()}")

    def output(self) -> str:
        return "".join(self.seen)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.proc.returncode


async def bot_sent(svc: MockService, room: str, since: int) -> str:
    """The first text the bot sends in ``room`` after its ``since``-th message overall."""

    async def wait() -> str:
        while True:
            sent = (await svc.sent())[since:]
            texts = [s["text"] for s in sent if s["room"] == room]
            if texts:
                return str(texts[0])
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(wait(), timeout=20)


async def copy_confirmed(engine: Engine) -> None:
    """Until a relay copy is confirmed by the service's echo (at most 20 seconds)."""

    async def wait() -> None:
        while True:
            with engine.connect() as conn:
                if conn.execute(select(DELIVERY.c.confirmed_at)).scalar() is not None:
                    return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout=20)
