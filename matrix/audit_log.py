"""The append-only log of admin actions: who did what, where, with what detail.

Writes go through ``record`` so every entry has the same shape and joins the hash chain
(``matrix.audit_chain``); the database refuses updates, deletes and replacements of these rows
(migrations 0001 and 0006). Text people typed is never stored unbounded: a string in the detail
longer than ``TEXT_LIMIT`` characters is kept as its first characters, its length and its hash
(``bounded``), so a flood of huge refused messages cannot grow the log that nobody may clean.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select
from sqlmodel import Session

from matrix.audit_chain import append
from matrix.models import AuditEntry
from matrix.tables import AUDIT_ENTRY, UNIT
from matrix.tree import within_path

TEXT_LIMIT = 200  # characters of a string kept in an entry; the rest is its length and hash


def record(
    db: Connection | Session, actor: str, action: str, unit_code: str | None = None, **detail: Any
) -> None:
    """Append one entry inside the caller's transaction, so it commits or rolls back with the work."""
    text = json.dumps(bounded(detail), ensure_ascii=False, default=str, sort_keys=True)
    append(db, actor, action, unit_code, text)


def bounded(value: Any) -> Any:
    """``value`` with every string longer than ``TEXT_LIMIT`` replaced by a summary of it.

    >>> bounded({"n": 3, "text": "好" * 201})["text"]["chars"]
    201
    >>> bounded(["short"])
    ['short']
    """
    if isinstance(value, str):
        if len(value) <= TEXT_LIMIT:
            return value
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return {"excerpt": value[:TEXT_LIMIT], "chars": len(value), "sha256": digest}
    if isinstance(value, dict):
        return {str(k): bounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [bounded(v) for v in value]
    return value


def entries(
    db: Connection | Session, *, action: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AUDIT_ENTRY).order_by(AUDIT_ENTRY.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AUDIT_ENTRY.c.action == action)
    return [AuditEntry(**row._mapping) for row in db.execute(query)]


@dataclass(frozen=True)
class Page:
    """The newest entries that match a search, and how many match in all."""

    entries: list[AuditEntry]
    total: int


def search(
    db: Connection,
    *,
    unit_code: str | None = None,
    since: datetime | None = None,
    actor: str | None = None,
    limit: int = 20,
) -> Page:
    """The newest ``limit`` entries about ``unit_code`` and the units under it (all entries
    when None), at or after ``since``, by ``actor``; newest first."""
    conditions: list[ColumnElement[bool]] = []
    if unit_code is not None:
        prefix = db.execute(select(UNIT.c.path).where(UNIT.c.code == unit_code)).scalar_one()
        codes = select(UNIT.c.code).where(within_path(UNIT.c.path, prefix, db.dialect.name))
        conditions.append(AUDIT_ENTRY.c.unit_code.in_(codes))
    if since is not None:
        conditions.append(AUDIT_ENTRY.c.at >= since)
    if actor is not None:
        conditions.append(AUDIT_ENTRY.c.actor == actor)
    query = select(AUDIT_ENTRY).where(*conditions).order_by(AUDIT_ENTRY.c.id.desc()).limit(limit)
    total = db.execute(
        select(func.count()).select_from(AUDIT_ENTRY).where(*conditions)
    ).scalar_one()
    return Page([AuditEntry(**row._mapping) for row in db.execute(query)], int(total))
