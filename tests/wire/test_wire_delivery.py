"""Delivery over the real wire, on both Node service lines: ``qunmatrix run`` against a puppet
service that goes down, is killed mid-relay, is shared by a second process, or asks for a QR
scan. Every wait is on a condition (a log line, what the service received, the database) with a
generous timeout; nothing here depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from bot.platforms.login_qr import SCALE, qr_modules, read_png
from matrix.blueprint import Blueprint
from matrix.relay import RelayEnv, RelayOptions, SystemClock, issue_notice
from matrix.tables import DELIVERY
from tests.wire.mock_service import LINES, TOKEN, BotProcess, MockService, start_service
from tests.worlds import ACCOUNT, mock_world, provisioned_world, room_of

pytestmark = pytest.mark.wire

PROVINCE_OFFICE = "wxPn001"
PROVINCE_GROUP = "示范省地市级团委少年部长群"
HEADER = "【通知 T1】"
# three tries 0.2 s and 0.4 s apart: the whole retry schedule is over in well under a second
RELAY = "[relay]\nrate = 0\njitter = 0\nretry_base_seconds = 0.2\nmax_attempts = 3\n"
WAIT = 60.0  # seconds any condition may take on a loaded machine


@pytest.fixture(params=sorted(LINES))
def line(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Scene:
    """A provisioned province served by ``qunmatrix run`` processes over one mock service."""

    def __init__(self, engine: Engine, bp: Blueprint, tmp_path: Path, line: str) -> None:
        self.engine, self.bp, self.tmp, self.line = engine, bp, tmp_path, line
        world = provisioned_world(engine, bp)
        self.world = mock_world(world)
        self.province_room = room_of(world, PROVINCE_GROUP)
        self.county_room = room_of(world, "乙1县少先队大队辅导员群")
        self.services = [start_service(self.world, tmp_path, line=line)]
        self.bots: list[BotProcess] = []

    @property
    def svc(self) -> MockService:
        return self.services[-1]

    def config(self, relay: str = RELAY) -> Path:
        path = self.tmp / "config.toml"
        path.write_text(
            f'db = "{self.engine.url.render_as_string(hide_password=False)}"\n'
            f'[wechaty]\nendpoint = "{self.svc.endpoint}"\ntoken = "{TOKEN}"\n'
            "reconnect_max_seconds = 1.0\n"
            f'[[accounts]]\nid = "{ACCOUNT}"\nops_per_second = 1000\n' + relay,
            encoding="utf-8",
        )
        return path

    def bot(self, relay: str = RELAY) -> BotProcess:
        process = BotProcess.start(["run", "--config", str(self.config(relay))], cwd=self.tmp)
        self.bots.append(process)
        return process

    def restart_service(self) -> MockService:
        self.services.append(
            start_service(self.world, self.tmp, grpc_port=self.svc.grpc_port, line=self.line)
        )
        return self.svc

    def notice(self, text: str = "请于今天报送建群情况") -> None:
        """The province office's notice, accepted while the bot may be offline (as a second bot
        process on the same database would accept it)."""
        env = RelayEnv(
            self.engine, self.bp, RelayOptions(), ZoneInfo("Asia/Shanghai"), SystemClock()
        )
        issue_notice(env, self.province_room, PROVINCE_OFFICE, text)

    def relay_rooms(self) -> set[str]:
        with self.engine.connect() as conn:
            from matrix.models import Group

            g = Group.__table__  # type: ignore[attr-defined]
            rows = conn.execute(
                select(g.c.room_id)
                .join(DELIVERY, DELIVERY.c.group_id == g.c.id)
                .where(DELIVERY.c.kind == "notice")
            )
            return {r.room_id for r in rows}

    def rows(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(DELIVERY).where(DELIVERY.c.kind == "notice").order_by(DELIVERY.c.id)
                )
            )

    def close(self) -> list[int]:
        codes = [b.stop() for b in self.bots]
        for svc in self.services:
            svc.stop()
        return codes


@pytest.fixture
def scene(province_db: Engine, bp: Blueprint, tmp_path: Path, line: str) -> Iterator[Scene]:
    s = Scene(province_db, bp, tmp_path, line)
    yield s
    s.close()


def until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something truthy; fail saying ``what`` if it never
    does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def copies(sends: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(s["room"], s["text"]) for s in sends if HEADER in s.get("text", "")]


def test_an_outage_longer_than_the_retry_schedule_loses_no_copy_and_marks_none_resend(scene):
    bot = scene.bot()
    bot.wait_for("通知下发已启动")
    scene.svc.crash()
    bot.wait_for("Wechaty 连接断开")
    scene.notice()
    rooms = scene.relay_rooms()
    assert len(rooms) == 5
    # the worker has seen the copies and holds them back for the connection
    bot.wait_for("条消息等连接恢复后发送（不计为发送失败）")
    time.sleep(3 * 0.6)  # real time passes: three times the whole retry schedule
    assert [(r.state, r.attempts) for r in scene.rows()] == [("pending", 0)] * 5

    svc = scene.restart_service()
    got = until(
        lambda: (c := copies(svc.logged_sends())) and {r for r, _ in c} == rooms and c,
        "every relay group's copy after the outage",
    )
    assert sorted(r for r, _ in got) == sorted(rooms)  # one each
    assert not any(text.startswith("【补发】") for _, text in got)
    until(lambda: all(r.state == "sent" for r in scene.rows()), "the copies recorded as sent")
    assert [r.attempts for r in scene.rows()] == [1] * 5
    assert "ERROR" not in bot.output(), bot.output()


def test_a_service_killed_right_after_a_send_resends_at_most_that_copy(scene):
    # one copy a second: the service dies in the middle of the relay
    bot = scene.bot(RELAY.replace("rate = 0", "rate = 1.0"))
    bot.wait_for("通知下发已启动")
    scene.notice()
    rooms = scene.relay_rooms()
    first = scene.svc
    until(lambda: copies(first.logged_sends()), "the first copy")
    first.crash()
    before = copies(first.logged_sends())
    assert 1 <= len(before) < 5
    bot.wait_for("Wechaty 连接断开")

    svc = scene.restart_service()
    until(
        lambda: {r for r, _ in before + copies(svc.logged_sends())} == rooms,
        "the rest of the copies",
    )
    until(lambda: all(r.state == "sent" for r in scene.rows()), "the copies recorded as sent")
    after = copies(svc.logged_sends())
    everything = before + after
    per_room = Counter(r for r, _ in everything)
    resent = [r for r, text in everything if text.startswith("【补发】")]
    assert len(resent) <= 1  # only the copy on the wire when the service died
    assert all(n == 1 or room in resent for room, n in per_room.items())  # no other duplicate
    assert sum(per_room.values()) <= len(rooms) + 1


def test_two_processes_on_one_service_get_a_clear_error(scene):
    first = scene.bot()
    first.wait_for("微信账号已登录")
    time.sleep(11)  # the first process serves steadily (longer than a taken session lasts)
    second = scene.bot()
    second.wait_for("另一个程序正在使用同一个 Wechaty 服务", timeout=WAIT)
    assert until(lambda: second.proc.poll() is not None, "the second process to stop") is True
    code = second.stop()
    assert code == 2, second.output()
    assert "请停掉另一个进程" in second.output()
    assert "Traceback" not in second.output()

    # the first one carries on (the mock service itself may need a while to recover from the
    # fight, so its answers are not asserted here): it neither stopped nor gave up the account
    assert first.proc.poll() is None, first.output()
    assert "另一个程序正在使用" not in first.output()


def test_a_scan_event_shows_the_qr_code_in_the_terminal_and_as_a_png(scene):
    bot = scene.bot()
    bot.wait_for("微信账号已登录")
    code = "https://login.weixin.qq.com/l/qunmatrix-wire"
    asyncio.run(scene.svc.scan(code))
    bot.wait_for("请用手机微信扫描下面的二维码")
    shown = bot.wait_for("二维码图片：").split("二维码图片：", 1)[1].strip()
    assert code in bot.wait_for("登录链接：")
    png = Path(shown)
    assert png == scene.tmp / "qunmatrix-login.png"
    modules = qr_modules(code)
    assert read_png(png) == [
        [v for v in row for _ in range(SCALE)] for row in modules for _ in range(SCALE)
    ]
    bot.wait_for("请扫码登录微信账号")
    assert "ERROR" not in bot.output(), bot.output()
