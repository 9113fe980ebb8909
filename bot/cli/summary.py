"""Commands for summaries and the media registry: summary, media import, media register."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bot.cli.app import Context, app, ctx_of, echo, friendly
from bot.render.templates import render

media_app = typer.Typer(help="网站及自媒体登记（附表）。", no_args_is_help=True)
app.add_typer(media_app, name="media")


def _today(c: Context) -> date:
    return datetime.now(ZoneInfo(c.settings.timezone)).date()


def _requester(c: Context, as_unit: str | None) -> str:
    from matrix.scope import top_unit

    if as_unit:
        return as_unit
    with c.ready_engine().connect() as conn:
        return top_unit(conn).code


AS_UNIT = typer.Option("--as", help="以哪个单位的身份操作（只能涉及其本级及下级），默认顶层单位")


@app.command()
@friendly
def summary(
    ctx: typer.Context,
    unit: Annotated[
        str | None, typer.Option("--unit", "-u", help="单位代码或名称，默认本单位")
    ] = None,
    table: Annotated[
        str, typer.Option("--table", "-t", help="build | media | notice | audit")
    ] = "build",
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="text | md | html | xlsx | csv，默认按 -o 的扩展名"),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="写入文件")] = None,
    findings: Annotated[
        Path | None,
        typer.Option(
            "--findings", help="审计结果 JSON（qunmatrix audit --json 的输出）；不给则当场审计"
        ),
    ] = None,
    as_unit: Annotated[str | None, AS_UNIT] = None,
) -> None:
    """汇总表：建设情况（附件2）、网站及自媒体（附表）、通知回执、审计问题。"""
    from bot.chat.relay_runner import relay_env
    from bot.cli.progress import progress
    from bot.render.summary import (
        chat_text,
        file_name,
        make_summary,
        parse_format,
        parse_table,
        render_file,
    )
    from matrix.summary.audit import read_findings

    c = ctx_of(ctx)
    table_key = parse_table(table)
    if fmt is None:
        fmt = out.suffix.lstrip(".").lower() if out is not None and out.suffix else "text"
    fmt_key = parse_format(fmt)
    records: list[Any] = []
    with progress() as bar:
        if table_key == "audit":
            with bar.step("读取名册和群"):
                records = (
                    read_findings(findings)
                    if findings
                    else _audit_now(c, unit, as_unit, bar.counter("审计各群", "个群"))
                )
        with bar.step("汇总"):
            data = make_summary(
                c.ready_engine(),
                c.blueprint,
                table_key,
                requester=_requester(c, as_unit),
                target=unit,
                as_of=_today(c),
                deadline=c.settings.build_deadline,
                findings=records,
                relay=relay_env(c.settings, c.engine, c.blueprint),
                on_step=bar.counter("汇总各单位", "个群"),
            )
            if out is None and fmt_key != "text":
                out = Path(file_name(data, fmt_key))
            content = render_file(data, fmt_key) if out is not None else b""
    if out is None:
        echo(chat_text(data, attached=False))
        return
    out.write_bytes(content)
    echo(render("summary/written.txt.j2", path=str(out), text=chat_text(data)))


def _audit_now(
    c: Context,
    unit: str | None,
    as_unit: str | None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """The audit ``qunmatrix audit`` would print, for the table's unit (as chat's #汇总 核查
    does, without a separate ``audit --json`` step)."""
    from bot.render.findings import finding_json
    from matrix.provisioning.findings import audit
    from matrix.provisioning.membership import survey
    from matrix.scope import resolve_target

    bots = [a.id for a in c.settings.account_quotas()]
    with c.ready_engine().connect() as conn:
        scope = resolve_target(conn, _requester(c, as_unit), unit)
        found = audit(conn, survey(conn, c.blueprint, scope.code, bots=bots), on_step)
        return [finding_json(f) for f in found]


@media_app.command("import")
@friendly
def media_import(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="登记表 .csv/.xlsx：单位代码或单位名称，网站网址，网页链接，公众号，视频号，抖音，快手"
        ),
    ],
    as_unit: Annotated[str | None, AS_UNIT] = None,
) -> None:
    """导入网站及自媒体登记表（全部校验通过才写入）。"""
    from matrix.media import import_media

    c = ctx_of(ctx)
    report = import_media(
        c.ready_engine(),
        c.blueprint,
        path,
        requester=_requester(c, as_unit),
        actor=c.actor,
        limits=c.settings.input.limits(),
    )
    echo(render("summary/media_import.txt.j2", r=report))


@media_app.command("register")
@friendly
def media_register(
    ctx: typer.Context,
    words: Annotated[
        list[str], typer.Argument(help="[单位] 类型 名称，如：230102 公众号 道里关工")
    ],
    as_unit: Annotated[str | None, AS_UNIT] = None,
) -> None:
    """登记一项网站或自媒体（与群里的 #登记 相同）。"""
    from matrix.media import parse_registration, register_media

    c = ctx_of(ctx)
    change = register_media(
        c.ready_engine(),
        c.blueprint,
        parse_registration(" ".join(words)),
        requester=_requester(c, as_unit),
        actor=c.actor,
    )
    echo(render("summary/media_registered.txt.j2", c=change))
