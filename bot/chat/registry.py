"""Every chat command, collected from the module of its area in the order #帮助 lists them.

Adding a command: declare it (``Command(..., templates=..., executor=fn)``) next to its executor
in its area's module and add its template under ``templates/replies/``; the registry finds it
there (a new area module is listed once in ``AREAS``). Parsing, permission checks, #帮助, usage
errors and the console read only these declarations.

>>> inv = parse("#核查 K1")
>>> inv.command.key, inv.rest
('audit', 'K1')
>>> parse("＃help").command.name
'帮助'
>>> parse("收到").command.key, parse("收到T12").rest, parse("大家好") is None
('ack', 'T12', True)
>>> COMMANDS["approve"].usage
'#同意 <编号> [人员]'
"""

from __future__ import annotations

from typing import Any

from bot.chat import adopt as adopt_chat
from bot.chat import help as help_chat
from bot.chat import log as log_chat
from bot.chat import match as match_chat
from bot.chat import provision as provision_chat
from bot.chat import relay as relay_chat
from bot.chat import returns as returns_chat
from bot.chat import review as review_chat
from bot.chat import summary as summary_chat
from bot.chat.commands import Command, Invocation, Registry, UnitResolver

AREAS = (
    help_chat,
    provision_chat,
    adopt_chat,
    review_chat,
    match_chat,
    relay_chat,
    returns_chat,
    summary_chat,
    log_chat,
)
"""The modules that declare commands, in the order #帮助 lists their commands."""


def declared(module: object) -> list[Command]:
    """The commands ``module`` declares, in the order it declares them."""
    return [v for v in vars(module).values() if isinstance(v, Command)]


REGISTRY = Registry([command for area in AREAS for command in declared(area)])
TABLE: tuple[Command, ...] = REGISTRY.table
COMMANDS: dict[str, Command] = REGISTRY.by_key


def parse(text: str) -> Invocation | None:
    """``Registry.parse`` over every declared command."""
    return REGISTRY.parse(text)


def lookup(name: str) -> Command | None:
    """``Registry.lookup`` over every declared command."""
    return REGISTRY.lookup(name)


def bind(command: Command, rest: str, find_unit: UnitResolver) -> dict[str, Any]:
    """``Registry.bind`` over every declared command."""
    return REGISTRY.bind(command, rest, find_unit)
