"""Who is speaking, where, and on whose behalf: contact ids to roster persons, rooms to groups,
units to their offices and office groups.

Identity is the stable contact id, resolved through ``matrix.provisioning.binding`` (a contact actively bound
by 微信号, phone or an office's decision; a contact id that is itself a roster 微信号 is bound on
first use).
Display names never decide anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, select

from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.platform import Member
from matrix.provisioning.authority import Asker, office_roles
from matrix.provisioning.binding import resolve
from matrix.relay.errors import NotInMatrix
from matrix.roster import clean_phone
from matrix.tables import GROUP, PERSON, POSITION, UNIT
from matrix.tree import within_path


@dataclass(frozen=True)
class PersonRef:
    """A roster person, as the relay needs them."""

    id: int
    name: str


@dataclass(frozen=True)
class UnitRef:
    """A unit, with its place in the tree (``path`` is /a/b/c/)."""

    code: str
    name: str
    level: str
    depth: int
    path: str
    parent_code: str | None

    def contains(self, other: UnitRef) -> bool:
        """Whether ``other`` is this unit or lies under it."""
        return other.path.startswith(self.path)


@dataclass(frozen=True)
class GroupRef:
    """A matrix group (a WeChat room)."""

    id: int
    unit_code: str
    kind: str
    shard: int
    name: str
    room_id: str | None


def person_for_contact(conn: Connection, contact_id: str) -> PersonRef | None:
    """The roster person behind a contact id (removed persons count as strangers), or None."""
    # a contact the person used before is no longer them here: it acts for nobody
    person_id = resolve(conn, [Member(contact_id)], actor="relay", superseded=False).get(contact_id)
    if person_id is None:
        return None
    row = conn.execute(
        select(PERSON.c.id, PERSON.c.name).where(
            PERSON.c.id == person_id, PERSON.c.removed_at.is_(None)
        )
    ).first()
    return None if row is None else PersonRef(row.id, row.name)


def positions(conn: Connection, person_id: int) -> list[tuple[UnitRef, str]]:
    """The person's (unit, role) pairs at current units."""
    rows = conn.execute(
        select(UNIT, POSITION.c.role)
        .join(POSITION, POSITION.c.unit_code == UNIT.c.code)
        .where(POSITION.c.person_id == person_id, UNIT.c.removed_at.is_(None))
        .order_by(UNIT.c.depth, UNIT.c.code, POSITION.c.seq)
    )
    return [(_unit(r), r.role) for r in rows]


def unit(conn: Connection, code: str) -> UnitRef | None:
    """A current unit by code, or None."""
    row = conn.execute(select(UNIT).where(UNIT.c.code == code, UNIT.c.removed_at.is_(None))).first()
    return None if row is None else _unit(row)


def _unit(row: object) -> UnitRef:
    r = row._mapping  # type: ignore[attr-defined]
    return UnitRef(r["code"], r["name"], r["level"], r["depth"], r["path"], r["parent_code"])


def group_for_room(conn: Connection, room_id: str) -> GroupRef:
    """The matrix group of a room; ``NotInMatrix`` if the room is not one."""
    row = conn.execute(select(GROUP).where(GROUP.c.room_id == room_id)).first()
    if row is None:
        raise NotInMatrix()
    return _group(row)


def group(conn: Connection, group_id: int) -> GroupRef:
    """A group by id."""
    return _group(conn.execute(select(GROUP).where(GROUP.c.id == group_id)).one())


def _group(row: object) -> GroupRef:
    r = row._mapping  # type: ignore[attr-defined]
    return GroupRef(r["id"], r["unit_code"], r["kind"], r["shard"], r["name"], r["room_id"])


def offices_held(conn: Connection, bp: Blueprint, person_id: int) -> list[UnitRef]:
    """The units the person is an office of, highest first."""
    roles = office_roles(bp)
    return [u for u, role in positions(conn, person_id) if role in roles.get(u.level, ())]


def relay_asker(conn: Connection, bp: Blueprint, contact_id: str) -> Asker:
    """``contact_id`` as an ``Asker`` of ``matrix.provisioning.authority``, resolved as the relay does
    (binding by 微信号 on first use, a superseded contact being nobody)."""
    person = person_for_contact(conn, contact_id)
    if person is None:
        return Asker(contact_id)
    held = positions(conn, person.id)
    roles = office_roles(bp)
    offices = [u.code for u, role in held if role in roles.get(u.level, ())]
    return Asker(
        contact_id,
        person_id=person.id,
        person_name=person.name,
        positions=tuple((u.code, role) for u, role in held),
        office_units=tuple(dict.fromkeys(offices)),
    )


def child_roles(bp: Blueprint, kind: str) -> list[str]:
    """The roles a group kind takes from the leading unit's children, main selector first: whom
    to @-mention for a child unit (brigade_counselor in a county's counselor group).

    >>> from matrix.blueprint import load_blueprint
    >>> child_roles(load_blueprint("young_pioneers"), "county-counselors")
    ['brigade_counselor', 'core_squadron_counselor']
    """
    spec = bp.group(kind)
    return list(dict.fromkeys(s.role for s in spec.members if s.scope == "children"))


def office_group(conn: Connection, bp: Blueprint, unit_code: str) -> GroupRef | None:
    """Where a unit's office reads what is sent to it: its own internal group (every member from
    the unit itself, e.g. 少工委委员群) if built, else its main relay group, else any built group
    it leads."""
    groups = office_groups(conn, bp, unit_code)
    return groups[0] if groups else None


def office_groups(conn: Connection, bp: Blueprint, unit_code: str) -> list[GroupRef]:
    """The built groups a unit leads, in the order ``office_group`` prefers them."""

    def rank(spec_key: str) -> int:
        spec = bp.group(spec_key)
        if all(s.scope == "self" for s in spec.members):
            return 0
        return 1 if spec.main else 2 if spec.relay else 3

    known = set(bp.group_keys())
    rows = [
        _group(r)
        for r in conn.execute(
            select(GROUP).where(and_(GROUP.c.unit_code == unit_code, GROUP.c.room_id.is_not(None)))
        )
    ]
    rows = [g for g in rows if g.kind in known]
    return sorted(rows, key=lambda g: (rank(g.kind), g.shard, g.id))


def groups_with_rooms(
    conn: Connection, containing: str = "", limit: int | None = None
) -> list[GroupRef]:
    """The groups that have a room, in the order they were made; only those whose name
    contains ``containing`` when it is given, at most ``limit`` of them."""
    query = select(GROUP).where(GROUP.c.room_id.is_not(None)).order_by(GROUP.c.id)
    if containing:
        query = query.where(GROUP.c.name.contains(containing))
    if limit is not None:
        query = query.limit(limit)
    return [_group(row) for row in conn.execute(query)]


def group_named(conn: Connection, name: str) -> GroupRef | None:
    """The (first made) group called ``name``, None if there is none."""
    row = conn.execute(select(GROUP).where(GROUP.c.name == name).order_by(GROUP.c.id)).first()
    return None if row is None else _group(row)


def shard_rooms(conn: Connection, unit_code: str, kind: str) -> dict[int, str | None]:
    """shard → room id of the groups of one kind that a unit leads (0 when not split)."""
    rows = conn.execute(
        select(GROUP.c.shard, GROUP.c.room_id).where(
            GROUP.c.unit_code == unit_code, GROUP.c.kind == kind
        )
    )
    return {int(shard): room for shard, room in rows}


def roster_wechat_ids(conn: Connection) -> list[tuple[str, str]]:
    """(微信号, name) of everyone on the roster (not removed) who has a 微信号."""
    rows = conn.execute(
        select(PERSON.c.wechat_id, PERSON.c.name).where(
            PERSON.c.wechat_id.is_not(None), PERSON.c.removed_at.is_(None)
        )
    )
    return [(str(wechat_id), str(name)) for wechat_id, name in rows]


def name_for_wechat_id(conn: Connection, wechat_id: str) -> str | None:
    """The roster name of the person with this 微信号, None if no one has it."""
    name = conn.execute(select(PERSON.c.name).where(PERSON.c.wechat_id == wechat_id)).scalar()
    return None if name is None else str(name)


def unit_names_by_wechat_id(conn: Connection) -> dict[str, str]:
    """微信号 → the name of the unit the person holds a position in (the last position when
    there are several), for everyone who has a 微信号."""
    rows = conn.execute(
        select(PERSON.c.wechat_id, UNIT.c.name)
        .select_from(PERSON.join(POSITION).join(UNIT))
        .where(PERSON.c.wechat_id.is_not(None))
        .order_by(POSITION.c.seq)
    )
    return {str(wechat_id): str(name) for wechat_id, name in rows}


def units_by_wechat_id_under(conn: Connection, parent_code: str) -> dict[str, str]:
    """微信号 → unit code, for the people with a 微信号 who hold a position in a unit directly
    under ``parent_code``."""
    rows = conn.execute(
        select(PERSON.c.wechat_id, POSITION.c.unit_code)
        .join(POSITION, POSITION.c.person_id == PERSON.c.id)
        .join(UNIT, UNIT.c.code == POSITION.c.unit_code)
        .where(UNIT.c.parent_code == parent_code, PERSON.c.wechat_id.is_not(None))
    )
    return {str(wechat_id): str(code) for wechat_id, code in rows}


def first_with_phone(
    conn: Connection, person_ids: Iterable[int], parent_code: str, role: str
) -> tuple[str, str] | None:
    """(name, phone) of the first of ``person_ids`` (by id) who has a phone and holds ``role``
    in a unit directly under ``parent_code``; None if none does."""
    row = conn.execute(
        select(PERSON.c.name, PERSON.c.phone)
        .select_from(PERSON.join(POSITION).join(UNIT))
        .where(
            PERSON.c.id.in_(sorted(person_ids)),
            PERSON.c.phone.is_not(None),
            UNIT.c.parent_code == parent_code,
            POSITION.c.role == role,
        )
        .order_by(PERSON.c.id)
    ).first()
    return None if row is None else (str(row[0]), str(row[1]))


@dataclass(frozen=True)
class RosterPerson:
    """A roster person as a command names them: by phone or name, with their unit."""

    id: int
    name: str
    unit_code: str
    unit_name: str


def roster_people(conn: Connection, *conditions: ColumnElement[bool]) -> list[RosterPerson]:
    """Current roster persons at current units meeting ``conditions``, each once (their
    highest unit)."""
    query = (
        select(PERSON.c.id, PERSON.c.name, UNIT.c.code, UNIT.c.name)
        .select_from(PERSON.join(POSITION, POSITION.c.person_id == PERSON.c.id).join(UNIT))
        .where(PERSON.c.removed_at.is_(None), UNIT.c.removed_at.is_(None), *conditions)
        .order_by(PERSON.c.id, UNIT.c.depth)
    )
    seen: dict[int, RosterPerson] = {}
    for row in conn.execute(query):
        seen.setdefault(row[0], RosterPerson(*row))
    return list(seen.values())


def roster_person(conn: Connection, person_id: int) -> RosterPerson | None:
    """The current roster person with this id, or None."""
    found = roster_people(conn, PERSON.c.id == person_id)
    return found[0] if found else None


def person_name(conn: Connection, person_id: int) -> str | None:
    """A roster person's name (removed or not), or None."""
    return conn.execute(select(PERSON.c.name).where(PERSON.c.id == person_id)).scalar()


def position_units(conn: Connection, person_id: int) -> list[str]:
    """The codes of the units the person holds a position at (current or not)."""
    rows = conn.execute(select(POSITION.c.unit_code).where(POSITION.c.person_id == person_id))
    return [str(r[0]) for r in rows]


def find_person(
    conn: Connection, text: str, under_unit: str, where: str = "本群所属单位及下属单位的名册"
) -> RosterPerson:
    """The roster person in ``under_unit``'s subtree with this phone number or name
    (``where`` names that roster in the message when there is none)."""
    path = conn.execute(select(UNIT.c.path).where(UNIT.c.code == under_unit)).scalar_one()
    phone = clean_phone(text) or text
    found = roster_people(
        conn, UNIT.c.path.startswith(path), (PERSON.c.phone == phone) | (PERSON.c.name == text)
    )
    if not found:
        raise MatrixError(
            f"在{where}中找不到“{text}”",
            fix="请写名册上登记的手机号或姓名；不在名册上的人可只写编号同意入群",
        )
    if len(found) > 1:
        listed = "、".join(f"{p.name}（{p.unit_name}）" for p in found[:5])
        raise MatrixError(f"“{text}”对应多人：{listed}", fix="请改写手机号")
    return found[0]


def room_owner(engine: Engine, room_id: str) -> str | None:
    """The account that owns the matrix group in ``room_id`` (None: unknown or not ours)."""
    with engine.connect() as conn:
        return conn.execute(
            select(GROUP.c.owner_account).where(GROUP.c.room_id == room_id)
        ).scalar()


def built_groups_under(engine: Engine, unit_code: str) -> list[tuple[int, str | None]]:
    """The built groups of ``unit_code``'s subtree and their owner accounts."""
    with engine.connect() as conn:
        path = conn.execute(select(UNIT.c.path).where(UNIT.c.code == unit_code)).scalar_one()
        rows = conn.execute(
            select(GROUP.c.id, GROUP.c.owner_account)
            .join(UNIT, UNIT.c.code == GROUP.c.unit_code)
            .where(
                GROUP.c.room_id.is_not(None),
                within_path(UNIT.c.path, path, conn.dialect.name),
            )
        ).all()
    return [(int(gid), owner) for gid, owner in rows]


def units_mark(engine: Engine) -> tuple[Any, ...]:
    """A cheap fingerprint of the unit table: it changes when an import adds, removes,
    renames or moves units (the bot then loads its unit tree again)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(
                func.count(),
                func.count(UNIT.c.removed_at),
                func.max(UNIT.c.removed_at),
                func.coalesce(func.sum(func.length(UNIT.c.name)), 0),
                func.coalesce(func.sum(func.length(UNIT.c.path)), 0),
            )
        ).one()
    return tuple(row)
