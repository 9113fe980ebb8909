"""``qunmatrix run``: serve one WeChat account through a Wechaty puppet service."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from loguru import logger

from bot.cli_app import Context, app, ctx_of, friendly
from bot.config import load_settings
from bot.logs import setup_logging
from matrix.platform import IncomingMessage, RoomEvent

if TYPE_CHECKING:  # importing wechaty takes a while: only `run` pays for it
    from bot.wechaty_adapter import WechatyPlatform

Attach = Callable[[Context, "WechatyPlatform"], None]


def log_only(c: Context, platform: WechatyPlatform) -> None:
    """Subscribe callbacks that only log what arrives (no replies)."""

    async def heard(msg: IncomingMessage) -> None:
        logger.info("群 {} 收到 {} 的消息（{} 字）", msg.room_id, msg.contact_id, len(msg.text))

    async def saw(event: RoomEvent) -> None:
        logger.info("群 {}：{} {}", event.room_id, event.kind.value, ",".join(event.contact_ids))

    platform.on_message(heard)
    platform.on_room_event(saw)


# what `run` hands the account to; tests may swap it
attach: Attach = log_only


async def serve(platform: WechatyPlatform) -> None:
    """Run ``platform`` until SIGINT or SIGTERM, then close the connection cleanly."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: loop.create_task(platform.stop()))
    try:
        await platform.run()
    finally:
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
    """连接 Wechaty 服务、登录微信账号并处理群消息；断线自动重连，Ctrl-C 停止。"""
    from bot.wechaty_adapter import WechatyPlatform

    c = ctx_of(ctx)
    if config is not None:
        c.settings = load_settings(config)
        setup_logging(c.settings.log_level, c.settings.log_file)
    s = c.settings.wechaty
    platform = WechatyPlatform.for_service(
        s.endpoint, s.token, port=s.port, send_interval=s.send_interval
    )
    attach(c, platform)
    logger.info("连接 Wechaty 服务 {}", s.endpoint)
    asyncio.run(serve(platform))
