"""``/healthz`` for ``qunmatrix run --health-port P``: whether the bot can do its job, as JSON,
for a process supervisor or a monitoring probe.

It answers 200 when healthy and 503 otherwise, with the checks:

- ``logged_in``: the WeChat account is logged in (``logged_in``: the one place that asks);
- ``database``: a connection opens and answers;
- ``backlog``: relay messages owed (pending or being sent);
- ``oldest_pending_seconds``: how long the most overdue of them is past its planned time;
  above ``max_pending_seconds`` the bot is unhealthy (sends are stuck).

The server runs in a thread of its own (stdlib ``http.server``), bound to 127.0.0.1 unless told
otherwise: it answers even while the event loop is busy, and its database check never blocks
the loop. Each request opens its own connection.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from loguru import logger
from sqlalchemy import Engine

from bot.render.templates import render
from matrix.db import ping
from matrix.models import utcnow
from matrix.platform import Presence
from matrix.relay.accounts import owed_copies


def logged_in(platform: Any) -> bool:
    """Whether ``platform``'s account is logged in and its service reachable (the port's
    ``presence``): the one place /healthz asks."""
    return getattr(platform, "presence", None) is Presence.ONLINE


@dataclass(frozen=True)
class Checks:
    """What /healthz looks at."""

    engine: Engine
    logged_in: Callable[[], bool]
    max_pending_seconds: float = 600.0
    now: Callable[[], datetime] = utcnow

    def report(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and the JSON body."""
        problems = []
        up = self.logged_in()
        if not up:
            problems.append(_problem("logged_out"))
        database, backlog, oldest = True, None, None
        try:
            backlog, oldest = self._backlog()
        except Exception as exc:
            logger.warning("健康检查：数据库无法连接：{}: {}", type(exc).__name__, exc)
            database = False
            problems.append(_problem("database", error=type(exc).__name__))
        if oldest is not None and oldest > self.max_pending_seconds:
            problems.append(_problem("stale", age=round(oldest), limit=self.max_pending_seconds))
        body = {
            "ok": not problems,
            "logged_in": up,
            "database": database,
            "backlog": backlog,
            "oldest_pending_seconds": None if oldest is None else round(oldest, 1),
            "max_pending_seconds": self.max_pending_seconds,
            "problems": problems,
            "checked_at": self.now().isoformat(),
        }
        return (200 if not problems else 503), body

    def _backlog(self) -> tuple[int, float | None]:
        with self.engine.connect() as conn:
            ping(conn)
            count, first = owed_copies(conn)
        if first is None:
            return int(count), None
        if first.tzinfo is None:
            first = first.replace(tzinfo=UTC)
        return int(count), max(0.0, (self.now() - first).total_seconds())


def _problem(code: str, **data: Any) -> str:
    return render("health/problem.j2", code=code, **data).strip()


class HealthServer:
    """``/healthz`` served from a thread until ``close()``; ``port`` 0 picks a free one."""

    def __init__(self, checks: Checks, port: int = 0, host: str = "127.0.0.1") -> None:
        self.checks = checks

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/healthz":
                    self._answer(404, {"ok": False, "problems": [_problem("not_found")]})
                    return
                try:
                    status, body = checks.report()
                except Exception as exc:  # a check's own bug must not kill the server
                    ref = uuid.uuid4().hex[:8]
                    logger.opt(exception=exc).error("健康检查出错，ref {}", ref)
                    status, body = 500, {"ok": False, "problems": [_problem("internal", ref=ref)]}
                self._answer(status, body)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("healthz: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="qunmatrix-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        logger.info("健康检查：http://{}:{}/healthz", self._server.server_address[0], self.port)
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
