"""The build-status summary (seed 002 附件2 微信群矩阵建设情况信息汇总表) for one unit's subtree.

What the form asks: this level's 建群数 and 联系人数, the same totals for each lower level, and
the list of this unit's own groups (群名称, 人员构成, 人数, 备注). Beyond the form: how many
groups each level should have built and has built, how many members were expected and have
joined, with coverage, and which units have not built the groups they must lead.

Definitions (the same on every backend):
- a group is *built* when its ``wgroup`` row has a ``room_id``;
- *expected groups* are, for every unit of a leading level, each non-optional group kind the
  blueprint says it leads, counted as many times as the unit has shard rows of it, at least once;
- *联系人数* is the number of ``membership`` rows with state ``actual`` (a person in two groups
  counts twice, as the 人数 column of the form adds up, and unknown contacts count too);
- *expected members* are rows with state ``expected``, written once provisioning has run; for
  groups not planned into rows yet they are forecast from the roster as the planner shards it
  (and so are their expected groups, one per shard); *joined* are those expected persons who
  are actually in their group, so member coverage (joined / expected) never passes 100%
  however many strangers join.

Everything is counted by aggregate queries over the unit path prefix: the national table reads a
few thousand aggregate rows, never the 700,000 memberships themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Subquery,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)

from matrix.blueprint import Blueprint, GroupSpec, LevelSpec
from matrix.provisioning.membership import survey
from matrix.provisioning.plan import STEP_EVERY
from matrix.scope import UNIT, UnitRef, resolve_target, under
from matrix.tables import GROUP, MEMBERSHIP


def coverage(done: int, wanted: int | None) -> float | None:
    """Share of ``wanted`` that is ``done``; ``None`` when nothing is wanted (or not known).

    >>> coverage(2, 3), coverage(0, 0), coverage(5, None)
    (0.6666666666666666, None, None)
    """
    if not wanted:
        return None
    return done / wanted


@dataclass(frozen=True)
class LevelStatus:
    """One level of the subtree: its leading units, their groups and members."""

    level: str
    label: str
    units: int  # units of this level in the subtree
    expected_groups: int  # required groups they must lead (shards counted)
    built_groups: int  # of those, built
    extension_groups: int  # optional (延展) groups built besides
    members: int  # 联系人数: actual memberships in the level's groups
    expected_members: int | None  # expected memberships, None before provisioning ran
    joined_members: int | None  # of the expected, those actually in their group

    @property
    def groups(self) -> int:
        """建群数: every built group of the level, extension groups included."""
        return self.built_groups + self.extension_groups

    @property
    def group_coverage(self) -> float | None:
        return coverage(self.built_groups, self.expected_groups)

    @property
    def member_coverage(self) -> float | None:
        return coverage(self.joined_members or 0, self.expected_members)


@dataclass(frozen=True)
class GroupLine:
    """One of the unit's own groups (a row of 省级建群情况一览), built or still to build."""

    name: str
    kind: str
    kind_label: str
    composition: str  # 人员构成, from the blueprint's selectors
    built: bool
    optional: bool
    shard: int  # 0 when not split
    shards: int  # how many shard rows the kind has
    members: int  # 人数: actual memberships
    expected: int | None  # expected memberships, None before provisioning ran
    missing: int | None  # expected persons not (yet) in the group


@dataclass(frozen=True)
class UnbuiltUnit:
    """A unit that has not built (every shard of) a group kind it must lead."""

    code: str
    name: str
    level: str
    level_label: str
    parent_name: str
    missing: list[str] = field(default_factory=list)  # group kind labels


@dataclass(frozen=True)
class BuildStatus:
    """The whole build-status summary of one unit's subtree."""

    unit: UnitRef
    unit_level_label: str
    as_of: date
    deadline: date | None
    levels: list[LevelStatus]  # the unit's own level first, then each lower leading level
    groups: list[GroupLine]
    unbuilt: list[UnbuiltUnit]

    @property
    def own(self) -> LevelStatus:
        return self.levels[0]

    @property
    def below(self) -> list[LevelStatus]:
        return self.levels[1:]

    @property
    def overdue(self) -> bool:
        return self.deadline is not None and self.as_of > self.deadline and bool(self.unbuilt)

    @property
    def expected_groups(self) -> int:
        return sum(lv.expected_groups for lv in self.levels)

    @property
    def built_groups(self) -> int:
        return sum(lv.built_groups for lv in self.levels)


def group_name(spec: GroupSpec, unit_name: str, unit_code: str) -> str:
    """The room name a kind's template gives an unsplit group.

    >>> from matrix.blueprint import load_blueprint
    >>> group_name(load_blueprint("young_pioneers").group("county-counselors"), "乙1县", "K1")
    '乙1县少先队大队辅导员群'
    """
    return spec.name.format(unit=SimpleNamespace(name=unit_name, code=unit_code), shard="")


def build_status(
    engine: Engine,
    bp: Blueprint,
    *,
    requester: str,
    target: str | None = None,
    as_of: date,
    deadline: date | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> BuildStatus:
    """The 附件2 summary for ``target`` (default: the requester's own unit), within the
    requester's subtree (``OutOfScope`` otherwise). ``on_step`` hears (groups summarised,
    groups in all) of the groups still to build, which the roster forecasts."""
    with engine.connect() as conn:
        unit = resolve_target(conn, requester, target)
        return _build_status(conn, bp, unit, as_of, deadline, on_step)


def _levels_below(bp: Blueprint, unit: UnitRef) -> list[LevelSpec]:
    depth = bp.depth(unit.level)
    return [
        lvl
        for i, lvl in enumerate(bp.levels)
        if i == depth or (i > depth and bp.groups_led_by(lvl.key))
    ]


def _build_status(
    conn: Connection,
    bp: Blueprint,
    unit: UnitRef,
    as_of: date,
    deadline: date | None,
    on_step: Callable[[int, int], None] | None = None,
) -> BuildStatus:
    levels = _levels_below(bp, unit)
    keys = [lvl.key for lvl in levels]
    in_tree = and_(under(UNIT.c.path, unit.path), UNIT.c.removed_at.is_(None))

    units_at = dict(
        conn.execute(
            select(UNIT.c.level, func.count())
            .where(UNIT.c.level.in_(keys[1:]), in_tree)
            .group_by(UNIT.c.level)
        ).all()
    )
    units_at[unit.level] = 1  # at its own level the subtree holds the unit alone

    # per level and kind: shard rows, built rows, and units having any row of the kind
    by_kind: dict[tuple[str, str], tuple[int, int, int]] = {}
    built = case((GROUP.c.room_id.is_not(None), 1), else_=0)
    for level, kind, rows, done, with_rows in conn.execute(
        select(
            UNIT.c.level,
            GROUP.c.kind,
            func.count(),
            func.sum(built),
            func.count(func.distinct(GROUP.c.unit_code)),
        )
        .select_from(GROUP.join(UNIT, UNIT.c.code == GROUP.c.unit_code))
        .where(UNIT.c.level.in_(keys), in_tree)
        .group_by(UNIT.c.level, GROUP.c.kind)
    ):
        by_kind[(level, kind)] = (int(rows), int(done or 0), int(with_rows))

    members = _member_counts(
        conn, and_(UNIT.c.level.in_(keys), in_tree), everything=unit.path.count("/") == 2
    )
    unbuilt_pairs = sum(
        int(units_at.get(g.led_by, 0)) - by_kind.get((g.led_by, g.key), (0, 0, 0))[2]
        for g in bp.groups
        if g.led_by in keys and not g.optional
    )
    forecast = _forecast(conn, bp, unit, keys, in_tree, on_step) if unbuilt_pairs else {}
    ahead: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (level, _, _), (shards, people) in forecast.items():
        ahead[level][0] += shards
        ahead[level][1] += people

    statuses = []
    for lvl in levels:
        required = {g.key for g in bp.groups_led_by(lvl.key) if not g.optional}
        n_units = int(units_at.get(lvl.key, 0))
        expected = built_required = extension = without_rows = 0
        for kind in required:
            rows, done, with_rows = by_kind.get((lvl.key, kind), (0, 0, 0))
            expected += rows
            without_rows += n_units - with_rows
            built_required += done
        # a group not yet planned into rows counts as the shards the roster will need
        expected += max(without_rows, ahead[lvl.key][0])
        for (level, kind), (_, done, _) in by_kind.items():
            if level == lvl.key and kind not in required:
                extension += done
        want = members.get((lvl.key, "expected"), 0) + ahead[lvl.key][1]
        statuses.append(
            LevelStatus(
                level=lvl.key,
                label=lvl.label,
                units=n_units,
                expected_groups=expected,
                built_groups=built_required,
                extension_groups=extension,
                members=members.get((lvl.key, "actual"), 0),
                expected_members=want or None,
                joined_members=members.get((lvl.key, "joined"), 0) if want else None,
            )
        )

    return BuildStatus(
        unit=unit,
        unit_level_label=bp.level(unit.level).label,
        as_of=as_of,
        deadline=deadline,
        levels=statuses,
        groups=_own_groups(conn, bp, unit, forecast),
        unbuilt=_unbuilt(conn, bp, unit, keys),
    )


def _member_counts(
    conn: Connection, groups_where: ColumnElement[bool], *, everything: bool
) -> dict[tuple[str, str], int]:
    """(level, state) → memberships in the groups of units matching ``groups_where``: see
    ``_per_group``. With ``everything`` (the root's table) the per-group counts run over the
    whole membership table, unfiltered: a list of every group id only misleads the planner."""
    subtree = (
        select(GROUP.c.id)
        .select_from(GROUP.join(UNIT, UNIT.c.code == GROUP.c.unit_code))
        .where(groups_where)
    )
    out: dict[tuple[str, str], int] = {}
    for counts in _per_group(None if everything else subtree):
        for level, state, n in conn.execute(
            select(UNIT.c.level, counts.c.state, func.sum(counts.c.n))
            .select_from(
                counts.join(GROUP, GROUP.c.id == counts.c.group_id).join(
                    UNIT, UNIT.c.code == GROUP.c.unit_code
                )
            )
            .where(groups_where)
            .group_by(UNIT.c.level, counts.c.state)
        ):
            out[(level, state)] = int(n)
    return out


def _per_group(groups: Select[Any] | None) -> tuple[Subquery, Subquery]:
    """Per group of ``groups`` (a select of group ids; None = all groups): memberships by state
    (``actual``, ``expected``), and ``joined``: expected persons who are actually in the group.

    Counted per group from the (group_id, state, person_id) index first, and only then summed
    per level by the caller: joining every membership row to its unit would cost a lookup per
    row, which at national scale is most of a second.
    """
    chosen = true() if groups is None else MEMBERSHIP.c.group_id.in_(groups)
    per_state = (
        select(MEMBERSHIP.c.group_id, MEMBERSHIP.c.state, func.count().label("n"))
        .where(chosen)
        .group_by(MEMBERSHIP.c.group_id, MEMBERSHIP.c.state)
        .subquery()
    )
    actual = MEMBERSHIP.alias("actual")
    present = exists().where(
        actual.c.group_id == MEMBERSHIP.c.group_id,
        actual.c.state == "actual",
        actual.c.person_id == MEMBERSHIP.c.person_id,
    )
    joined = (
        select(MEMBERSHIP.c.group_id, literal("joined").label("state"), func.count().label("n"))
        .where(chosen, MEMBERSHIP.c.state == "expected", present)
        .group_by(MEMBERSHIP.c.group_id)
        .subquery()
    )
    return per_state, joined


def _forecast(
    conn: Connection,
    bp: Blueprint,
    unit: UnitRef,
    keys: list[str],
    in_tree: ColumnElement[bool],
    on_step: Callable[[int, int], None] | None = None,
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(level, unit, kind) → (shards, expected members) of the required groups that have no
    rows yet, as the planner will shard them: so that 应建 and 应入 are known before anything
    is built, and do not jump when the plan is carried out. Read from the roster, as
    ``qunmatrix plan`` reads it; nothing is written."""
    have = {
        (str(code), str(kind))
        for code, kind in conn.execute(
            select(GROUP.c.unit_code, GROUP.c.kind)
            .select_from(GROUP.join(UNIT, UNIT.c.code == GROUP.c.unit_code))
            .where(UNIT.c.level.in_(keys), in_tree)
            .distinct()
        )
    }
    found = survey(conn, bp, unit.code)
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    total = len(found.targets)
    for i, t in enumerate(found.targets, 1):
        if on_step is not None and (i % STEP_EVERY == 0 or i == total):
            on_step(i, total)
        if not t.required or (t.unit, t.kind) in have:
            continue
        key = (found.view.level(t.unit), t.unit, t.kind)
        shards, people = out.get(key, (0, 0))
        out[key] = (shards + 1, people + len(set(t.members)))
    return out


def _own_groups(
    conn: Connection,
    bp: Blueprint,
    unit: UnitRef,
    forecast: dict[tuple[str, str, str], tuple[int, int]],
) -> list[GroupLine]:
    rows = conn.execute(
        select(GROUP.c.id, GROUP.c.kind, GROUP.c.shard, GROUP.c.name, GROUP.c.room_id).where(
            GROUP.c.unit_code == unit.code
        )
    ).all()
    counts: dict[tuple[int, str], int] = {}
    if rows:
        own = select(GROUP.c.id).where(GROUP.c.unit_code == unit.code)
        for sub in _per_group(own):
            for gid, state, n in conn.execute(select(sub.c.group_id, sub.c.state, sub.c.n)):
                counts[(gid, state)] = int(n)

    specs = {g.key: g for g in bp.groups}
    order = {key: i for i, key in enumerate(bp.group_keys())}
    shards: dict[str, int] = defaultdict(int)
    for r in rows:
        shards[r[1]] += 1
    lines = []
    for gid, kind, shard, name, room_id in rows:
        spec = specs.get(kind)
        expected = counts.get((gid, "expected"))
        lines.append(
            GroupLine(
                name=name,
                kind=kind,
                kind_label=spec.label if spec else kind,
                composition=bp.describe_members(spec) if spec else "",
                built=room_id is not None,
                optional=spec.optional if spec else True,
                shard=shard,
                shards=shards[kind],
                members=counts.get((gid, "actual"), 0),
                expected=expected,
                missing=expected - counts.get((gid, "joined"), 0) if expected else None,
            )
        )
    for spec in bp.groups_led_by(unit.level):
        if not spec.optional and spec.key not in shards:
            ahead = forecast.get((unit.level, unit.code, spec.key), (0, 0))[1]
            lines.append(
                GroupLine(
                    name=group_name(spec, unit.name, unit.code),
                    kind=spec.key,
                    kind_label=spec.label,
                    composition=bp.describe_members(spec),
                    built=False,
                    optional=False,
                    shard=0,
                    shards=0,
                    members=0,
                    expected=ahead or None,
                    missing=ahead or None,
                )
            )
    lines.sort(key=lambda g: (order.get(g.kind, len(order)), g.shard))
    return lines


def _unbuilt(conn: Connection, bp: Blueprint, unit: UnitRef, keys: list[str]) -> list[UnbuiltUnit]:
    parent = UNIT.alias("parent")
    found: dict[str, UnbuiltUnit] = {}
    sort_key: dict[str, tuple[int, str]] = {}
    for level in keys:
        label = bp.level(level).label
        for spec in bp.groups_led_by(level):
            if spec.optional:
                continue
            of_kind = and_(GROUP.c.unit_code == UNIT.c.code, GROUP.c.kind == spec.key)
            has_built = exists().where(of_kind, GROUP.c.room_id.is_not(None))
            has_unbuilt = exists().where(of_kind, GROUP.c.room_id.is_(None))
            query = (
                select(UNIT.c.code, UNIT.c.name, UNIT.c.path, parent.c.name)
                .select_from(UNIT.outerjoin(parent, parent.c.code == UNIT.c.parent_code))
                .where(
                    UNIT.c.level == level,
                    UNIT.c.removed_at.is_(None),
                    under(UNIT.c.path, unit.path),
                    or_(~has_built, has_unbuilt),
                )
            )
            for code, name, path, parent_name in conn.execute(query):
                entry = found.get(code)
                if entry is None:
                    entry = found[code] = UnbuiltUnit(code, name, level, label, parent_name or "")
                    sort_key[code] = (bp.depth(level), path)
                entry.missing.append(spec.label)
    return sorted(found.values(), key=lambda u: sort_key[u.code])
