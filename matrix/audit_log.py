"""The append-only log of admin actions: who did what, where, with what detail.

Writes go through ``record`` so every entry has the same shape; the database refuses updates
and deletes of these rows (see the initial migration).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlmodel import Session

from matrix.models import AuditEntry, utcnow
from matrix.tables import table_of


def record(
    db: Connection | Session, actor: str, action: str, unit_code: str | None = None, **detail: Any
) -> None:
    """Append one entry inside the caller's transaction, so it commits or rolls back with the work."""
    row = {
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "unit_code": unit_code,
        "detail": json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True),
    }
    db.execute(insert(table_of(AuditEntry)), [row])


def entries(
    db: Connection | Session, *, action: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    """The newest entries first."""
    table = table_of(AuditEntry)
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(table.c.action == action)
    return [AuditEntry(**row._mapping) for row in db.execute(query)]
