"""``/healthz`` over a real socket on 127.0.0.1: healthy is 200, and each way of being unhealthy
(account logged out, database unreachable, a relay message stuck past its time) is 503 with
the reason in Chinese."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from bot.service.health import Checks, HealthServer
from matrix.blueprint import Blueprint
from matrix.db import make_engine
from matrix.models import utcnow
from matrix.relay import RelayEnv, RelayOptions, issue_notice
from matrix.tables import DELIVERY
from tests import worlds
from tests.worlds import build_matrix


class Account:
    logged_in = True


def get(server: HealthServer, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def account() -> Account:
    return Account()


@pytest.fixture
def serve(account: Account) -> Iterator[Any]:
    servers: list[HealthServer] = []

    def start(engine: Engine, max_pending: float = 600.0) -> HealthServer:
        checks = Checks(engine, lambda: account.logged_in, max_pending_seconds=max_pending)
        servers.append(HealthServer(checks, port=0).start())
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_logged_in_bot_with_nothing_owed_is_healthy(engine: Engine, serve):
    server = serve(engine)
    status, body = get(server)
    assert status == 200
    assert body["ok"] is True and body["logged_in"] is True and body["database"] is True
    assert body["backlog"] == 0 and body["oldest_pending_seconds"] is None
    assert body["problems"] == []
    assert get(server, "/")[0] == 404


def test_a_logged_out_account_is_unhealthy(engine: Engine, serve, account: Account):
    server = serve(engine)
    account.logged_in = False
    status, body = get(server)
    assert status == 503
    assert body["ok"] is False and body["logged_in"] is False
    assert body["problems"] == ["微信账号未登录：请查看日志里的登录提示，必要时扫码重新登录"]
    account.logged_in = True
    assert get(server)[0] == 200


def test_an_unreachable_database_is_unhealthy(tmp_path: Path, serve):
    gone = make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'q.db'}")
    status, body = get(serve(gone))
    assert status == 503
    assert body["database"] is False and body["backlog"] is None
    assert body["problems"][0].startswith("数据库无法连接（OperationalError）")


def test_a_relay_message_stuck_past_its_time_makes_the_bot_unhealthy(
    province_db: Engine, bp: Blueprint, serve
):
    rooms = build_matrix(province_db, bp, ["bot1"])
    env = RelayEnv(province_db, bp, RelayOptions())
    office = worlds.province()[1][0][4]
    issue_notice(env, rooms[("P", "city-youth-heads", 0)], office, "截止 明天 23:00 请报送名单")
    server = serve(province_db, max_pending=600)
    status, body = get(server)
    owed = body["backlog"]
    assert status == 200 and owed > 0 and body["oldest_pending_seconds"] < 600
    with province_db.begin() as conn:
        conn.execute(update(DELIVERY).values(planned_at=utcnow() - timedelta(minutes=15)))
    status, body = get(server)
    assert status == 503 and body["backlog"] == owed
    assert 900 <= body["oldest_pending_seconds"] < 1000
    (problem,) = body["problems"]
    assert problem.startswith("最早一条待发消息已等待 9")
    assert problem.endswith("秒（上限 600 秒）：请检查账号是否被限制、是否还在群里")


def test_qunmatrix_run_serves_healthz_on_its_port_and_says_when_the_port_is_taken(
    engine: Engine,
):
    from bot.cli.app import Context
    from bot.config import Settings
    from bot.platforms.wechaty_adapter import WechatyPlatform
    from bot.service.process import start_health
    from matrix.errors import MatrixError

    context = Context(Settings(db=engine.url.render_as_string(hide_password=False)))
    platform = WechatyPlatform(lambda: None)  # type: ignore[arg-type, return-value]
    assert start_health(context, platform, 0) is None  # no port: no server
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = start_health(context, platform, port)
    assert server is not None
    try:
        status, body = get(server)  # never logged in: the adapter is not connected
        assert status == 503 and body["logged_in"] is False and body["database"] is True
        with pytest.raises(MatrixError, match=f"健康检查端口 127.0.0.1:{port} 无法使用"):
            start_health(context, platform, port)
    finally:
        server.close()
