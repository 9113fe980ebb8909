"""``qunmatrix run`` (the process itself is ``bot.service.process``): serve one WeChat account through a Wechaty puppet service, with the
dispatcher (commands, join review) and the relay (notice copies, reminders, escalation, reports;
the service's echoes confirm the copies) over the configured database. Several processes, one
per account, may share one PostgreSQL database: the relay's rows are locked per account, and
a command heard by several accounts is answered by one (``matrix.claims``). With
``--health-port`` the process also serves ``/healthz`` (``bot.service.health``).

Login and presence: a ``scan`` event shows the QR code in the terminal, writes it as a PNG
(``[wechaty] qr_file``) and logs the login link; logins and logouts are logged in Chinese. A
logout, an account lost (its groups handed to other accounts, see ``matrix.relay.handover``) and
another process taking the session are told to the operator (``bot.service.operator_alerts``: the log,
and the optional ``[wechaty] webhook``). Another process on the same service stops this one with
a clear error (``SessionTaken``) instead of a fight over the session."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.app import app, ctx_of, friendly


@app.command()
@friendly
def run(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="配置文件 config.toml（同 qunmatrix --config）")
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port",
            min=0,
            max=65535,
            help="在此端口提供 GET /healthz 健康检查（JSON），默认见配置 health.port；0 关闭",
        ),
    ] = None,
) -> None:
    """连接 Wechaty 服务、登录微信账号并处理群里的命令；断线自动重连，Ctrl-C 停止。"""
    import asyncio

    from loguru import logger

    from bot.logs import setup_logging
    from bot.service.process import (
        dispatcher,
        serve,
        start_health,
        watch_presence,
        wechaty_platform,
    )

    c = ctx_of(ctx)
    if config is not None:
        from bot.config import load_settings

        c.settings = load_settings(config)
        setup_logging(c.settings.log_level, c.settings.log_file)
        c.__dict__.pop("engine", None)
        c.__dict__.pop("blueprint", None)
    s = c.settings.wechaty
    platform = wechaty_platform(s)
    bot = dispatcher(c, platform)
    operator = watch_presence(platform, bot, s)
    health = start_health(c, platform, health_port)
    logger.info("连接 Wechaty 服务 {}", s.endpoint)
    try:
        asyncio.run(serve(platform, bot, operator))
    finally:
        if health is not None:
            health.close()
        bot.close()
