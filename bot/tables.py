"""The Core tables behind the models, for the tuple queries the chat layer runs (no ORM objects
per row: a national roster is hundreds of thousands of rows)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from matrix.models import Group, Membership, Person, Position, Unit


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


PERSON = _table(Person)
POSITION = _table(Position)
UNIT = _table(Unit)
GROUP = _table(Group)
MEMBERSHIP = _table(Membership)
