"""Commands as data: one table drives parsing, permission checks and #帮助.

Each ``Command`` names itself in Chinese and English, lists typed parameters, says who may run
it, and carries a one-line summary and an example. ``parse`` finds the command in a message and
``bind`` turns the rest into typed arguments, raising ``UsageError`` with what was wrong.

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

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bot.render.summary import FORMATS, TABLES
from matrix.authority import Who
from matrix.blueprint import normalize_label
from matrix.errors import MatrixError
from matrix.media import MEDIA_KINDS, NONE_WORDS, find_kind
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


@dataclass(frozen=True)
class Command:
    """One chat command. ``bare`` commands may also be typed without the leading #."""

    key: str
    name: str
    alias: str
    params: tuple[Param, ...]
    who: Who
    summary: str
    example: str
    bare: bool = False
    audited: bool = field(default=False)  # recorded even when not an office command

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


_UNIT = Param("unit", "单位", Kind.UNIT, required=False)
# The 表名 and 格式 of #汇总 as offered in chat, and the keys bot.render.summary knows them by;
# every alias it accepts (附件2, 表格, excel …) is accepted here too.
SUMMARY_TABLES = {"建群": "build", "媒体": "media", "通知": "notice", "核查": "audit"}
SUMMARY_FORMATS = {"文本": "text", "xlsx": "xlsx", "csv": "csv", "md": "md", "html": "html"}
_MEDIA = ("网站", "网页", "公众号", "视频号", "抖音", "快手")
# "#登记 无 公众号" records that there is none: 无 stands where the 类型 goes
_NONE = "无"


def _summary_choice(
    key: str, label: str, choices: dict[str, str], aliases: dict[str, tuple[str, ...]]
) -> Param:
    """An optional choice of #汇总 offering ``choices``, accepting each key's ``aliases``."""
    synonyms = tuple((alias, choice) for choice, k in choices.items() for alias in aliases[k])
    return Param(key, label, Kind.CHOICE, False, tuple(choices), synonyms)


def _media_synonyms() -> tuple[tuple[str, str], ...]:
    by_kind = {find_kind(choice): choice for choice in _MEDIA}
    pairs = [
        (name, by_kind[kind])
        for kind in MEDIA_KINDS
        for name in (kind.key, kind.label, *kind.aliases)
    ]
    return (*pairs, *((word, _NONE) for word in sorted(NONE_WORDS)))


TABLE: tuple[Command, ...] = (
    Command(
        "help",
        "帮助",
        "help",
        (Param("command", "命令", Kind.COMMAND, required=False),),
        Who.ANYONE,
        "列出你可以使用的命令，或查看某个命令的用法",
        "#帮助 同意",
    ),
    Command(
        "provision",
        "建群",
        "provision",
        (_UNIT,),
        Who.OFFICE,
        "按蓝图列出本单位（或下属单位）要建的群和要拉的人，发 #确认 后执行",
        "#建群 乙1县",
    ),
    Command(
        "confirm",
        "确认",
        "confirm",
        (),
        Who.OFFICE,
        "执行本群最近一次 #建群 列出的计划",
        "#确认",
    ),
    Command(
        "audit",
        "核查",
        "audit",
        (_UNIT,),
        Who.OFFICE,
        "核查群成员与名册是否一致：陌生人、缺员、群昵称、管理员等",
        "#核查 乙1县",
    ),
    Command(
        "approve",
        "同意",
        "approve",
        (
            Param("number", "编号", Kind.NUMBER),
            Param("person", "人员", Kind.PERSON, required=False),
        ),
        Who.OFFICE,
        "同意待审核的入群人员留在群里；写上手机号或姓名可同时绑定名册人员",
        "#同意 3 13900000001",
    ),
    Command(
        "reject",
        "拒绝",
        "reject",
        (Param("number", "编号", Kind.NUMBER), Param("reason", "理由", Kind.TEXT, required=False)),
        Who.OFFICE,
        "拒绝待审核的入群人员，并将其移出本群",
        "#拒绝 3 非本系统人员",
    ),
    Command(
        "bind",
        "绑定",
        "bind",
        (Param("phone", "手机号", Kind.PHONE),),
        Who.ANYONE,
        "用名册上登记的手机号把你的微信绑定到名册（办公室人员须由办公室核实）",
        "#绑定 13900000001",
    ),
    Command(
        "unbind",
        "解绑",
        "unbind",
        (Param("person", "人员", Kind.PERSON),),
        Who.OFFICE,
        "解除本单位或下属单位人员与微信的绑定，该微信随即失去此人的身份和权限",
        "#解绑 13900000012",
    ),
    Command(
        "notice",
        "通知",
        "notice",
        (Param("text", "正文", Kind.TEXT),),
        Who.OFFICE,
        "把通知当天下发到本单位下属的所有群，并跟踪回执",
        "#通知 请于今天17:00前报送建群情况 截止 17:00",
    ),
    Command(
        "ack",
        "收到",
        "ack",
        (Param("notice", "通知编号", Kind.NOTICE, required=False),),
        Who.MEMBER,
        "回执：确认本单位已收到通知（不写编号即最近一条）",
        "#收到 T12",
        bare=True,
    ),
    Command(
        "status",
        "进度",
        "status",
        (Param("notice", "通知编号", Kind.NOTICE, required=False),),
        Who.OFFICE,
        "查看通知送达和回执进度，列出未回执的单位（不写编号即本群最近一条）",
        "#进度 T12",
    ),
    Command(
        "report",
        "上报",
        "report",
        (Param("text", "内容", Kind.TEXT),),
        Who.MEMBER,
        "把工作情况上报给本群牵头单位的办公室",
        "#上报 我校已完成少先队建队仪式",
    ),
    Command(
        "forward",
        "转报",
        "forward",
        (Param("report", "上报编号", Kind.REPORT),),
        Who.OFFICE,
        "把本单位收到的上报再转给上一级单位办公室",
        "#转报 R5",
    ),
    Command(
        "summary",
        "汇总",
        "summary",
        (
            _UNIT,
            _summary_choice("table", "表名", SUMMARY_TABLES, TABLES),
            _summary_choice("format", "格式", SUMMARY_FORMATS, FORMATS),
        ),
        Who.OFFICE,
        "生成本单位及下属单位的建群情况汇总表（附件2）、通知回执情况表等",
        "#汇总 甲市 建群 xlsx",
    ),
    Command(
        "register",
        "登记",
        "register",
        (
            _UNIT,
            Param("platform", "类型", Kind.CHOICE, choices=_MEDIA, synonyms=_media_synonyms()),
            Param("account", "名称或网址", Kind.TEXT),
        ),
        Who.OFFICE,
        "登记本单位（市、县两级）的网站、公众号、视频号、抖音、快手；没有就发 #登记 无 公众号",
        "#登记 公众号 乙1县少先队",
    ),
    Command(
        "log",
        "日志",
        "log",
        (_UNIT,),
        Who.OFFICE,
        "查看本单位及下属单位最近的审计日志：谁在何时做了什么",
        "#日志 乙1县",
    ),
)
COMMANDS: dict[str, Command] = {c.key: c for c in TABLE}
_BY_NAME: dict[str, Command] = {n.casefold(): c for c in TABLE for n in (c.name, c.alias)}
# longest first, so a name that starts another name never shadows it
_NAMES = sorted(_BY_NAME, key=len, reverse=True)
_SPACE = re.compile(r"\s+")
_PHONE = re.compile(r"^1\d{10}$")
_TRAILING = "!！。.,，~～"
_BARE = [(name, c) for name, c in _BY_NAME.items() if c.bare and not name.isascii()]


@dataclass(frozen=True)
class Invocation:
    """A message recognised as a command: which one, and the text after its name."""

    command: Command | None  # None: '#' followed by a name no command has
    name: str
    rest: str
    bare: bool = False  # typed without '#' (收到): answered only when it does something


def lookup(name: str) -> Command | None:
    """The command called ``name`` (Chinese or English, any case), or None."""
    return _BY_NAME.get(name.strip().lstrip("#＃").casefold())


def parse(text: str) -> Invocation | None:
    """Recognise a command; None for ordinary chat. ``#`` and ``＃`` both start a command;
    bare commands (收到) are recognised without one."""
    text = text.strip()
    if text[:1] in ("#", "＃"):
        body = text[1:].lstrip()
        if not body:
            return None
        folded = body.casefold()
        for name in _NAMES:
            if folded.startswith(name):
                after = body[len(name) :]
                # an English alias must end at a word boundary (#helpme is not #help)
                if name.isascii() and after[:1].isalnum():
                    continue
                return Invocation(_BY_NAME[name], name, after.strip())
        word, rest = _next_token(body)
        return Invocation(None, word, rest)
    head, rest = _next_token(text)
    command = _BY_NAME.get(head.rstrip(_TRAILING).casefold())
    if command is not None and command.bare:
        return Invocation(command, head, rest, bare=True)
    for name, command in _BARE:  # the name run together with an id: 收到T12
        after = text[len(name) :]
        if text.casefold().startswith(name) and after[:1].isascii() and after[:1].isalnum():
            return Invocation(command, name, after, bare=True)
    return None


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


def _convert(command: Command, param: Param, token: str, find_unit: UnitResolver) -> Any:
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
        found = lookup(token)
        if found is None:
            raise ValueError(token)
        return found
    if param.kind is Kind.UNIT:
        return find_unit(command, param, token)
    if param.kind in (Kind.NOTICE, Kind.REPORT):
        code = parse_code(token.rstrip(_TRAILING), "T" if param.kind is Kind.NOTICE else "R")
        if not code:
            raise ValueError(token)
        return code
    return token


def bind(command: Command, rest: str, find_unit: UnitResolver) -> dict[str, Any]:
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
            args[param.key] = _convert(command, param, token, find_unit)
        except (ValueError, UsageError) as exc:
            later = [p for p in command.params[index + 1 :] if _fits(command, p, token, find_unit)]
            if not param.required and later:
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


def _fits(command: Command, param: Param, token: str, find_unit: UnitResolver) -> bool:
    try:
        _convert(command, param, token, find_unit)
    except (ValueError, UsageError):
        return False
    return True
