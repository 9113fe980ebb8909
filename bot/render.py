"""Every text a person reads is a jinja2 template in ``templates/``; this is the one place
that loads them."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _number(value: int | float) -> str:
    """12345 → '12,345'; a whole float reads as a whole number (24.0 hours → '24')."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}"


def _percent(value: float | None) -> str:
    """0.6667 → '66.7%', 1.0 → '100%', None (nothing expected) → '—'."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}".removesuffix(".0") + "%"


def chinese_date(value: date) -> str:
    """2026-05-01 → 2026年5月1日, as forms write dates."""
    return f"{value.year}年{value.month}月{value.day}日"


def _csv_cell(value: Any) -> str:
    """One CSV field: quoted when needed; text that Excel would run as a formula is defused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)
    if value[:1] in ("=", "+", "-", "@"):
        value = "'" + value
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _markdown_cell(value: Any) -> str:
    """Text for a Markdown table cell: a | or a line break would end the cell."""
    return " ".join(str(value).split()).replace("|", "\\|")


@cache
def environment() -> Environment:
    # jinja2 loads with the first text rendered, not with the command line (`--help` is quick)
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,  # a misspelt field fails the test instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )
    env.filters["num"] = _number
    env.filters["pct"] = _percent
    env.filters["cndate"] = chinese_date
    env.filters["csv"] = _csv_cell
    env.filters["md"] = _markdown_cell
    return env


def render(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` with ``context``."""
    return environment().get_template(name).render(**context)
