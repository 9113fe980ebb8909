"""Who is asking, and may they do this on this unit: authority decided once, for the chat layer,
the relay, the summaries and any later console alike.

Identity is the stable contact id, never a display name: ``matrix.provisioning.binding`` says
which roster person the id is (an active binding made by 微信号, by phone or by an office; an id
its person has since replaced, or one an office revoked, is nobody), which gives the person's
roles and units (``resolve_asker``).

A person is an *office* of a unit when they hold there a role the blueprint makes admin of the
groups that unit's level leads (``office_staff@self``, ``office_roles``). The one policy
(``refusal`` / ``check``): anyone may do an ``ANYONE`` action; a ``MEMBER`` action needs a
roster person (else ``stranger``); an ``OFFICE`` action needs an office (``not_office``) whose
subtree holds the unit acted on (``outside``), or, ``exact``, an office of that unit itself.
Refusals carry that one reason code (``Denied.reason``); the chat layer words them in
``templates/replies/denied.j2``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Connection, select

from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.provisioning.binding import lookup
from matrix.tables import PERSON, POSITION, UNIT

STRANGER, NOT_OFFICE, OUTSIDE = "stranger", "not_office", "outside"


class Who(Enum):
    """Who may do an action (run a command): the policy below is the one place that checks it."""

    ANYONE = "anyone"  # anyone in the group, strangers too
    MEMBER = "member"  # a person bound to the roster
    OFFICE = "office"  # an office (group admin role) whose subtree holds the target unit


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
    not in any subtree the asker is an office of). ``action`` names what was refused (a
    command's Chinese name); ``message`` and ``fix`` default to a plain wording for logs."""

    def __init__(
        self,
        action: str,
        reason: str,
        unit_code: str | None = None,
        *,
        message: str = "",
        fix: str = "",
    ) -> None:
        super().__init__(message or f"{action}: {reason} {unit_code or ''}".strip(), fix=fix)
        self.action = action
        self.reason = reason
        self.unit_code = unit_code


def office_roles(bp: Blueprint) -> dict[str, frozenset[str]]:
    """Per level, the roles that administer the groups that level leads (its office).

    >>> from matrix.blueprint import load_blueprint
    >>> office_roles(load_blueprint("young_pioneers"))["county"]
    frozenset({'office_staff'})
    """
    roles: dict[str, set[str]] = {}
    for spec in bp.groups:
        for sel in spec.admins:
            if sel.scope == "self":
                roles.setdefault(spec.led_by, set()).add(sel.role)
    return {level: frozenset(r) for level, r in roles.items()}


def resolve_asker(
    conn: Connection, bp: Blueprint, contact_id: str, display_name: str = ""
) -> Asker:
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
    roles = office_roles(bp)
    offices = [r.unit_code for r in rows if r.role in roles.get(r.level, frozenset())]
    return Asker(
        contact_id,
        display_name,
        rows[0].id,
        rows[0].name,
        tuple((r.unit_code, r.role) for r in rows),
        tuple(dict.fromkeys(offices)),
    )


Within = Callable[[str, str], bool]
"""``within(unit, office)``: whether ``unit`` lies in ``office``'s subtree (the unit tree's
``is_within``, or a path comparison where no tree is loaded)."""


def refusal(
    asker: Asker,
    who: Who,
    unit_code: str | None = None,
    *,
    within: Within | None = None,
    exact: bool = False,
) -> str | None:
    """The one policy: why ``asker`` may not do a ``who`` action on ``unit_code`` (a reason
    code), or None when they may. ``unit_code`` None: the action names no unit. ``exact``:
    only an office of that very unit (a notice goes out from the group its unit leads)."""
    if who is Who.ANYONE:
        return None
    if not asker.bound:
        return STRANGER
    if who is Who.MEMBER:
        return None
    if not asker.office_units:
        return NOT_OFFICE
    if unit_code is None:
        return None
    if exact:
        return None if unit_code in asker.office_units else OUTSIDE
    if within is None or not any(within(unit_code, office) for office in asker.office_units):
        return OUTSIDE
    return None


class Authority:
    """The policy over one blueprint and unit tree: resolves askers and decides."""

    def __init__(self, bp: Blueprint, within: Within, knows: Callable[[str], bool]) -> None:
        self.blueprint = bp
        self._within = within
        self._knows = knows  # whether a unit code is in the tree

    def asker(self, conn: Connection, contact_id: str, display_name: str = "") -> Asker:
        return resolve_asker(conn, self.blueprint, contact_id, display_name)

    def covers(self, asker: Asker, unit_code: str) -> bool:
        """Whether ``unit_code`` lies in the subtree of a unit the asker is an office of."""
        if not self._knows(unit_code):
            return False
        return any(self._within(unit_code, office) for office in asker.office_units)

    def within(self, unit_code: str, office: str) -> bool:
        return self._knows(unit_code) and self._within(unit_code, office)

    def check(self, asker: Asker, who: Who, action: str, unit_code: str | None = None) -> None:
        """Raise ``Denied`` unless the asker may do ``action`` (a ``who`` action) on
        ``unit_code`` (None: the action names no unit and is not done in a matrix group)."""
        reason = refusal(asker, who, unit_code, within=self.within)
        if reason is not None:
            raise Denied(action, reason, unit_code if reason == OUTSIDE else None)

    def allows(self, asker: Asker, who: Who, unit_code: str | None = None) -> bool:
        """``check`` as a yes/no, for #帮助 and the command suggestions."""
        return refusal(asker, who, unit_code, within=self.within) is None
