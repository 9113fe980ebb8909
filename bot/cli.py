"""The ``qunmatrix`` command line. Each ``bot/cli_*`` module registers its commands on ``app``."""

from bot import cli_console, cli_demo, cli_roster, cli_run  # noqa: F401  (importing registers the commands)
from bot.cli_app import app

__all__ = ["app"]
