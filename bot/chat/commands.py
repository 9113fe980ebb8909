"""What a command declaration is made of, and how a message becomes one.

Each ``Command`` is declared once, in the module of its area next to its executor
(``bot.chat.provision``, ``review``, ``relay``, ``summary``, ``log``, ``help``); it names itself
in Chinese and English, lists typed parameters, says who may run it, and carries a one-line
summary, an example and its reply templates. ``bot.chat.registry`` collects them in help order
into a ``Registry``, whose ``parse`` finds the command in a message and ``bind`` turns the rest
into typed arguments, raising ``UsageError`` with what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from matrix.blueprint import normalize_label
from matrix.errors import MatrixError
from matrix.provisioning.authority import Who
from matrix.relay.codes import parse_code


class Kind(Enum):
    UNIT = "unit"  # a unit code or name, resolved by the dispatcher
    NUMBER = "number"  # a positive whole number (编号)
    PHONE = "phone"  # an 11-digit mobile number
    PERSON = "person"  # a phone number or a roster name, resolved by the handler
    CHOICE = "choice"  # one of ``choices``
    COMMAND = "command"  # the name of a command
    NOTICE = "notice"  # a notice's id as people type it: T12 (or 12)
    REPORT = "report"  # a report's id: R5 (or 5)
    FORM = "form"  # a form's id (填报): F3
    TEXT = "text"  # the rest of the message, as typed


@dataclass(frozen=True)
class Param:
    key: str
    label: str  # as people read it in the usage line: <编号>
    kind: Kind
    required: bool = True
    choices: tuple[str, ...] = ()
    # (alias, value) pairs a CHOICE also accepts, unlisted in help: 表格 for xlsx, 微信公众号 …
    synonyms: tuple[tuple[str, str], ...] = ()

    @property
    def usage(self) -> str:
        return f"<{self.label}>" if self.required else f"[{self.label}]"

    def choose(self, token: str) -> str:
        """The choice ``token`` names, by itself or by a synonym; ``ValueError`` otherwise."""
        for choice in self.choices:
            if token.casefold() == choice.casefold():
                return choice
        folded = normalize_label(token).casefold()
        for alias, value in self.synonyms:
            if folded == normalize_label(alias).casefold():
                return value
        raise ValueError(token)


Executor = Callable[[Any], Awaitable[Any]]
"""A command's executor: ``async def fn(call: bot.chat.context.Call) -> Reply | None``."""


@dataclass(frozen=True)
class Command:
    """One chat command, declared once in the module of its area, next to its executor: its
    key, Chinese name and English alias, typed parameters, who may run it, a one-line summary,
    an example, the reply templates under ``templates/replies/`` its executor answers with, and
    the executor. ``bare`` commands may also be typed without the leading #."""

    key: str
    name: str
    alias: str
    params: tuple[Param, ...]
    who: Who
    summary: str
    example: str
    bare: bool = False
    audited: bool = field(default=False)  # recorded even when not an office command
    templates: tuple[str, ...] = ()
    executor: Executor | None = field(default=None, compare=False, repr=False)

    @property
    def usage(self) -> str:
        return " ".join([f"#{self.name}", *(p.usage for p in self.params)])

    @property
    def recorded(self) -> bool:
        """Whether an accepted run goes to the audit log."""
        return self.audited or self.who is Who.OFFICE


class UsageError(MatrixError):
    """A command typed wrongly. ``problem`` names what (missing, bad_value, extra, unknown_unit,
    ambiguous_unit); the reply template words it and shows the correct form."""

    def __init__(
        self,
        command: Command,
        problem: str,
        *,
        param: Param | None = None,
        value: str = "",
        **more: Any,
    ) -> None:
        super().__init__(f"{command.name}: {problem} {value}".strip())
        self.command = command
        self.problem = problem
        self.param = param
        self.value = value
        self.more = more


UNIT = Param("unit", "单位", Kind.UNIT, required=False)
"""The optional unit most office commands act on (default: the group's, else the asker's)."""
_SPACE = re.compile(r"\s+")
_PHONE = re.compile(r"^1\d{10}$")
_TRAILING = "!！。.,，~～"


@dataclass(frozen=True)
class Invocation:
    """A message recognised as a command: which one, and the text after its name."""

    command: Command | None  # None: '#' followed by a name no command has
    name: str
    rest: str
    bare: bool = False  # typed without '#' (收到): answered only when it does something


class Registry:
    """The declared commands in help order: ``parse`` finds one in a message, ``lookup`` by
    name, ``bind`` types its arguments."""

    def __init__(self, commands: Sequence[Command]) -> None:
        self.table = tuple(commands)
        self.by_key: dict[str, Command] = {c.key: c for c in self.table}
        self._by_name = {n.casefold(): c for c in self.table for n in (c.name, c.alias)}
        # longest first, so a name that starts another name never shadows it
        self._names = sorted(self._by_name, key=len, reverse=True)
        self._bare = [(n, c) for n, c in self._by_name.items() if c.bare and not n.isascii()]

    def __iter__(self) -> Iterator[Command]:
        return iter(self.table)

    def names(self) -> list[str]:
        """Every name and alias, as people may type them."""
        return [n for c in self.table for n in (c.name, c.alias)]

    def lookup(self, name: str) -> Command | None:
        """The command called ``name`` (Chinese or English, any case), or None."""
        return self._by_name.get(name.strip().lstrip("#＃").casefold())

    def parse(self, text: str) -> Invocation | None:
        """Recognise a command; None for ordinary chat. ``#`` and ``＃`` both start a command;
        bare commands (收到) are recognised without one."""
        text = text.strip()
        if text[:1] in ("#", "＃"):
            body = text[1:].lstrip()
            if not body:
                return None
            folded = body.casefold()
            for name in self._names:
                if folded.startswith(name):
                    after = body[len(name) :]
                    # an English alias must end at a word boundary (#helpme is not #help)
                    if name.isascii() and after[:1].isalnum():
                        continue
                    return Invocation(self._by_name[name], name, after.strip())
            word, rest = _next_token(body)
            return Invocation(None, word, rest)
        head, rest = _next_token(text)
        command = self._by_name.get(head.rstrip(_TRAILING).casefold())
        if command is not None and command.bare:
            return Invocation(command, head, rest, bare=True)
        for name, command in self._bare:  # the name run together with an id: 收到T12
            after = text[len(name) :]
            if text.casefold().startswith(name) and after[:1].isascii() and after[:1].isalnum():
                return Invocation(command, name, after, bare=True)
        return None

    def bind(self, command: Command, rest: str, find_unit: UnitResolver) -> dict[str, Any]:
        """``bind`` with this registry's commands as the ones a command parameter names."""
        return bind(command, rest, find_unit, find_command=self.lookup)


def _next_token(text: str) -> tuple[str, str]:
    """The first word and the rest; any whitespace (the full-width space too) separates."""
    parts = _SPACE.split(text.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


UnitResolver = Callable[[Command, Param, str], str]
# the largest 编号 a command takes: PostgreSQL's integer, so no number typed reaches a query
# the database cannot hold (SQLite fails on 2**63, PostgreSQL on 2**31)
MAX_NUMBER = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")
_FULL_WIDTH = str.maketrans("０１２３４５６７８９＃", "0123456789#")
MAX_TOKEN = 100  # the longest word a parameter other than a text may be


def number(token: str) -> int:
    """A 编号 as typed: ASCII digits (full-width ones, as Chinese input gives them, read as
    such), ``#3`` and ``3号`` too, from 1 to ``MAX_NUMBER``; ``ValueError`` otherwise. Other
    digits (٣, 𝟑, ³) are refused: a number must read the same to the office and to the bot.

    >>> number("3"), number("３号"), number("＃12")
    (3, 3, 12)
    """
    digits = token.translate(_FULL_WIDTH).lstrip("#").removesuffix("号")
    if not _DIGITS.fullmatch(digits) or not 0 < int(digits) <= MAX_NUMBER:
        raise ValueError(token)
    return int(digits)


CommandFinder = Callable[[str], Command | None]
# a bare 12 is a notice or a report; a form is always typed with its F
_CODE_PREFIX = {Kind.NOTICE: "T", Kind.REPORT: "R", Kind.FORM: "F"}


def _no_commands(name: str) -> Command | None:
    return None


def _convert(
    command: Command,
    param: Param,
    token: str,
    find_unit: UnitResolver,
    find_command: CommandFinder = _no_commands,
) -> Any:
    """The token as the parameter's type; ValueError when it is not one."""
    if len(token) > MAX_TOKEN and param.kind is not Kind.TEXT:
        raise ValueError(token)  # no unit, name, phone or code is this long: look no further
    if param.kind is Kind.NUMBER:
        return number(token)
    if param.kind is Kind.PHONE:
        if not _PHONE.match(token):
            raise ValueError(token)
        return token
    if param.kind is Kind.CHOICE:
        return param.choose(token)
    if param.kind is Kind.COMMAND:
        found = find_command(token)
        if found is None:
            raise ValueError(token)
        return found
    if param.kind is Kind.UNIT:
        return find_unit(command, param, token)
    if param.kind in _CODE_PREFIX:
        code = parse_code(token.rstrip(_TRAILING), _CODE_PREFIX[param.kind])
        if not code or (param.kind is Kind.FORM and not token[:1].isalpha()):
            raise ValueError(token)
        return code
    return token


def bind(
    command: Command,
    rest: str,
    find_unit: UnitResolver,
    *,
    find_command: CommandFinder = _no_commands,
) -> dict[str, Any]:
    """Typed arguments from the text after the command name.

    Optional parameters are skipped when a token does not fit them but fits a later one
    (``#汇总 媒体`` names no unit). ``find_unit`` resolves a unit or raises ``UsageError``.
    """
    args: dict[str, Any] = {p.key: None for p in command.params}
    remaining = rest.strip()
    index = 0
    while remaining:
        if index >= len(command.params):
            raise UsageError(command, "extra", value=remaining)
        param = command.params[index]
        if param.kind is Kind.TEXT and (param.required or index == len(command.params) - 1):
            args[param.key] = remaining
            return args
        token, after = _next_token(remaining)
        try:
            args[param.key] = _convert(command, param, token, find_unit, find_command)
        except (ValueError, UsageError) as exc:
            later = [
                p
                for p in command.params[index + 1 :]
                if _fits(command, p, token, find_unit, find_command)
            ]
            # an optional form id (F3) is never what a mistyped word meant: the word is
            # blamed on the parameter after it
            if not param.required and (later or param.kind is Kind.FORM):
                index += 1
                continue
            if isinstance(exc, UsageError):
                raise
            raise UsageError(command, "bad_value", param=param, value=token) from None
        remaining = after
        index += 1
    for param in command.params:
        if param.required and args[param.key] is None:
            raise UsageError(command, "missing", param=param)
    return args


def _fits(
    command: Command,
    param: Param,
    token: str,
    find_unit: UnitResolver,
    find_command: CommandFinder,
) -> bool:
    try:
        _convert(command, param, token, find_unit, find_command)
    except (ValueError, UsageError):
        return False
    return True
