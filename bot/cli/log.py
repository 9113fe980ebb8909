"""``qunmatrix log``: check the audit chain (verify), print its head to keep elsewhere (anchor),
and read the log (show)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from bot.cli.app import app, ctx_of, echo, friendly
from bot.render.templates import render
from matrix.errors import MatrixError, UnknownUnit

log_app = typer.Typer(help="审计日志：核对完整性、打印链头锚点、查看记录。", no_args_is_help=True)
app.add_typer(log_app, name="log")

BROKEN = 3  # the exit status when the chain does not verify (2: a usage error, 1: internal)
MAX_LIMIT = 1000


@log_app.command()
@friendly
def verify(
    ctx: typer.Context,
    anchor: Annotated[
        str | None,
        typer.Option("--anchor", "-a", help="以前用 qunmatrix log anchor 记下的锚点 编号:哈希"),
    ] = None,
) -> None:
    """重算整条哈希链：完整则退出码 0，否则指出第一条被改、缺失、插入或调换顺序的记录。"""
    from matrix import audit_chain

    kept = audit_chain.Anchor.parse(anchor) if anchor is not None else None
    with ctx_of(ctx).ready_engine().connect() as conn:
        verdict = audit_chain.verify(conn, kept)
    echo(render("log/verify.txt.j2", v=verdict).strip())
    if not verdict.intact:
        raise typer.Exit(BROKEN)


@log_app.command()
@friendly
def anchor(ctx: typer.Context) -> None:
    """打印链头（最新一条的编号和哈希），请保存在数据库以外，日后用 verify --anchor 核对。"""
    from matrix import audit_chain

    with ctx_of(ctx).ready_engine().connect() as conn:
        head = audit_chain.anchor(conn)
    echo(render("log/anchor.txt.j2", head=head).strip())


@log_app.command()
@friendly
def show(
    ctx: typer.Context,
    unit: Annotated[
        str | None, typer.Option("--unit", "-u", help="单位代码：只看该单位及下属单位")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="从这一天起（YYYY-MM-DD，按配置的时区）")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="操作人：微信联系人 ID，或 cli:用户名")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="最多显示几条（1—1000）")] = 20,
) -> None:
    """查看审计日志，最新的在前。"""
    from bot.render.log import log_lines
    from matrix import audit_log
    from matrix.tree import unit_name

    c = ctx_of(ctx)
    if not 1 <= limit <= MAX_LIMIT:
        raise MatrixError(f"--limit 应在 1 到 {MAX_LIMIT} 之间", fix="请改小一些，或加 --since")
    start = _day(since, c.settings.timezone) if since is not None else None
    with c.ready_engine().connect() as conn:
        name = None
        if unit is not None:
            name = unit_name(conn, unit)
            if name is None:
                raise UnknownUnit(unit)
        page = audit_log.search(conn, unit_code=unit, since=start, actor=actor, limit=limit)
        lines = log_lines(conn, page, c.settings.timezone, width=120)
    echo(
        render("log/show.txt.j2", lines=lines, total=page.total, unit=unit, unit_name=name).strip()
    )


def _day(text: str, timezone: str) -> datetime:
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        raise MatrixError(f"日期 {text[:20]} 看不懂", fix="请写成 2026-11-24 这样") from None
    return day.replace(tzinfo=ZoneInfo(timezone))
