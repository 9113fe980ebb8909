"""``qunmatrix doctor``: is this machine ready to run the bot? Each check says what it found
and, when it fails, the fix; the exit code is non-zero when any check fails."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import typer

from bot.cli.app import Context, app, ctx_of, echo
from bot.render.templates import render
from matrix.errors import MatrixError

CONNECT_TIMEOUT = 3.0  # seconds: a puppet service on the LAN answers at once or not at all


@dataclass(frozen=True)
class Check:
    """One line of the checklist (rendered by ``cli/doctor.txt.j2``)."""

    key: str  # config | database | blueprint | roster | accounts | puppet
    ok: bool
    found: str = ""
    fix: str = ""
    skipped: bool = False


def _config(ctx: typer.Context) -> Check:
    given = ctx.find_root().params.get("config")
    path = Path(given) if given else Path("config.toml")
    return Check("config", True, str(path) if path.is_file() else "")


def _database(c: Context) -> Check:
    from loguru import logger

    from matrix.db import make_engine, reach, schema_is_current

    url = c.settings.db
    try:
        engine = make_engine(url)
        with reach(engine):
            pass
        current = schema_is_current(engine)
    except MatrixError as exc:  # unreachable or unreadable: its Chinese cause, the fix below
        logger.debug("doctor: database {} unreachable: {!r}", url, exc.__cause__)
        return Check("database", False, exc.message)
    except Exception as exc:  # any other driver failure: the driver's English goes to the log
        logger.opt(exception=exc).warning("doctor: database {} failed", url)
        return Check("database", False, "无法连接（原因已写入日志）")
    shown = engine.url.render_as_string(hide_password=True)
    return Check("database", current, shown, "" if current else "init")


def _blueprint(c: Context) -> Check:
    from matrix.blueprint import load_blueprint

    try:
        bp = load_blueprint(c.settings.blueprint)
    except MatrixError as exc:
        return Check("blueprint", False, str(exc))
    return Check("blueprint", True, f"{bp.matrix.name}（{c.settings.blueprint}）")


def _roster(c: Context, database: Check) -> Check:
    from matrix.db import make_engine
    from matrix.tree import roster_size

    if not database.ok:
        return Check("roster", True, skipped=True)  # the database line already failed
    with make_engine(c.settings.db).connect() as conn:
        units, persons = roster_size(conn)
    return Check("roster", bool(units), f"单位 {units:,} 个、人员 {persons:,} 人")


def _accounts(c: Context) -> Check:
    ids = [a.id for a in c.settings.accounts]
    real = c.settings.platform == "wechaty"
    missing = [k for k, v in (("endpoint", c.settings.wechaty.endpoint),) if real and not v]
    if real and not c.settings.wechaty.token:
        missing.append("token")
    return Check("accounts", bool(ids) and not missing, "、".join(ids), "、".join(missing))


def _puppet(c: Context) -> Check:
    if c.settings.platform != "wechaty":
        return Check("puppet", True, "", skipped=True)
    endpoint = c.settings.wechaty.endpoint
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        return Check("puppet", False, endpoint)
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        return Check("puppet", False, endpoint, exc.strerror or type(exc).__name__)
    return Check("puppet", True, endpoint)


@app.command()
def doctor(ctx: typer.Context) -> None:
    """检查运行条件：配置、数据库与迁移、蓝图、名册、机器人账号、puppet 服务是否可连接。"""
    c = ctx_of(ctx)
    database = _database(c)
    checks = [
        _config(ctx),
        database,
        _blueprint(c),
        _roster(c, database),
        _accounts(c),
        _puppet(c),
    ]
    failed = [x for x in checks if not x.ok]
    echo(render("cli/doctor.txt.j2", checks=checks, failed=len(failed), settings=c.settings))
    if failed:
        raise typer.Exit(1)
