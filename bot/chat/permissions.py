"""The one permission choke point: who is asking, and may they run this command on this unit?

Identity is the stable contact id, never a display name: ``matrix.provisioning.binding`` says which roster
person the id is (an active binding made by 微信号, by phone or by an office; an id its person
has since replaced, or one an office revoked, is nobody), which gives the person's roles and
units.
A person is an *office* of a unit when they hold there a role the blueprint makes admin of the
groups that unit's level leads (``office_staff@self``). An office acts on its own subtree only
(``UnitTree.is_within``). ``#帮助`` lists commands through the same ``allows``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from bot.chat.commands import Command, Who
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.provisioning.binding import lookup
from matrix.relay.people import office_roles
from matrix.tables import PERSON, POSITION, UNIT
from matrix.tree import UnitTree


@dataclass(frozen=True)
class Asker:
    """Whoever sent a message, as far as the roster knows them."""

    contact_id: str
    display_name: str = ""
    person_id: int | None = None
    person_name: str = ""
    positions: tuple[tuple[str, str], ...] = ()  # (unit code, role key)
    office_units: tuple[str, ...] = ()  # highest first

    @property
    def bound(self) -> bool:
        return self.person_id is not None

    @property
    def name(self) -> str:
        """The roster name when bound; otherwise the WeChat name, for display only."""
        return self.person_name or self.display_name or self.contact_id

    @property
    def home_unit(self) -> str | None:
        """The highest unit this person is an office of, or their first unit."""
        if self.office_units:
            return self.office_units[0]
        return self.positions[0][0] if self.positions else None


class Denied(MatrixError):
    """Not allowed. ``reason``: stranger (not on the roster), not_office, outside (the unit is
    not in any subtree the asker is an office of)."""

    def __init__(self, command: Command, reason: str, unit_code: str | None = None) -> None:
        super().__init__(f"{command.name}: {reason} {unit_code or ''}".strip())
        self.command = command
        self.reason = reason
        self.unit_code = unit_code


class Permissions:
    """Resolves askers and decides, for the blueprint and tree it was built with."""

    def __init__(self, bp: Blueprint, tree: UnitTree) -> None:
        self.tree = tree
        self.office_roles = office_roles(bp)
        self.depth = {key: i for i, key in enumerate(bp.level_keys)}

    def asker(self, conn: Connection, contact_id: str, display_name: str = "") -> Asker:
        """The roster person bound to ``contact_id`` (removed persons and units do not count)."""
        person_id = lookup(conn, contact_id)
        if person_id is None:
            return Asker(contact_id, display_name)
        query = (
            select(PERSON.c.id, PERSON.c.name, POSITION.c.unit_code, POSITION.c.role, UNIT.c.level)
            .select_from(PERSON.join(POSITION, POSITION.c.person_id == PERSON.c.id).join(UNIT))
            .where(
                PERSON.c.id == person_id,
                PERSON.c.removed_at.is_(None),
                UNIT.c.removed_at.is_(None),
            )
            .order_by(UNIT.c.depth, POSITION.c.unit_code, POSITION.c.role)
        )
        rows = conn.execute(query).all()
        if not rows:
            return Asker(contact_id, display_name)
        offices = [
            r.unit_code for r in rows if r.role in self.office_roles.get(r.level, frozenset())
        ]
        return Asker(
            contact_id,
            display_name,
            rows[0].id,
            rows[0].name,
            tuple((r.unit_code, r.role) for r in rows),
            tuple(dict.fromkeys(offices)),
        )

    def covers(self, asker: Asker, unit_code: str) -> bool:
        """Whether ``unit_code`` lies in the subtree of a unit the asker is an office of."""
        if unit_code not in self.tree:
            return False
        return any(self.tree.is_within(unit_code, office) for office in asker.office_units)

    def check(self, asker: Asker, command: Command, unit_code: str | None = None) -> None:
        """Raise ``Denied`` unless the asker may run ``command`` on ``unit_code`` (None: the
        command names no unit and is not run in a matrix group)."""
        if command.who is Who.ANYONE:
            return
        if not asker.bound:
            raise Denied(command, "stranger")
        if command.who is Who.MEMBER:
            return
        if not asker.office_units:
            raise Denied(command, "not_office")
        if unit_code is not None and not self.covers(asker, unit_code):
            raise Denied(command, "outside", unit_code)

    def allows(self, asker: Asker, command: Command, unit_code: str | None = None) -> bool:
        """``check`` as a yes/no, for #帮助."""
        try:
            self.check(asker, command, unit_code)
        except Denied:
            return False
        return True
