"""The ``qunmatrix`` command line. Each ``bot/cli_*`` module registers its commands on ``app``."""

from bot import cli_demo, cli_provision, cli_roster  # noqa: F401  (importing registers the commands)
from bot.cli_app import app

__all__ = ["app"]
