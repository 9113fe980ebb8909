"""One bot process serving one WeChat account (what ``qunmatrix run`` starts): the
dispatcher and the relay over the configured database, login and presence, /healthz. Kept
apart from the command line so that ``qunmatrix --help`` does not import it (issue 12)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import typer
from loguru import logger

from bot.chat.dispatch import Bot
from bot.chat.relay_runner import PromptClock, relay_env
from bot.chat.summary import SummaryOptions
from bot.config import Settings, WechatySettings
from bot.render.templates import render
from bot.service.health import Checks, HealthServer, logged_in
from bot.service.operator_alerts import Operator
from matrix.errors import MatrixError
from matrix.platform import PlatformError, Presence
from matrix.relay.handover import HandOver

if TYPE_CHECKING:  # importing wechaty takes a while: only `run` pays for it
    from sqlalchemy import Engine

    from bot.platforms.wechaty_adapter import WechatyPlatform
    from matrix.blueprint import Blueprint

FLUSH_EVERY = 1.0  # seconds between tries of replies that could not go out at once


class Context(Protocol):
    """What the process needs of the command line's context (``bot.cli.app.Context`` is one;
    the service does not import the command line, which imports the service)."""

    settings: Settings

    @property
    def blueprint(self) -> Blueprint: ...

    def ready_engine(self) -> Engine: ...


def dispatcher(c: Context, platform: WechatyPlatform) -> Bot:
    """The dispatcher over the configured database, blueprint, bot accounts and join review
    policy, listening to ``platform`` from its first login on (it needs the account id to know
    its own messages, and to pace the account as its ``[[accounts]]`` entry says). At every
    login the relay registers the account's rooms (the first time also taking back what a
    previous run left half-done), after the events received before it."""
    settings = c.settings
    engine = c.ready_engine()
    bot = Bot(
        engine,
        c.blueprint,
        summaries=SummaryOptions.of(settings),
        relay=relay_env(settings, engine, c.blueprint, PromptClock()),
        quotas=settings.account_quotas(),
        join_policy=settings.join_policy(),
        bind_limits=settings.bind_limits(),
        limits=settings.limits,
    )

    async def start_relay() -> None:
        await platform.wait_logged_in()
        try:
            await bot.relay.start()
        except PlatformError as exc:
            # the connection dropped during the start: the next login starts the relay again
            logger.warning("通知下发未能启动（{}），重新登录后再试", exc)
            return
        logger.info("通知下发已启动：账号 {}", platform.last_account_id)

    async def on_login(account_id: str) -> None:
        if not bot.accounts:
            quota = next((q for q in bot.quotas if q.id == account_id), None)
            if quota is None:
                logger.warning(
                    "账号 {} 不在配置的 [[accounts]] 中：按每秒 1 次操作限速；建群计划不会安排它",
                    account_id,
                )
            else:
                platform.send_interval = 1.0 / quota.ops_per_second
            bot.attach(platform)
        platform.in_turn(start_relay)

    platform.on_login(on_login)
    return bot


def wechaty_platform(settings: WechatySettings) -> WechatyPlatform:
    """The Wechaty platform of the configured puppet service, reconnecting with backoff."""
    from bot.platforms.wechaty_adapter import Backoff, WechatyPlatform

    return WechatyPlatform.for_service(
        settings.endpoint,
        settings.token,
        port=settings.port,
        backoff=Backoff(maximum=settings.reconnect_max_seconds),
        files_dir=settings.files_dir,
    )


def login_screen(data: str, png: Path) -> str:
    """Write the login QR code's PNG and return what the terminal shows
    (``cli/login_qr.txt.j2``)."""
    from bot.platforms.login_qr import login_url, qr_modules, terminal_text, write_png

    write_png(qr_modules(data), png)
    return render("cli/login_qr.txt.j2", qr=terminal_text(data), png=str(png), url=login_url(data))


def watch_presence(platform: WechatyPlatform, bot: Bot, settings: WechatySettings) -> Operator:
    """Show the login QR code when the account must scan, and tell the operator when the
    account logs out or is lost."""
    from bot.platforms.login_qr import login_url
    from bot.platforms.wechaty_compat import ScanStatus

    operator = Operator(settings.webhook, settings.webhook_timeout)
    png = Path(settings.qr_file).expanduser().resolve()

    async def on_scan(qr: str, status: ScanStatus) -> None:
        if status is ScanStatus.Waiting and qr:
            typer.echo(login_screen(qr, png))
            logger.info("请扫码登录微信账号：二维码图片 {}，登录链接 {}", png, login_url(qr))
        elif status is ScanStatus.Scanned:
            logger.info("已扫码，请在手机微信上确认登录")
        elif status is ScanStatus.Confirmed:
            logger.info("已在手机上确认登录，正在登录")
        elif status in (ScanStatus.Timeout, ScanStatus.Cancel):
            logger.info("登录二维码已失效，等待新的二维码")

    async def on_presence(presence: Presence) -> None:
        if presence is Presence.LOGGED_OUT:
            account = platform.last_account_id
            operator.tell(
                "logout",
                account,
                render("cli/operator_event.txt.j2", event="logout", account=account),
            )

    def on_lost(result: HandOver) -> None:
        text = render(
            "cli/operator_event.txt.j2",
            event="lost",
            account=result.account,
            reason=result.reason,
            moved=sum(result.moved.values()),
            unserved=list(result.unserved.values()),
        )
        operator.tell("lost", result.account, text)

    platform.on_scan(on_scan)
    platform.on_presence(on_presence)
    bot.relay.on_lost(on_lost)
    return operator


async def serve(platform: WechatyPlatform, bot: Bot, operator: Operator | None = None) -> None:
    """Run ``platform`` until SIGINT or SIGTERM, then close the connection cleanly. Every
    ``FLUSH_EVERY`` seconds the bot's tick runs in turn with the incoming events: held joiners
    whose time ran out are dealt with, and replies the outbox held back (pacing, a dropped
    connection) are tried again. The relay runs alongside from the first login on."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: loop.create_task(platform.stop()))

    async def tick() -> None:
        await bot.tick()
        left = len(bot.outbox)
        if left:
            logger.info("还有 {} 条回复等待发送", left)

    async def flusher() -> None:
        # in turn with incoming events: what is due by the clock (held joiners whose time ran
        # out, paced replies) is done between two of them, never inside one
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            platform.in_turn(tick)

    from bot.platforms.wechaty_adapter import SessionTaken

    tasks = [asyncio.create_task(flusher()), asyncio.create_task(bot.relay.serve())]
    try:
        await platform.run()
    except SessionTaken as exc:
        if operator is not None:
            await operator.post("session_taken", platform.last_account_id, str(exc))
        raise
    finally:
        if operator is not None:
            await operator.drained()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def start_health(c: Context, platform: WechatyPlatform, port: int | None) -> HealthServer | None:
    """/healthz on ``port`` (default: ``[health] port``; 0: none), serving from its thread."""
    settings = c.settings.health
    port = settings.port if port is None else port
    if not port:
        return None
    checks = Checks(
        c.ready_engine(), functools.partial(logged_in, platform), settings.max_pending_seconds
    )
    try:
        return HealthServer(checks, port, settings.host).start()
    except OSError as exc:
        raise MatrixError(
            f"健康检查端口 {settings.host}:{port} 无法使用（{exc.strerror or exc}）",
            where="--health-port / config.toml [health] port",
            fix="换一个空闲端口，或先停止占用它的程序",
        ) from exc
