"""Which groups a notice goes to: every relay group (every shard) led by any unit in the
issuing unit's subtree, top-down by level. Found in SQL by the units' path prefix."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, select

from matrix.blueprint import Blueprint
from matrix.relay.people import UnitRef
from matrix.tables import GROUP, UNIT


@dataclass(frozen=True)
class Target:
    """One group a notice goes to, with its leading unit's depth and level."""

    group_id: int
    unit_code: str
    depth: int
    level: str
    kind: str
    shard: int
    room_id: str


def relay_kinds(bp: Blueprint) -> list[str]:
    """The group kinds that are part of the notice chain (``relay = true``), blueprint order.

    >>> from matrix.blueprint import load_blueprint
    >>> relay_kinds(load_blueprint("young_pioneers"))[-1]
    'county-counselors'
    """
    return [g.key for g in bp.groups if g.relay]


def answers_for_itself(bp: Blueprint, kind: str) -> bool:
    """Whether the leading unit itself answers a notice in a group of this kind.

    A relay group that takes people from the units below (a county's counselor group) is
    answered by those units; one whose members are all the leading unit's own people (a
    关工委 county's 关工工作群: its office, director, 五老 and liaisons) has nobody below to
    answer, so the leading unit answers for itself there.

    >>> from matrix.blueprint import load_blueprint
    >>> answers_for_itself(load_blueprint("young_pioneers"), "county-counselors")
    False
    >>> answers_for_itself(load_blueprint("guangongwei"), "county-base")
    True
    """
    spec = bp.group(kind)
    return not any(s.scope in ("children", "descendants") for s in spec.members)


def self_answering_kinds(bp: Blueprint) -> list[str]:
    """The relay kinds answered by their leading unit (see ``answers_for_itself``)."""
    return [k for k in relay_kinds(bp) if answers_for_itself(bp, k)]


def relay_targets(conn: Connection, bp: Blueprint, leader: UnitRef) -> list[Target]:
    """The built relay groups in ``leader``'s subtree, parents before children."""
    kinds = relay_kinds(bp)
    order = {k: i for i, k in enumerate(kinds)}
    rows = conn.execute(
        select(
            GROUP.c.id,
            GROUP.c.unit_code,
            UNIT.c.depth,
            UNIT.c.level,
            GROUP.c.kind,
            GROUP.c.shard,
            GROUP.c.room_id,
        )
        .join(UNIT, UNIT.c.code == GROUP.c.unit_code)
        .where(
            UNIT.c.path.startswith(leader.path, autoescape=True),
            UNIT.c.removed_at.is_(None),
            GROUP.c.kind.in_(kinds),
            GROUP.c.room_id.is_not(None),
        )
        .order_by(UNIT.c.depth, UNIT.c.path, GROUP.c.shard)
    ).all()
    targets = [Target(*r) for r in rows]
    targets.sort(key=lambda t: (t.depth, order[t.kind]))  # stable: keeps path order inside
    return targets


def unbuilt_count(conn: Connection, bp: Blueprint, leader: UnitRef) -> int:
    """How many (unit, relay kind) pairs in the subtree have no built group yet."""
    missing = 0
    for spec in bp.groups:
        if not spec.relay:
            continue
        in_scope = and_(
            UNIT.c.path.startswith(leader.path, autoescape=True),
            UNIT.c.removed_at.is_(None),
            UNIT.c.level == spec.led_by,
        )
        units = conn.execute(select(func.count()).select_from(UNIT).where(in_scope)).scalar_one()
        built = conn.execute(
            select(func.count(func.distinct(GROUP.c.unit_code)))
            .select_from(GROUP.join(UNIT, UNIT.c.code == GROUP.c.unit_code))
            .where(in_scope, GROUP.c.kind == spec.key, GROUP.c.room_id.is_not(None))
        ).scalar_one()
        missing += units - built
    return missing
