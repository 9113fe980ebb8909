"""``qunmatrix backup FILE`` and ``qunmatrix restore FILE`` (format and choices: matrix.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.app import app, ctx_of, echo, friendly
from bot.render.templates import render

Force = Annotated[bool, typer.Option("--force", help="覆盖已有的文件或数据")]


@app.command("backup")
@friendly
def backup_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="备份文件，如 qunmatrix-20261201.db")],
    force: Force = False,
) -> None:
    """备份整个数据库到一个文件（SQLite 和 PostgreSQL 都写成同一种文件，可恢复到任一种）。"""
    from matrix.backup import backup

    c = ctx_of(ctx)
    report = backup(c.engine, file, force=force)
    echo(render("cli/backup_done.txt.j2", kind="backup", file=str(file), report=report))


@app.command("restore")
@friendly
def restore_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="qunmatrix backup 写出的备份文件")],
    force: Force = False,
) -> None:
    """从备份文件恢复数据库（目标库已有数据时需加 --force，原有数据将被替换）。"""
    from matrix import audit_log
    from matrix.backup import restore

    c = ctx_of(ctx)
    report = restore(c.engine, file, force=force)
    with c.engine.begin() as conn:
        audit_log.record(conn, c.actor, "db.restore", None, file=str(file), rows=report.rows)
    echo(render("cli/backup_done.txt.j2", kind="restore", file=str(file), report=report))
