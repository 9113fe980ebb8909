"""``qunmatrix run``: serve one WeChat account through a Wechaty puppet service, with the
dispatcher (commands, join review) and the relay (notice copies, reminders, escalation, reports;
the service's echoes confirm the copies) over the configured database. Several processes, one
per account, may share one PostgreSQL database: the relay's rows are locked per account."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli_app import Context, app, ctx_of, friendly
from bot.config import load_settings

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from bot.dispatch import Bot


if TYPE_CHECKING:  # importing wechaty takes a while: only `run` pays for it
    from bot.wechaty_adapter import WechatyPlatform

FLUSH_EVERY = 1.0  # seconds between tries of replies that could not go out at once


def dispatcher(c: Context, platform: WechatyPlatform) -> Bot:
    """The dispatcher over the configured database, blueprint, bot accounts and join review
    policy, listening to ``platform`` from its first login on (it needs the account id to know
    its own messages, and to pace the account as its ``[[accounts]]`` entry says). At every
    login the relay registers the account's rooms (the first time also taking back what a
    previous run left half-done), after the events received before it."""
    from loguru import logger

    from bot.dispatch import Bot
    from bot.relay_runner import PromptClock, relay_env
    from bot.summary_chat import SummaryOptions

    settings = c.settings
    engine = c.ready_engine()
    bot = Bot(
        engine,
        c.blueprint,
        summaries=SummaryOptions.of(settings),
        relay=relay_env(settings, engine, c.blueprint, PromptClock()),
        quotas=settings.account_quotas(),
        join_policy=settings.join_policy(),
    )

    async def start_relay() -> None:
        await platform.wait_logged_in()
        await bot.relay.start()

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


async def serve(platform: WechatyPlatform, bot: Bot) -> None:
    """Run ``platform`` until SIGINT or SIGTERM, then close the connection cleanly. Every
    ``FLUSH_EVERY`` seconds the bot's tick runs in turn with the incoming events: held joiners
    whose time ran out are dealt with, and replies the outbox held back (pacing, a dropped
    connection) are tried again. The relay runs alongside from the first login on."""
    from loguru import logger

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

    tasks = [asyncio.create_task(flusher()), asyncio.create_task(bot.relay.serve())]
    try:
        await platform.run()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@app.command()
@friendly
def run(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="配置文件 config.toml（同 qunmatrix --config）")
    ] = None,
) -> None:
    """连接 Wechaty 服务、登录微信账号并处理群里的命令；断线自动重连，Ctrl-C 停止。"""
    from loguru import logger

    from bot.logs import setup_logging
    from bot.wechaty_adapter import WechatyPlatform

    c = ctx_of(ctx)
    if config is not None:
        c.settings = load_settings(config)
        setup_logging(c.settings.log_level, c.settings.log_file)
        c.__dict__.pop("engine", None)
        c.__dict__.pop("blueprint", None)
    s = c.settings.wechaty
    platform = WechatyPlatform.for_service(s.endpoint, s.token, port=s.port)
    bot = dispatcher(c, platform)
    logger.info("连接 Wechaty 服务 {}", s.endpoint)
    asyncio.run(serve(platform, bot))
