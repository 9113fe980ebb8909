"""The ``qunmatrix`` command line. Each ``bot/cli_*`` module registers its commands on ``app``."""

from bot import (  # noqa: F401  (importing registers the commands)
    cli_backup,
    cli_binding,
    cli_console,
    cli_demo,
    cli_doctor,
    cli_log,
    cli_provision,
    cli_roster,
    cli_run,
    cli_summary,
)
from bot.cli_app import app
from bot.cli_text import install

install(app)

__all__ = ["app"]
