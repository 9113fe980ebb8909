"""The Core tables behind the models, for the tuple queries the chat layer runs (no ORM objects
per row: a national roster is hundreds of thousands of rows)."""

from __future__ import annotations

from matrix.models import Group, Membership, Person, Position, Unit
from matrix.tables import table_of

PERSON = table_of(Person)
POSITION = table_of(Position)
UNIT = table_of(Unit)
GROUP = table_of(Group)
MEMBERSHIP = table_of(Membership)
