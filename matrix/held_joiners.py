"""Joiners held for review (入群审核): someone not on the roster joined a group, and stays held
until an admin approves (optionally binding them to a roster person) or rejects them.

Interim: issue 3's join review owns this decision; these few functions over the ``held_joiner``
table are meant to be folded into it. All of them work inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from matrix.errors import MatrixError
from matrix.models import HeldJoiner, utcnow

_T = HeldJoiner.__table__  # type: ignore[attr-defined]
HELD, APPROVED, REJECTED, LEFT = "held", "approved", "rejected", "left"


@dataclass(frozen=True)
class Held:
    """One held (or decided) joiner. ``id`` is the number admins type: #同意 3."""

    id: int
    group_id: int
    contact_id: str
    name: str
    inviter_id: str | None
    state: str
    held_at: datetime
    person_id: int | None


class NotHeld(MatrixError):
    """The number does not name a joiner waiting in this group."""

    def __init__(self, number: int, waiting: list[Held]) -> None:
        listed = "、".join(f"{h.id}（{h.name}）" for h in waiting) or "无"
        super().__init__(f"本群没有编号为 {number} 的待审核入群人员", fix=f"本群待审核：{listed}")
        self.number = number


def _row(r: object) -> Held:
    m = r._mapping  # type: ignore[attr-defined]
    return Held(
        m["id"],
        m["group_id"],
        m["contact_id"],
        m["name"],
        m["inviter_id"],
        m["state"],
        m["held_at"],
        m["person_id"],
    )


def latest(conn: Connection, group_id: int, contact_id: str) -> Held | None:
    """This contact's newest entry in this group, whatever its state."""
    query = (
        select(_T)
        .where(_T.c.group_id == group_id, _T.c.contact_id == contact_id)
        .order_by(_T.c.id.desc())
        .limit(1)
    )
    found = conn.execute(query).first()
    return None if found is None else _row(found)


def hold(conn: Connection, group_id: int, contact_id: str, name: str, inviter_id: str = "") -> Held:
    """Hold a joiner; joining again while still held keeps the first entry and its number."""
    found = latest(conn, group_id, contact_id)
    if found is not None and found.state == HELD:
        return found
    result = conn.execute(
        insert(_T).values(
            group_id=group_id,
            contact_id=contact_id,
            name=name,
            inviter_id=inviter_id or None,
            state=HELD,
            held_at=utcnow(),
        )
    )
    new_id = result.inserted_primary_key
    assert new_id is not None
    return waiting_one(conn, group_id, int(new_id[0]))


def waiting(conn: Connection, group_id: int) -> list[Held]:
    """Joiners still held in this group, oldest first."""
    query = select(_T).where(_T.c.group_id == group_id, _T.c.state == HELD).order_by(_T.c.id)
    return [_row(r) for r in conn.execute(query)]


def waiting_one(conn: Connection, group_id: int, number: int) -> Held:
    """The held joiner ``number`` of this group, or ``NotHeld`` listing who is waiting."""
    found = conn.execute(select(_T).where(_T.c.id == number, _T.c.group_id == group_id)).first()
    if found is None or found.state != HELD:
        raise NotHeld(number, waiting(conn, group_id))
    return _row(found)


def decide(
    conn: Connection, held: Held, state: str, decided_by: str, person_id: int | None = None
) -> None:
    """Record an admin's decision (approved or rejected) on a held joiner."""
    conn.execute(
        update(_T)
        .where(_T.c.id == held.id, _T.c.state == HELD)
        .values(state=state, decided_by=decided_by, decided_at=utcnow(), person_id=person_id)
    )


def left(conn: Connection, group_id: int, contact_id: str) -> bool:
    """A held joiner left on their own; returns whether one was waiting."""
    result = conn.execute(
        update(_T)
        .where(_T.c.group_id == group_id, _T.c.contact_id == contact_id, _T.c.state == HELD)
        .values(state=LEFT, decided_at=utcnow())
    )
    return bool(result.rowcount)
