"""The operator of `qunmatrix run` is told by the log and, when set, by a webhook: a JSON POST
made off the event loop with a bounded timeout, whose failure is only a WARNING."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from loguru import logger

from bot.render.templates import render
from bot.service.operator_alerts import Operator


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook on 127.0.0.1 that keeps what it is posted."""
    posted: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            posted.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/qunmatrix", posted
    server.shutdown()
    server.server_close()


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING", format="{message}")
    yield seen
    logger.remove(sink)


def test_a_logout_is_logged_and_posted_to_the_webhook(hook, warnings):
    url, posted = hook
    text = render("cli/operator_event.txt.j2", event="logout", account="qunmatrix-bot")

    async def story() -> None:
        operator = Operator(url, timeout=5)
        operator.tell("logout", "qunmatrix-bot", text)
        await operator.drained()

    asyncio.run(story())
    assert posted == [{"event": "logout", "account": "qunmatrix-bot", "text": text}]
    assert (
        text == "微信账号 qunmatrix-bot 已退出登录：请在运行 qunmatrix run 的电脑上扫码重新登录。"
    )
    assert any(text in w for w in warnings)


def test_a_dead_webhook_is_a_warning_not_an_error(warnings):
    async def story() -> None:
        operator = Operator("http://127.0.0.1:9/nobody", timeout=1)
        operator.tell("lost", "bot1", "微信账号 bot1 停止服务")
        await operator.drained()

    asyncio.run(story())
    assert any("webhook 调用失败" in w for w in warnings)


def test_a_lost_account_tells_what_changed_hands():
    text = render(
        "cli/operator_event.txt.j2",
        event="lost",
        account="bot1",
        reason="offline",
        moved=12,
        unserved=["乙3县少先队大队辅导员群"],
    )
    assert text == (
        "微信账号 bot1 已掉线，停止服务：12 条待发消息已转给其他账号；"
        "1 个群没有其他账号可发（乙3县少先队大队辅导员群），已告知发通知的单位。"
    )
