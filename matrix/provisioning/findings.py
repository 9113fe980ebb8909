"""The audit: what is wrong with the matrix today, as findings with a stable code.

Each finding names the unit (its code), the group (its room name), the person (roster id) where
one is concerned, a severity, and the details its fix advice needs; the advice itself, in
Chinese, is a template per code (``templates/findings/<CODE>.j2``, rendered by
``bot.render.findings``). Codes are stable: scripts and summaries count them. The catalogue
``KINDS`` lists every code with its severity.

=====================  ========  ===========================================================
code                   severity  meaning
=====================  ========  ===========================================================
GROUP_MISSING          error     a unit has not built a group the blueprint requires
NO_RESPONSIBLE_PERSON  error     nobody on the roster can be the group's 专人负责
NO_ADMIN               error     none of the expected admins is an admin of the room
OVER_CAPACITY          error     the room holds more than WeChat's cap (or the pinned alone do)
UNKNOWN_MEMBER         warning   in the room, bound to no roster person
STALE_MEMBER           warning   in the room, no longer on the roster
WRONG_GROUP            warning   in the room, but belongs in another group (or shard)
DUPLICATE_MEMBER       warning   the same person twice in a room, or in two shards of a group
MISSING_MEMBER         warning   expected in the room and not in it
WRONG_ADMIN            warning   an admin of the room who is not an expected admin
QUOTA_SHORT            warning   a unit supplies fewer holders of a role than the quota
NICKNAME_FORMAT        info      群昵称 not in the blueprint's pattern (e.g. 单位-姓名)
EXTRA_MEMBER           info      on the roster, but not expected in this group at all
=====================  ========  ===========================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from matrix.provisioning.membership import MAX_ADMINS, OWNER_SEATS, Survey, Target
from matrix.provisioning.plan import STEP_EVERY
from matrix.provisioning.sharding import group_name
from matrix.tables import PERSON

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class FindingKind:
    """One code of the catalogue and its severity. What people read about it (its title, its
    fix advice over the finding's ``details``) is in ``templates/findings/``."""

    code: str
    severity: str


KINDS: dict[str, FindingKind] = {
    k.code: k
    for k in (
        FindingKind("GROUP_MISSING", "error"),
        FindingKind("NO_RESPONSIBLE_PERSON", "error"),
        FindingKind("NO_ADMIN", "error"),
        FindingKind("OVER_CAPACITY", "error"),
        FindingKind("UNKNOWN_MEMBER", "warning"),
        FindingKind("STALE_MEMBER", "warning"),
        FindingKind("WRONG_GROUP", "warning"),
        FindingKind("DUPLICATE_MEMBER", "warning"),
        FindingKind("MISSING_MEMBER", "warning"),
        FindingKind("WRONG_ADMIN", "warning"),
        FindingKind("QUOTA_SHORT", "warning"),
        FindingKind("NICKNAME_FORMAT", "info"),
        FindingKind("EXTRA_MEMBER", "info"),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong. ``unit`` is a unit code, ``group`` a room name, ``person`` a roster id.

    ``details`` is what the fix advice needs: the unit's name (``unit``) and code
    (``unit_code``), ``group``, the person's name (``person``, "" for none), ``contact``, the
    advice's ``variant`` (None for the plain one) and the code's own facts (counts, roles, the
    other room). The renderer (``bot.render.findings``) turns it into words."""

    code: str
    severity: str
    unit: str
    group: str | None
    person: int | None
    contact: str | None = None
    person_name: str = ""
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def who(self) -> str:
        """The person as a reader knows them: the roster name, else the WeChat contact."""
        return self.person_name or self.contact or ""


@dataclass(slots=True)
class _Raw:
    code: str
    unit: str
    group: str | None
    person: int | None
    contact: str | None
    details: dict[str, Any]


def audit(
    conn: Connection, survey: Survey, on_step: Callable[[int, int], None] | None = None
) -> list[Finding]:
    """Every finding in the scope of ``survey``, unit by unit as the tree goes.
    ``on_step`` hears (groups audited, groups in all)."""
    raws = list(_collect(survey, on_step))
    names = person_names(conn, (r.person for r in raws if r.person is not None))
    view = survey.view
    out = []
    for r in raws:
        person = names.get(r.person, f"人员{r.person}") if r.person is not None else ""
        details = {
            "unit": view.name(r.unit) if r.unit in view.units else r.unit,
            "unit_code": r.unit,
            "group": r.group or "",
            "person": person,
            "contact": r.contact or "",
            "variant": None,
            **r.details,
        }
        out.append(
            Finding(
                r.code,
                KINDS[r.code].severity,
                r.unit,
                r.group,
                r.person,
                contact=r.contact,
                person_name=person,
                details=details,
            )
        )
    return sorted(out, key=_order(survey))


def person_names(conn: Connection, ids: Iterable[int]) -> dict[int, str]:
    """Roster names of the persons ``ids`` (a finding or a plan names only a few)."""
    out: dict[int, str] = {}
    ordered = sorted(set(ids))
    for i in range(0, len(ordered), 500):
        out.update(
            (int(p), str(n))
            for p, n in conn.execute(
                select(PERSON.c.id, PERSON.c.name).where(PERSON.c.id.in_(ordered[i : i + 500]))
            )
        )
    return out


def _order(survey: Survey) -> Any:
    """Sort key: the tree order of the leading unit (a school's findings go with its county),
    then severity."""
    rank: dict[str, int] = {}
    for t in survey.targets:
        rank.setdefault(t.unit, len(rank))
    for e in survey.expectations:
        rank.setdefault(e.unit, len(rank))
    severity = {s: i for i, s in enumerate(SEVERITIES)}
    view = survey.view

    def key(f: Finding) -> tuple[int, int]:
        place = rank.get(f.unit)
        if place is None:
            up = view.parent(f.unit) if f.unit in view.units else None
            place = rank.get(up or "", len(rank))
        return place, severity[f.severity]

    return key


def _collect(survey: Survey, on_step: Callable[[int, int], None] | None = None) -> Iterator[_Raw]:
    bp, view = survey.bp, survey.view
    role_label = {r.key: r.label for r in bp.roles}
    short: dict[tuple[str, str], list[Any]] = {}
    for s in survey.shortfalls:
        short.setdefault((s.leader, s.kind), []).append(s)
    targets: dict[tuple[str, str], list[Target]] = {}
    for t in survey.targets:
        targets.setdefault((t.unit, t.kind), []).append(t)
    overfull = {(e.unit, e.spec.key) for e in survey.overfull}
    strays: list[tuple[Target, int, str | None]] = []
    total = len(survey.expectations)
    for i, exp in enumerate(survey.expectations, 1):
        if on_step is not None and (i % STEP_EVERY == 0 or i == total):
            on_step(i, total)
        key = (exp.unit, exp.spec.key)
        base = group_name(exp.spec.name, view.name(exp.unit), exp.unit, 0)
        if exp.spec.responsible is not None and exp.responsible is None:
            role = role_label[exp.spec.responsible.role]
            yield _Raw("NO_RESPONSIBLE_PERSON", exp.unit, base, None, None, {"role": role})
        if key in overfull:
            yield _Raw(
                "OVER_CAPACITY",
                exp.unit,
                base,
                None,
                None,
                {"variant": "pinned", "count": len(exp.pinned), "cap": bp.matrix.max_group_size},
            )
        for s in short.get(key, ()):
            yield _Raw(
                "QUOTA_SHORT",
                s.unit,
                base,
                None,
                None,
                {"role": role_label[s.role], "have": s.have, "need": s.need},
            )
        seen_in: dict[int, str] = {}
        admin_roles = list(dict.fromkeys(role_label[sel.role] for sel in exp.spec.admins))
        everywhere = set(exp.pinned)  # expected in every shard: not a duplicate there
        for t in targets.get(key, []):
            if t.built:
                yield from _room(survey, t, seen_in, everywhere, strays, admin_roles)
            elif t.required:
                yield _Raw("GROUP_MISSING", t.unit, t.name, None, None, {})
    yield from _strays(survey, strays)


def _room(
    survey: Survey,
    t: Target,
    seen_in: dict[int, str],
    everywhere: set[int],
    strays: list[tuple[Target, int, str | None]],
    admin_roles: list[str],
) -> Iterator[_Raw]:
    """Findings about one room that exists."""
    assert t.room is not None
    bp, actual = survey.bp, survey.actual
    gid = t.room.id
    seats = actual.seats.get(gid, [])
    expected = set(t.members)
    admins = set(t.admins)
    approved = actual.approved.get(gid, set())
    held = actual.held.get(gid, set())
    pattern = re.compile(bp.matrix.nickname_pattern)
    count = len(seats) + OWNER_SEATS
    if count > bp.matrix.max_group_size:
        yield _Raw(
            "OVER_CAPACITY",
            t.unit,
            t.name,
            None,
            None,
            {"count": count, "cap": bp.matrix.max_group_size},
        )
    here: set[int] = set()
    has_admin = False
    for pid, cid, is_admin, nickname in seats:
        if pid is None:
            if cid in approved:
                continue
            yield _Raw(
                "UNKNOWN_MEMBER",
                t.unit,
                t.name,
                None,
                cid,
                {"variant": "held" if cid in held else None, "nickname": nickname or ""},
            )
            if is_admin:
                yield _Raw("WRONG_ADMIN", t.unit, t.name, None, cid, {})
            continue
        if pid in here:
            yield _Raw("DUPLICATE_MEMBER", t.unit, t.name, pid, cid, {})
            continue
        here.add(pid)
        if pid in seen_in and pid not in everywhere:
            other = seen_in[pid]
            yield _Raw(
                "DUPLICATE_MEMBER", t.unit, t.name, pid, cid, {"variant": "shards", "other": other}
            )
        seen_in.setdefault(pid, t.name)
        if is_admin:
            if pid in admins:
                has_admin = True
            else:
                yield _Raw("WRONG_ADMIN", t.unit, t.name, pid, cid, {})
        if pid not in expected:
            if cid not in approved:
                strays.append((t, pid, cid))
            continue
        if not pattern.match(nickname or ""):
            yield _Raw(
                "NICKNAME_FORMAT",
                t.unit,
                t.name,
                pid,
                cid,
                {
                    "variant": None if nickname else "unset",
                    "hint": bp.matrix.nickname_hint,
                    "nickname": nickname or "",
                },
            )
    if not has_admin:
        yield _Raw(
            "NO_ADMIN",
            t.unit,
            t.name,
            None,
            None,
            {"variant": _no_admin_variant(t, survey), "roles": admin_roles, "most": MAX_ADMINS},
        )
    invited = actual.invited.get(gid, set())
    unreachable = survey.view.unreachable
    for pid in t.members:
        if pid not in here:
            variant = "invited" if pid in invited else "unreachable" if pid in unreachable else None
            yield _Raw("MISSING_MEMBER", t.unit, t.name, pid, None, {"variant": variant})


def _no_admin_variant(t: Target, survey: Survey) -> str | None:
    """Why a room has no admin: nobody on the roster to be one, nobody the bots can reach
    (no 微信号, no binding: automatic setting cannot help), or simply not yet appointed."""
    if not t.admins:
        return "none"
    if all(pid in survey.view.unreachable for pid in t.admins):
        return "unreachable"
    return None


def _strays(survey: Survey, strays: list[tuple[Target, int, str | None]]) -> Iterator[_Raw]:
    """Members a room should not have: left the roster, belong elsewhere, or nowhere."""
    wanted = {pid for _, pid, _ in strays}
    where: dict[int, Target] = {}
    if wanted:
        for t in survey.targets:
            for pid in t.members:
                if pid in wanted:
                    where.setdefault(pid, t)
    for t, pid, cid in strays:
        if pid in survey.actual.removed:
            yield _Raw("STALE_MEMBER", t.unit, t.name, pid, cid, {})
        elif pid in where:
            yield _Raw("WRONG_GROUP", t.unit, t.name, pid, cid, {"home": where[pid].name})
        else:
            yield _Raw("EXTRA_MEMBER", t.unit, t.name, pid, cid, {})
