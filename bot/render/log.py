"""The audit log as people read it (``qunmatrix log show``, ``#日志``): one short line per
entry, its action named in Chinese (``templates/log/actions.toml``), its time in the configured
time zone, its detail cut to a few words. The templates lay the lines out."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot.render.templates import TEMPLATES
from matrix.audit_log import Page
from matrix.provisioning.binding import names_of_contacts
from matrix.tree import unit_names


@cache
def action_labels() -> dict[str, str]:
    """action key → its Chinese name."""
    with (TEMPLATES / "log" / "actions.toml").open("rb") as f:
        return {str(k): str(v) for k, v in tomllib.load(f).items()}


@dataclass(frozen=True)
class LogLine:
    """One entry, ready to print."""

    id: int
    at: str  # local time, "2026-11-24 09:15"
    unit: str  # the unit's name, or "" for an entry about no unit
    unit_code: str
    actor: str  # the contact id (or cli:user)
    actor_name: str  # the roster name bound to it, or ""
    action: str  # the Chinese name of the action
    detail: str  # key=value pairs, cut to ``width``


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis marking the cut.

    >>> clip("甲乙丙丁", 3), clip("甲乙", 3)
    ('甲乙…', '甲乙')
    """
    return text if len(text) <= width else text[: width - 1] + "…"


def _value(value: Any) -> str:
    if isinstance(value, dict) and {"excerpt", "chars"} <= value.keys():
        return str(value["excerpt"])  # a long text as the entry keeps it
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


# where a command came from, as the platform knows it: no help to a person reading the log
_PLUMBING = frozenset({"room", "group_id"})


def detail_text(detail: str, width: int) -> str:
    """The detail JSON as ``key=value`` pairs, one line, at most ``width`` characters.

    >>> detail_text('{"args": {"unit": "K1"}, "room": "r9", "text": "请于今天报送"}', 40)
    'unit=K1 text=请于今天报送'
    """
    try:
        data = json.loads(detail)
    except ValueError:
        return clip(" ".join(detail.split()), width)
    if not isinstance(data, dict):
        return clip(_value(data), width)
    args = data.pop("args", None)
    if isinstance(args, dict):  # a command's own arguments first: what the person asked for
        data = {**args, **data}
    pairs = (
        f"{k}={_value(v)}"
        for k, v in data.items()
        if k not in _PLUMBING and v not in (None, "", [], {})
    )
    return clip(" ".join(" ".join(pairs).split()), width)


def log_lines(conn: Connection, page: Page, timezone: str, width: int) -> list[LogLine]:
    """The page's entries as lines, newest first; each field bounded."""
    units = unit_names(conn, {e.unit_code for e in page.entries})
    people = names_of_contacts(conn, {e.actor for e in page.entries})
    zone = ZoneInfo(timezone)
    labels = action_labels()
    return [
        LogLine(
            id=e.id or 0,
            at=f"{e.at.astimezone(zone):%Y-%m-%d %H:%M}",
            unit=clip(units.get(e.unit_code or "", ""), 16),
            unit_code=e.unit_code or "",
            actor=clip(e.actor, 32),
            actor_name=clip(people.get(e.actor, ""), 16),
            action=labels.get(e.action, clip(e.action, 32)),
            detail=detail_text(e.detail, width),
        )
        for e in page.entries
    ]
