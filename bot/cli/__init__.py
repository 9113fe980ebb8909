"""The ``qunmatrix`` command line: one module per group of commands, each registering its
commands on ``bot.cli.app.app``. The outermost layer: may import ``bot.chat``, ``bot.render``,
``bot.rehearsal``, ``bot.service``
(inside the commands that need them, so start-up stays light) and ``matrix``."""

import gc
import os

# pydantic looks through every installed distribution's entry points for plugins the first
# time a model is built (~15 ms of each command's start-up); qunmatrix uses none, and an
# operator who does can still set the variable themselves
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from bot.cli import (  # noqa: F401  (importing registers the commands)
    adopt,
    backup,
    binding,
    console,
    demo,
    doctor,
    log,
    match,
    provision,
    roster,
    run,
    summary,
)
from bot.cli.app import app
from bot.cli.text import install

install(app)


def main() -> None:
    """The ``qunmatrix`` console script: ``app``, and a quick way out.

    At exit the interpreter collects once more, walking every object the command made (25 ms
    of `blueprint`'s 0.2 s, more after a national tree) to find cycles nothing needs by then.
    Frozen, they are left to the exit: what the command still holds is freed by reference
    counts as the modules are torn down, and atexit handlers (loguru's flush) run before that.
    """
    try:
        app()
    finally:
        gc.freeze()


__all__ = ["app", "main"]
