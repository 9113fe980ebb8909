"""Whose subtree a summary covers: a requester sees their own unit and everything under it.

Units are found by their materialized path ("/100000/230000/230100/"), so "under" is a prefix
test in SQL and no tree has to be loaded to answer it.

>>> str(under(UNIT.c.path, "/P/C1/"))
'substr(unit.path, :substr_1, :substr_2) = :substr_3'
>>> str(under(UNIT.c.path, "/P/"))
'true'
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, func, select, true

from matrix.errors import MatrixError, TreeError, UnknownUnit
from matrix.tables import UNIT


@dataclass(frozen=True)
class UnitRef:
    """One unit as a summary names it."""

    code: str
    name: str
    level: str
    path: str

    def contains(self, other: UnitRef) -> bool:
        """Whether ``other`` is this unit or lies under it."""
        return other.path.startswith(self.path)


class OutOfScope(MatrixError):
    """A requester asked about a unit outside their own subtree."""

    def __init__(self, requester: UnitRef, target: UnitRef) -> None:
        super().__init__(
            f"{requester.name}只能查看本单位及下级单位的汇总，{target.name}（{target.code}）不在其下",
            fix=f"请指定{requester.name}下属的单位，或请共同的上级单位查询",
        )
        self.requester = requester
        self.target = target


def under(path: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """``path`` lies in the subtree whose path is ``prefix``.

    A plain ``substr`` comparison: exact and case-sensitive on every backend, unlike LIKE (which
    SQLite folds case in and which treats ``_`` in codes as a wildcard). Callers narrow by level
    first, so no index on the path itself is needed.
    """
    if prefix.count("/") == 2:
        # the root's subtree is every unit: no filter at all, which also keeps PostgreSQL's
        # row estimates (and so its plan) right for the national table
        return true()
    return func.substr(path, 1, len(prefix)) == prefix


def unit_ref(conn: Connection, code: str) -> UnitRef:
    """The current unit with this code; ``UnknownUnit`` if there is none (or it was removed)."""
    row = conn.execute(
        select(UNIT.c.code, UNIT.c.name, UNIT.c.level, UNIT.c.path).where(
            UNIT.c.code == code.strip(), UNIT.c.removed_at.is_(None)
        )
    ).first()
    if row is None:
        raise UnknownUnit(code)
    return UnitRef(*row)


def top_unit(conn: Connection) -> UnitRef:
    """The root of the tree: whom the CLI operator acts as unless told otherwise."""
    row = conn.execute(
        select(UNIT.c.code, UNIT.c.name, UNIT.c.level, UNIT.c.path)
        .where(UNIT.c.parent_code.is_(None), UNIT.c.removed_at.is_(None))
        .limit(1)
    ).first()
    if row is None:
        raise TreeError("名册中还没有任何单位", fix="请先用 `qunmatrix import` 导入名册")
    return UnitRef(*row)


class AmbiguousUnit(MatrixError):
    """A unit name that several units under the requester share."""


def resolve_target(conn: Connection, requester: str, target: str | None = None) -> UnitRef:
    """The unit a summary is about: ``target`` (a code, or a name under the requester) if given,
    else the requester's own unit.

    A higher office may name any unit under it; anything else raises ``OutOfScope``.
    """
    own = unit_ref(conn, requester)
    text = (target or "").strip()
    if text in ("", own.code, own.name):
        return own
    try:
        wanted = unit_ref(conn, text)
    except UnknownUnit:
        wanted = _by_name(conn, text, own)
    if not own.contains(wanted):
        raise OutOfScope(own, wanted)
    return wanted


def _by_name(conn: Connection, name: str, within: UnitRef) -> UnitRef:
    # people in chat write 乙1县 rather than a code; names repeat across the country, so only
    # the requester's own subtree is searched
    rows = conn.execute(
        select(UNIT.c.code, UNIT.c.name, UNIT.c.level, UNIT.c.path)
        .where(UNIT.c.name == name, UNIT.c.removed_at.is_(None), under(UNIT.c.path, within.path))
        .order_by(UNIT.c.path)
        .limit(6)
    ).all()
    if not rows:
        raise UnknownUnit(name)
    if len(rows) > 1:
        codes = "、".join(r[0] for r in rows[:5])
        raise AmbiguousUnit(f"{within.name}下有多个单位叫 {name}", fix=f"请改用单位代码：{codes}")
    return UnitRef(*rows[0])
