"""The ``qunmatrix`` Typer app and what every command shares: settings, engine, blueprint,
and turning errors into Chinese messages. Commands live in the ``bot/cli/*.py`` modules."""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Callable
from functools import cached_property, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer._click.globals import get_current_context

from bot.cli.text import ChineseGroup
from matrix.errors import MatrixError

if TYPE_CHECKING:  # at run time each command imports what it uses: start-up stays fast
    from sqlalchemy import Engine

    from bot.config import Settings
    from matrix.blueprint import Blueprint
    from matrix.tree import UnitTree


app = typer.Typer(
    name="qunmatrix",
    cls=ChineseGroup,
    help="群矩阵：分层建设和管理微信工作群。",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


# commands that only read a file and print: they pay for logging (loguru, asyncio: a sixth of
# their start-up) only when they fail
LOGS_NOTHING = frozenset({"blueprint"})


class Context:
    """What a command needs, built lazily from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def error_log(self) -> str:
        """Where tracebacks go; asking sets logging up (loguru, and stdlib logging into it)."""
        from bot.logs import setup_logging

        return setup_logging(self.settings.log_level, self.settings.log_file)

    @cached_property
    def engine(self) -> Engine:
        from matrix.db import make_engine

        return make_engine(self.settings.db)

    @cached_property
    def blueprint(self) -> Blueprint:
        from matrix.blueprint import load_blueprint

        return load_blueprint(self.settings.blueprint)

    def ready_engine(self) -> Engine:
        from matrix.db import require_schema

        require_schema(self.engine)
        return self.engine

    def tree(self) -> UnitTree:
        from matrix.tree import UnitTree

        return UnitTree.load(self.ready_engine(), self.blueprint.level_keys)

    @property
    def actor(self) -> str:
        return f"cli:{getpass.getuser()}"


def echo(text: str) -> None:
    typer.echo(text)


def friendly(func: F) -> F:
    """Show a MatrixError as its Chinese message (exit 2); log anything else with a reference."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MatrixError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            from loguru import logger

            from bot.render.templates import render

            ref = uuid.uuid4().hex[:8]
            root = get_current_context(silent=True)
            obj = root.find_root().obj if root is not None else None
            log = obj.error_log if isinstance(obj, Context) else ""
            logger.bind(file_only=True).opt(exception=exc).error(
                "command {} failed, ref {}", func.__name__, ref
            )
            typer.echo(render("cli/error.txt.j2", ref=ref, log=log), err=True)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


def ctx_of(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option("--db", help="数据库 URL，默认 sqlite:///qunmatrix.db")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="配置文件 config.toml")] = None,
    blueprint: Annotated[
        str | None,
        typer.Option("--blueprint", help="蓝图：young_pioneers、guangongwei 或 .toml 文件"),
    ] = None,
) -> None:
    """群矩阵 qunmatrix"""
    from bot.config import load_settings  # pydantic: not needed for --help

    try:
        settings = load_settings(config, db=db, blueprint=blueprint)
    except MatrixError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    ctx.obj = Context(settings)
    if ctx.invoked_subcommand not in LOGS_NOTHING:
        ctx.obj.error_log  # noqa: B018  (logging set up before the command starts)
