"""Every text a person reads is a jinja2 template in ``templates/`` (or an entry of one of its
TOML data files, for the words that Python code places itself: the XLSX forms' cells, a finding
code's name); this is the one place that loads them."""

from __future__ import annotations

import html
import tomllib
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matrix.cells import csv_text

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _number(value: int | float) -> str:
    """12345 → '12,345'; a whole float reads as a whole number (24.0 hours → '24')."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}"


def _percent(value: float | None) -> str:
    """One rounding for every share, so that 94.0% stands next to 93.8% (not "94%"): one
    decimal, except the exact 0% and 100%; None (nothing expected) → '—'.

    >>> [_percent(v) for v in (0.6667, 0.94, 0.938, 1.0, 0.0, 0.9999, None)]
    ['66.7%', '94.0%', '93.8%', '100%', '0%', '99.99%', '—']
    """
    if value is None:
        return "—"
    if value in (0.0, 1.0):
        return f"{value:.0%}"
    text = f"{value * 100:.1f}"
    if text in ("0.0", "100.0"):  # never round a shortfall to 100% or a start to 0%
        text = f"{value * 100:.2f}"
    return text + "%"


def chinese_date(value: date) -> str:
    """2026-05-01 → 2026年5月1日, as forms write dates."""
    return f"{value.year}年{value.month}月{value.day}日"


# the most of anything a person typed (or named themselves) that a reply repeats
QUOTE_LIMIT = 100


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """Input repeated in a reply, at most ``limit`` characters and then how long it was: a
    reply never carries back what a sender pasted into it.

    >>> quote("乙1县"), quote("长" * 300)[-12:]
    ('乙1县', '长长…（共 300 字）')
    """
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}…（共 {len(text):,} 字）"


def clip(value: Any, limit: int = 4 * QUOTE_LIMIT) -> str:
    """Our own text that may carry input (an error's message): cut after ``limit``."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


# a comma or quote, and every character a reader may take for a line break (str.splitlines's)
_CSV_QUOTED = ',"\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'


def csv_bytes(body: str) -> bytes:
    """A rendered CSV as the file: a BOM and CRLF rows, so that Excel on Windows opens the
    Chinese text. Rows are split on LF only: any other line break is inside a quoted field."""
    return ("\ufeff" + "\r\n".join(body.rstrip("\n").split("\n")) + "\r\n").encode("utf-8")


def _csv_cell(value: Any) -> str:
    """One CSV field: quoted when needed; text that Excel would run as a formula is defused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)
    value = csv_text(value)
    if any(c in value for c in _CSV_QUOTED):
        return '"' + value.replace('"', '""') + '"'
    return value


def _markdown_cell(value: Any) -> str:
    """Text for a Markdown line or table cell: a | or a line break would end the cell, HTML
    would be rendered (<script>, <img onerror=…>) and [..](..) would make a link.

    >>> _markdown_cell('<img src=x onerror=alert(1)> [a](b) | c')
    '&lt;img src=x onerror=alert(1)&gt; \\\\[a\\\\](b) \\\\| c'
    """
    text = html.escape(" ".join(str(value).split()), quote=False)
    return text.replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


@cache
def data(name: str) -> dict[str, Any]:
    """``templates/<name>``, a TOML data file, as a dict."""
    with (TEMPLATES / name).open("rb") as f:
        return tomllib.load(f)


def finding_title(code: str) -> str:
    """An audit finding code's short name (#核查, ``qunmatrix audit``); unknown: the code."""
    return str(data("findings/codes.toml")["code"].get(code, {}).get("title", code))


def finding_label(code: str) -> str:
    """An audit finding code's name in the summary tables; unknown: the code."""
    return str(data("findings/codes.toml")["code"].get(code, {}).get("label", code))


def severity_label(severity: str) -> str:
    """严重 / 警告 / 提示, or the engine's own word for a severity we do not know."""
    return str(data("findings/codes.toml")["severity"].get(severity, severity))


LABELS = "summary/labels.toml"


def label(key: str, /, **context: Any) -> Any:
    """An entry of ``templates/summary/labels.toml`` by its dotted key ("build.title"): the
    words of the summary forms that every format shares (the XLSX writer places them cell by
    cell, the text templates call ``label(...)``). A text entry is a jinja2 template rendered
    with ``context``; a list of texts comes back as it is."""
    value: Any = data(LABELS)
    for part in key.split("."):
        value = value[part]
    if isinstance(value, str):
        return _compiled(value).render(**context)
    return value


def macro(template: str, name: str, *args: Any) -> str:
    """Call the macro ``name`` of ``templates/<template>`` from Python: plain text, which the
    caller's format escapes (HTML ``| e``, Markdown ``| md``, CSV ``| csv``) or writes into a cell.
    (Called inside an HTML template, a plain-text macro's output would count as safe markup.)"""
    module: Any = environment().get_template(template).module
    return str.__str__(getattr(module, name)(*args))


def audit_people(line: Any) -> str:
    """The 人员 cell of an audit line (``templates/summary/_audit.j2``)."""
    return macro("summary/_audit.j2", "people", line)


def audit_advice(line: Any) -> str:
    """The 处理建议 cell of an audit line (``templates/summary/_audit.j2``)."""
    return macro("summary/_audit.j2", "advice", line)


@cache
def _compiled(text: str) -> Any:
    return environment().from_string(text)


@cache
def environment() -> Environment:
    # jinja2 loads with the first text rendered, not with the command line (`--help` is quick)
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,  # a misspelt field fails the test instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # HTML exports escape everything they show; chat text and the other formats are
        # plain text, escaped (or not) by their own filters
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    )
    env.filters["num"] = _number
    env.filters["pct"] = _percent
    env.filters["cndate"] = chinese_date
    env.filters["csv"] = _csv_cell
    env.filters["md"] = _markdown_cell
    env.filters["quote"] = quote
    env.filters["clip"] = clip
    env.filters["finding_label"] = finding_label
    env.filters["severity_label"] = severity_label
    env.filters["audit_people"] = audit_people
    env.filters["audit_advice"] = audit_advice
    env.globals["label"] = label
    return env


def render(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` with ``context``."""
    return environment().get_template(name).render(**context)
