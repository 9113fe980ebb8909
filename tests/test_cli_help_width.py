"""Help on an 80-column terminal (issue 13): every page fits, nothing is cut with "…", and
Chinese lines break between characters, never before a closing mark such as "，" or "）".

The pages are enumerated from the Typer app: the root, each command group and each command."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer.main
from rich.cells import cell_len
from typer import _click
from typer.testing import CliRunner

from bot.cli import app

WIDTH = 80
BOX = re.compile(r"[│╭╮╰╯─\s]")
CLOSING = "，。、；：？！）」』》”"


def _pages(
    command: _click.Command, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], _click.Command]]:
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _pages(sub, (*path, name))


PAGES = dict(_pages(typer.main.get_command(app), ()))


def _texts(command: _click.Command) -> list[str]:
    """What a help page must show whole: each listed command's and each parameter's help."""
    texts = [p.help for p in command.params if getattr(p, "help", None)]
    for sub in (getattr(command, "commands", None) or {}).values():
        texts.append(sub.help or "")
    return [t.split("\n\n")[0] for t in texts if t and "显示本帮助" not in t]


def help_page(path: tuple[str, ...], width: int = WIDTH) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_page_is_found() -> None:
    assert {(), ("import",), ("log",), ("log", "verify"), ("media",)} <= set(PAGES)


@pytest.mark.parametrize("path", sorted(PAGES), ids=lambda p: " ".join(p) or "root")
def test_help_fits_80_columns_uncut(path: tuple[str, ...]) -> None:
    out = help_page(path)
    wide = [line for line in out.splitlines() if cell_len(line) > WIDTH]
    assert not wide, "\n".join(wide)
    assert "…" not in out, out
    flat = BOX.sub("", out)
    for text in _texts(PAGES[path]):
        assert BOX.sub("", text) in flat, f"cut: {text!r} in\n{out}"


@pytest.mark.parametrize("path", sorted(PAGES), ids=lambda p: " ".join(p) or "root")
def test_no_line_starts_with_a_closing_mark(path: tuple[str, ...]) -> None:
    out = help_page(path)
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("  ") if c.strip()]
        starts = [c for c in cells if c[0] in CLOSING]
        assert not starts, f"{line!r} in\n{out}"
