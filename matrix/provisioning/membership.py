"""Expected membership: who must be in which group, from the blueprint's selectors and the roster.

For every unit that leads groups and every group kind it leads, the selectors pick the members,
the admins and the responsible person (专人负责). Quotas are checked per selected unit: a school
with one core squadron counselor where the rule says 2–3 is a shortfall (an audit finding), not
an error; above the maximum, the first ones on the roster are taken.

The roster is read as plain tuples (``RosterView``), never as ORM objects: the national roster
has 750,000 positions. ``survey`` puts it together with the rooms as the platform last showed
them (``matrix.provisioning.actual``) and splits big groups into stable shards (``matrix.provisioning.sharding``): the
``Target`` rooms that the planner and the auditor compare with reality.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, select

from matrix.blueprint import Blueprint, GroupSpec, Selector
from matrix.db import raw_rows
from matrix.errors import MatrixError, UnknownUnit
from matrix.models import utcnow
from matrix.provisioning.actual import ActualState, Room
from matrix.provisioning.sharding import assign_shards, group_name, split_number
from matrix.tables import CONTACT_BINDING, MEMBERSHIP, PERSON, POSITION, UNIT
from matrix.tree import within_path

MAX_ADMINS = 3  # WeChat lets an owner appoint three admins
CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit
OWNER_SEATS = 1  # the bot account that owns the room takes a seat in it

UnitInfo = tuple[str, str, str | None, int]  # name, level, parent code, depth


@dataclass
class RosterView:
    """The part of the roster a scope needs: its units, and who holds which role where."""

    scope: str
    units: dict[str, UnitInfo]
    children: dict[str, list[str]]
    holders: dict[str, dict[str, list[int]]]  # role -> unit -> person ids in roster order
    unreachable: set[int]  # persons with neither a 微信号 nor a bound contact: cannot be invited

    @classmethod
    def load(
        cls,
        conn: Connection,
        scope: str | None = None,
        *,
        roles: Collection[str] | None = None,
        below: int | None = None,
    ) -> RosterView:
        """Units of the subtree of ``scope`` (default: the whole roster) down to ``below``
        levels under it and its parent, with the holders of ``roles`` (default: all) there."""
        dialect = conn.dialect.name
        if scope is None:
            root = conn.execute(
                select(UNIT.c.code).where(UNIT.c.parent_code.is_(None), UNIT.c.removed_at.is_(None))
            ).scalar()
            if root is None:
                raise MatrixError("名册中还没有任何单位", fix="请先用 `qunmatrix import` 导入名册")
            scope = str(root)
        head = conn.execute(
            select(UNIT.c.path, UNIT.c.parent_code, UNIT.c.depth).where(
                UNIT.c.code == scope, UNIT.c.removed_at.is_(None)
            )
        ).first()
        if head is None:
            raise UnknownUnit(scope)
        path, parent, depth = head
        whole = parent is None and below is None
        cond: list[ColumnElement[bool]] = [UNIT.c.removed_at.is_(None)]
        if parent is not None:
            cond.append(within_path(UNIT.c.path, path, dialect))
        if below is not None:
            cond.append(UNIT.c.depth <= depth + below)
        wanted = and_(*cond)
        units: dict[str, UnitInfo] = {}
        children: dict[str, list[str]] = {}
        for code, name, level, up, d in raw_rows(
            conn,
            select(UNIT.c.code, UNIT.c.name, UNIT.c.level, UNIT.c.parent_code, UNIT.c.depth)
            .where(wanted)
            .order_by(UNIT.c.code),
        ):
            units[code] = (name, level, up, d)
            if up is not None:
                children.setdefault(up, []).append(code)
        holders: dict[str, dict[str, list[int]]] = {}
        if whole:
            # one ordered scan of the covering index per role (ix_position_role_unit_seq)
            for role in sorted(roles) if roles is not None else _all_roles(conn):
                holders[role] = _by_unit(
                    raw_rows(
                        conn,
                        select(POSITION.c.unit_code, POSITION.c.person_id)
                        .where(POSITION.c.role == role)
                        .order_by(POSITION.c.unit_code, POSITION.c.seq),
                    )
                )
        else:
            # by unit code: a join on the path would let SQLite start from the role index
            codes = list(units)
            for i in range(0, len(codes), CHUNK):
                query = (
                    select(POSITION.c.role, POSITION.c.unit_code, POSITION.c.person_id)
                    .where(POSITION.c.unit_code.in_(codes[i : i + CHUNK]))
                    .order_by(POSITION.c.role, POSITION.c.unit_code, POSITION.c.seq)
                )
                if roles is not None:
                    query = query.where(POSITION.c.role.in_(sorted(roles)))
                _add_holders(holders, raw_rows(conn, query))
        if parent is not None:
            up_row = conn.execute(
                select(UNIT.c.name, UNIT.c.level, UNIT.c.parent_code, UNIT.c.depth).where(
                    UNIT.c.code == parent
                )
            ).first()
            if up_row is not None:
                units[parent] = (up_row[0], up_row[1], up_row[2], up_row[3])
                _add_holders(
                    holders,
                    conn.execute(
                        select(POSITION.c.role, POSITION.c.unit_code, POSITION.c.person_id)
                        .where(POSITION.c.unit_code == parent)
                        .order_by(POSITION.c.role, POSITION.c.seq)
                    ),
                )
        view = cls(scope, units, children, holders, set())
        view.unreachable = _unreachable(conn, None if whole else view.persons())
        return view

    def name(self, code: str) -> str:
        return self.units[code][0]

    def level(self, code: str) -> str:
        return self.units[code][1]

    def parent(self, code: str) -> str | None:
        return self.units[code][2]

    def persons(self) -> set[int]:
        """Everyone holding a loaded role in the view."""
        return {p for by_unit in self.holders.values() for ps in by_unit.values() for p in ps}

    def in_scope(self, max_depth: int | None = None) -> Iterator[str]:
        """The units of the scope's subtree, each before those under it (depth first), down
        to level ``max_depth`` of the blueprint."""
        stack = [self.scope]
        units = self.units
        while stack:
            code = stack.pop()
            yield code
            if max_depth is None or units[code][3] < max_depth:
                stack.extend(reversed(self.children.get(code, ())))

    def descendants(self, code: str) -> Iterator[str]:
        stack = list(reversed(self.children.get(code, ())))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(self.children.get(node, ())))


def _all_roles(conn: Connection) -> list[str]:
    return sorted(str(r[0]) for r in conn.execute(select(POSITION.c.role).distinct()))


def _by_unit(rows: Iterable[Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for code, pid in rows:
        found = out.get(code)
        if found is None:
            out[code] = [pid]
        else:
            found.append(pid)
    return out


def _add_holders(holders: dict[str, dict[str, list[int]]], rows: Iterable[Any]) -> None:
    for role, code, pid in rows:
        holders.setdefault(role, {}).setdefault(code, []).append(pid)


def _unreachable(conn: Connection, persons: Collection[int] | None) -> set[int]:
    bound = select(CONTACT_BINDING.c.person_id).where(
        CONTACT_BINDING.c.person_id == PERSON.c.id,
        CONTACT_BINDING.c.superseded_at.is_(None),
        CONTACT_BINDING.c.revoked_at.is_(None),
    )
    query = select(PERSON.c.id).where(
        PERSON.c.removed_at.is_(None), PERSON.c.wechat_id.is_(None), ~bound.exists()
    )
    if persons is None:
        return {int(r[0]) for r in raw_rows(conn, query)}
    ids = sorted(persons)
    out: set[int] = set()
    for i in range(0, len(ids), CHUNK):
        out.update(
            int(r[0]) for r in raw_rows(conn, query.where(PERSON.c.id.in_(ids[i : i + CHUNK])))
        )
    return out


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A selected unit supplies fewer holders of a role than the quota (QUOTA_SHORT)."""

    leader: str
    kind: str
    unit: str
    role: str
    have: int
    need: int


@dataclass(slots=True)
class Expectation:
    """One group kind led by one unit, before it is split into shards.

    ``pinned`` sit in every shard (the leading office's staff, admins, the responsible person);
    ``blocks`` are everyone else, by the unit they come from, in roster order.
    """

    unit: str
    spec: GroupSpec
    pinned: list[int]
    blocks: list[tuple[str, list[int]]]
    admins: list[int]
    responsible: int | None

    def size(self) -> int:
        return len(self.pinned) + sum(len(b) for _, b in self.blocks)


def _selected_units(view: RosterView, sel: Selector, leader: str) -> Iterator[str]:
    if sel.scope == "self":
        yield leader
    elif sel.scope == "parent":
        up = view.parent(leader)
        if up is not None and up in view.units:
            yield up
    elif sel.scope == "children":
        yield from view.children.get(leader, ())
    else:
        yield from view.descendants(leader)


def expect(
    view: RosterView, bp: Blueprint, leader: str, spec: GroupSpec, shortfalls: list[Shortfall]
) -> Expectation:
    """Who belongs in ``spec``'s group led by ``leader``; quota shortfalls are appended."""
    admins = _first(view, leader, spec.admins, MAX_ADMINS)
    responsible = None
    if spec.responsible is not None:
        responsible = next(iter(_first(view, leader, [spec.responsible], 1)), None)
    pinned = list(dict.fromkeys([*admins, *([responsible] if responsible is not None else [])]))
    seen = set(pinned)
    gathered: dict[str, list[int]] = {}
    for sel in spec.members:
        by_unit = view.holders.get(sel.role, {})
        if sel.scope in ("self", "parent"):
            for unit in _selected_units(view, sel, leader):
                for pid in by_unit.get(unit, ()):
                    if pid not in seen:
                        seen.add(pid)
                        pinned.append(pid)
            continue
        low, high = sel.min, sel.max
        allowed = bp.role(sel.role).levels
        for unit in _selected_units(view, sel, leader):
            found = by_unit.get(unit)
            n = len(found) if found else 0
            if low is not None and n < low and (not allowed or view.level(unit) in allowed):
                shortfalls.append(Shortfall(leader, spec.key, unit, sel.role, n, low))
            if not found:
                continue
            if high is not None and n > high:
                found = found[:high]
            block = gathered.get(unit)
            if block is None:
                gathered[unit] = list(found)
            else:
                block.extend(found)
    blocks = list(gathered.items())
    everyone = [p for _, people in blocks for p in people]
    distinct = set(everyone)
    if len(distinct) != len(everyone) or not distinct.isdisjoint(seen):
        # someone holds two selected roles: keep their first place only
        blocks = []
        for unit, people in gathered.items():
            fresh = [p for p in dict.fromkeys(people) if p not in seen]
            if fresh:
                seen.update(fresh)
                blocks.append((unit, fresh))
    return Expectation(leader, spec, pinned, blocks, admins, responsible)


def _first(view: RosterView, leader: str, selectors: Sequence[Selector], limit: int) -> list[int]:
    out: list[int] = []
    for sel in selectors:
        by_unit = view.holders.get(sel.role, {})
        for unit in _selected_units(view, sel, leader):
            for pid in by_unit.get(unit, ()):
                if pid not in out:
                    out.append(pid)
    return out[:limit]


def roles_needed(bp: Blueprint, specs: Iterable[GroupSpec]) -> set[str]:
    """The roles the selectors of ``specs`` read."""
    return {sel.role for spec in specs for sel in spec.selectors()}


@dataclass(slots=True)
class Target:
    """One room as it should be: a shard of a group, with its members by roster person id."""

    unit: str
    kind: str
    shard: int
    name: str
    members: list[int]
    admins: list[int]
    responsible: int | None
    required: bool
    room: Room | None  # the room this target continues, if the bots know one

    @property
    def built(self) -> bool:
        return self.room is not None and self.room.room_id is not None


@dataclass
class Survey:
    """Everything a plan or an audit of one scope needs, read once."""

    bp: Blueprint
    view: RosterView
    actual: ActualState
    expectations: list[Expectation]
    shortfalls: list[Shortfall]
    targets: list[Target]
    overfull: list[Expectation] = field(default_factory=list)  # pinned alone fill a room

    @property
    def scope(self) -> str:
        return self.view.scope


def survey(
    conn: Connection,
    bp: Blueprint,
    unit: str | None = None,
    *,
    bots: Collection[str] = (),
    view: RosterView | None = None,
) -> Survey:
    """Expected rooms for every group led in the subtree of ``unit`` (default: everything),
    next to the rooms the bots know. Optional groups (延展群) are included once they exist."""
    actual = ActualState.load(conn, unit if view is None else view.scope, bots=bots)
    if view is None:
        built = {kind for _, kind in actual.rooms}
        specs = [g for g in bp.groups if not g.optional or g.key in built]
        view = RosterView.load(conn, unit, roles=roles_needed(bp, specs))
    expectations: list[Expectation] = []
    shortfalls: list[Shortfall] = []
    specs_by_level: dict[str, list[GroupSpec]] = {}
    for spec in bp.groups:
        specs_by_level.setdefault(spec.led_by, []).append(spec)
    deepest = max(bp.depth(level) for level in specs_by_level)
    for code in view.in_scope(deepest):
        for spec in specs_by_level.get(view.level(code), ()):
            if spec.optional and (code, spec.key) not in actual.rooms:
                continue
            expectations.append(expect(view, bp, code, spec, shortfalls))
    targets: list[Target] = []
    overfull: list[Expectation] = []
    for exp in expectations:
        targets.extend(_shard(exp, view, actual, bp, overfull))
    return Survey(bp, view, actual, expectations, shortfalls, targets, overfull)


def _shard(
    exp: Expectation,
    view: RosterView,
    actual: ActualState,
    bp: Blueprint,
    overfull: list[Expectation],
) -> list[Target]:
    rooms = actual.rooms.get((exp.unit, exp.spec.key), [])
    by_shard = {r.shard: r for r in rooms}
    room = bp.matrix.max_group_size - OWNER_SEATS - len(exp.pinned)
    if room < 1:
        overfull.append(exp)
        room = max(1, bp.matrix.max_group_size - OWNER_SEATS)
    prior: dict[int, int] = {}
    for r in rooms:
        for pid in actual.present(r.id):
            if pid not in prior or r.shard < prior[pid]:
                prior[pid] = r.shard
    shards = assign_shards(exp.blocks, room, prior, by_shard.keys())
    if 0 in by_shard and 0 not in shards:
        by_shard[split_number(set(by_shard))] = by_shard.pop(0)
    name = view.name(exp.unit)
    return [
        Target(
            exp.unit,
            exp.spec.key,
            shard,
            group_name(exp.spec.name, name, exp.unit, shard),
            [*exp.pinned, *members],
            exp.admins,
            exp.responsible,
            not exp.spec.optional,
            by_shard.get(shard),
        )
        for shard, members in sorted(shards.items())
    ]


def record_expected(
    conn: Connection, targets: Sequence[Target], group_ids: dict[tuple[str, str, int], int]
) -> int:
    """Store who each target room should hold as ``expected`` membership rows (replacing the
    rows stored before), for the rooms that have a group row (``group_ids`` by unit, kind and
    shard, or the room the target continues). Summaries count 应入 from these; the planner and
    the auditor recompute them and never read them. Returns how many rows were written."""
    rows: list[dict[str, Any]] = []
    gids: list[int] = []
    now = utcnow()
    for t in targets:
        gid = group_ids.get((t.unit, t.kind, t.shard)) or (t.room.id if t.room else None)
        if gid is None:
            continue
        gids.append(gid)
        admins = set(t.admins)
        rows.extend(
            {
                "group_id": gid,
                "state": "expected",
                "person_id": pid,
                "contact_id": None,
                "is_admin": pid in admins,
                "nickname": None,
                "source": "blueprint",
                "updated_at": now,
            }
            for pid in dict.fromkeys(t.members)
        )
    for i in range(0, len(gids), CHUNK):
        conn.execute(
            delete(MEMBERSHIP).where(
                MEMBERSHIP.c.group_id.in_(gids[i : i + CHUNK]), MEMBERSHIP.c.state == "expected"
            )
        )
    for i in range(0, len(rows), 20_000):
        conn.execute(insert(MEMBERSHIP), rows[i : i + 20_000])
    return len(rows)
