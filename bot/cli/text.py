"""The command line's own words in Chinese: usage lines, help panels, and usage errors
(missing argument, unknown command or option, invalid value). Typer vendors its click and
hard-codes English there, so the words are replaced at the few places they are produced:
the group and command classes below (usage, help option, errors) and typer's rich help
constants (panel titles, ``[default: …]``). Nothing heavy is imported until help or an
error is actually shown: start-up stays light."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

from typer import _click
from typer._click import exceptions as click_errors
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import Abort

if TYPE_CHECKING:
    import typer

HELP_OPTION_TEXT = "显示本帮助并退出。"

# typer.rich_utils reads these module constants each time it formats help
RICH_HELP_TEXTS = {
    "DEPRECATED_STRING": "（已停用）",
    "DEFAULT_STRING": "[默认：{}]",
    "ENVVAR_STRING": "[环境变量：{}]",
    "REQUIRED_LONG_STRING": "[必填]",
    "ARGUMENTS_PANEL_TITLE": "参数",
    "OPTIONS_PANEL_TITLE": "选项",
    "COMMANDS_PANEL_TITLE": "命令",
    "ERRORS_PANEL_TITLE": "错误",
    "ABORTED_TEXT": "已中止。",
    "RICH_HELP": "运行 [blue]'{command_path} {help_option}'[/] 查看帮助。",
}

_CJK = "\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
_OPENING = "（「『《“‘【〔"
_CLOSING = "，。、；：？！）」』》”’】〕…"
# a "word" where a line may break: a run without spaces or Chinese (a URL, --an-option), or
# one Chinese character; opening marks stay with what follows, closing marks with what precedes
CJK_WORD = re.compile(
    rf"\s*(?:[{_OPENING}]*(?:[^\s{_CJK}{_OPENING}{_CLOSING}]+|[^\s{_OPENING}{_CLOSING}])"
    rf"[{_CLOSING}]*|\S)\s*"
)

_USAGE_WORDS = (("[OPTIONS]", "[选项]"), ("COMMAND", "命令"), ("[ARGS]...", "[参数]..."))

# the value errors typer's parameter types raise (pydantic's words and its own)
_VALUE_REASONS = (
    (re.compile(r"valid integer"), "应为整数"),
    (re.compile(r"valid number|valid float"), "应为数字"),
    (re.compile(r"valid boolean"), "应为 true 或 false"),
    (re.compile(r"valid date"), "应为日期，如 2026-12-01"),
    (re.compile(r"does not exist"), "文件或文件夹不存在"),
    (re.compile(r"is a directory"), "这是文件夹，需要文件"),
    (re.compile(r"is a file"), "这是文件，需要文件夹"),
    (re.compile(r"not readable"), "没有读取权限"),
    (re.compile(r"not writable"), "没有写入权限"),
    (re.compile(r"greater than or equal to (?P<n>[-\d.]+)"), r"应不小于 \g<n>"),
    (re.compile(r"greater than (?P<n>[-\d.]+)"), r"应大于 \g<n>"),
    (re.compile(r"less than or equal to (?P<n>[-\d.]+)"), r"应不大于 \g<n>"),
    (re.compile(r"less than (?P<n>[-\d.]+)"), r"应小于 \g<n>"),
    (re.compile(r"is not one of|Input should be"), "不是可选的值"),
)
_EXTRA_ARGS = re.compile(r"unexpected extra argument\(s\)\s*\((?P<args>.*)\)", re.S)
_NEEDS_VALUE = re.compile(r"Option '(?P<opt>[^']+)' requires (an argument|\d+ arguments)")


class ChineseUsage:
    """Usage lines and the help option in Chinese, for groups and commands alike."""

    def format_usage(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        pieces = " ".join(self.collect_usage_pieces(ctx))  # type: ignore[attr-defined]
        for english, chinese in _USAGE_WORDS:
            pieces = pieces.replace(english, chinese)
        formatter.write_usage(ctx.command_path, pieces, prefix="用法：")

    def get_help_option(self, ctx: _click.Context) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = HELP_OPTION_TEXT
        return option

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        from rich import _wrap
        from typer import rich_utils

        for name, text in RICH_HELP_TEXTS.items():
            setattr(rich_utils, name, text)
        # rich breaks lines at spaces only, and crops a longer run with "…": a Chinese
        # sentence is one such run. While help is drawn, each Chinese character is a word
        # of its own, with the marks that may not start or end a line kept beside it.
        words = _wrap.re_word
        _wrap.re_word = CJK_WORD
        try:
            super().format_help(ctx, formatter)  # type: ignore[misc]
        finally:
            _wrap.re_word = words


class ChineseCommand(ChineseUsage, TyperCommand):
    pass


class ChineseGroup(ChineseUsage, TyperGroup):
    """The root: names unknown commands in Chinese and shows every usage error itself."""

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        try:
            return self._click_resolve_command(ctx, args)
        except click_errors.UsageError as exc:
            if not args or _click.parser._split_opt(args[0])[0]:
                raise  # an unknown option before the command: click's own error says which
            typo = args[0]
            close = get_close_matches(typo, list(self.commands), n=3)
            raise click_errors.UsageError(
                _usage_text("no_command", word=typo, close=close), ctx
            ) from exc

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click_errors.ClickException as exc:
            _show(exc)
            sys.exit(exc.exit_code)
        except Abort:
            print(RICH_HELP_TEXTS["ABORTED_TEXT"], file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def install(app: typer.Typer) -> None:
    """Make every registered command and command group, nested ones too, Chinese."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = ChineseCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            group.typer_instance.info.cls = ChineseGroup
            install(group.typer_instance)


def _usage_text(kind: str, **values: Any) -> str:
    from bot.render.templates import render

    return render("cli/usage_error.txt.j2", kind=kind, **values).strip()


def _show(exc: click_errors.ClickException) -> None:
    ctx = getattr(exc, "ctx", None)
    message = _translate(exc)
    usage = ""
    command = "qunmatrix"
    if ctx is not None:
        usage = ctx.get_usage()
        command = ctx.command_path
    text = _usage_text("show", usage=usage, message=message, command=command)
    print(text, file=sys.stderr)


def _param_name(exc: Any) -> str:
    param = getattr(exc, "param", None)
    hint = getattr(exc, "param_hint", None)
    if hint:
        return hint if isinstance(hint, str) else " / ".join(hint)
    if param is None:
        return ""
    if getattr(param, "param_type_name", "") == "argument":
        return str(param.metavar or param.name)
    return " / ".join(param.opts)


def _translate(exc: click_errors.ClickException) -> str:
    """The Chinese for one usage error; never the English of click or pydantic."""
    message = exc.message or ""
    if re.search(r"[\u4e00-\u9fff]", message):
        return message  # ours already (an unknown command, a callback's own words)
    if isinstance(exc, click_errors.MissingParameter):
        return _usage_text("missing", word=_param_name(exc))
    if isinstance(exc, click_errors.NoSuchOption):
        close = sorted(exc.possibilities or [])[:3]
        return _usage_text("no_option", word=exc.option_name, close=close)
    if isinstance(exc, click_errors.BadParameter):
        found = ((m, zh) for pat, zh in _VALUE_REASONS if (m := pat.search(message)))
        reason = next((m.expand(zh) for m, zh in found), "取值无效")
        return _usage_text("bad_value", word=_param_name(exc), reason=reason)
    if match := _EXTRA_ARGS.search(message):
        return _usage_text("extra", args=match["args"][:80])
    if match := _NEEDS_VALUE.search(message):
        return _usage_text("needs_value", word=match["opt"])
    if "Missing command" in message:
        return _usage_text("missing_command")
    return _usage_text("other")
