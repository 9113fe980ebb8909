"""Acknowledgements (收到) and progress (``#进度``).

A ``收到`` (or ``收到 T12``) from a roster person of a child unit, in a group where the notice was
delivered, marks that unit acknowledged; without an id it answers the latest notice delivered to
that group. Progress counts in SQL, per level: groups delivered / total, units acknowledged /
total, and names the units still missing.

>>> parse_ack("收到"), parse_ack("收到 T12。"), parse_ack("收到，谢谢"), parse_ack("已收到")
(AckRequest(notice_id=None), AckRequest(notice_id=12), None, None)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, func, insert, or_, select

from matrix.blueprint import Blueprint
from matrix.provisioning.authority import OUTSIDE, STRANGER, Who, refusal
from matrix.relay.codes import notice_code, report_code
from matrix.relay.env import RelayEnv
from matrix.relay.errors import UnknownCode, refused
from matrix.relay.people import (
    PersonRef,
    UnitRef,
    group_for_room,
    offices_held,
    person_for_contact,
    positions,
    relay_asker,
    unit,
)
from matrix.relay.targets import answers_for_itself, relay_kinds, self_answering_kinds
from matrix.tables import ACKNOWLEDGEMENT, DELIVERY, GROUP, NOTICE, RELAY_ACCOUNT, REPORT, UNIT

_ACK = re.compile(r"^收到\s*(?:([Tt]?\d{1,9})\s*)?[。.!！~～]*$")


@dataclass(frozen=True)
class AckRequest:
    """A 收到, with the notice it names (None: the latest delivered to the group)."""

    notice_id: int | None


@dataclass(frozen=True)
class AckResult:
    """What a 收到 did: the notice, the units now acknowledged, those that already were."""

    code: str
    units: list[str]
    already: list[str]
    late: bool
    copy_pending: bool = False  # the group's own copy has not arrived yet (an outage)


def parse_ack(text: str) -> AckRequest | None:
    """A 收到 message, or None when the text is anything else."""
    match = _ACK.match(unicodedata.normalize("NFKC", text).strip())
    if match is None:
        return None
    code = match[1]
    return AckRequest(int(code.lstrip("Tt")) if code else None)


def acknowledge(env: RelayEnv, room_id: str, contact_id: str, request: AckRequest) -> AckResult:
    """Record a 收到 said by ``contact_id`` in ``room_id``."""
    now = env.clock.now()
    with env.engine.begin() as conn:
        group = group_for_room(conn, room_id)
        leader = unit(conn, group.unit_code)
        asker = relay_asker(conn, env.blueprint, contact_id)
        reason = refusal(asker, Who.MEMBER)
        if reason is not None or asker.person_id is None or leader is None:
            raise refused("ack", reason or STRANGER)
        person = PersonRef(asker.person_id, asker.person_name)
        itself = answers_for_itself(env.blueprint, group.kind)
        units = [
            u
            for u, _ in positions(conn, person.id)
            if (u.code if itself else u.parent_code) == leader.code
        ]
        units = list({u.code: u for u in units}.values())
        if not units:
            whose = f"{leader.name}本单位" if itself else f"{leader.name}下属单位"
            raise refused("ack", OUTSIDE, unit=whose)
        # a copy held up by an outage still counts: the unit heard of the notice (from a
        # higher group, a colleague), and what it says here is its answer
        owed = select(DELIVERY.c.notice_id, DELIVERY.c.state).where(
            DELIVERY.c.kind == "notice", DELIVERY.c.group_id == group.id
        )
        if request.notice_id is not None:
            hit = conn.execute(owed.where(DELIVERY.c.notice_id == request.notice_id)).first()
            if hit is None:
                raise UnknownCode(
                    f"本群没有收到过通知 {notice_code(request.notice_id)}",
                    fix="请核对通知编号，或直接回复“收到”确认最新一条通知",
                )
        else:
            # a withdrawn notice owes no 收到: the bare word answers the newest one still standing
            standing = owed.where(
                DELIVERY.c.notice_id.in_(select(NOTICE.c.id).where(NOTICE.c.state != "withdrawn"))
            )
            newest = standing.order_by(DELIVERY.c.notice_id.desc()).limit(1)
            hit = conn.execute(newest.where(DELIVERY.c.state == "sent")).first()
            hit = hit or conn.execute(newest).first()
            if hit is None:
                raise UnknownCode("本群还没有需要回执的通知", fix="收到通知后再回复“收到”")
        found = hit.notice_id
        notice = conn.execute(
            select(NOTICE.c.deadline, NOTICE.c.state).where(NOTICE.c.id == found)
        ).one()
        if notice.state == "withdrawn":
            raise UnknownCode(
                f"通知 {notice_code(found)} 已撤回，无需回执", fix="请以发文单位的最新通知为准"
            )
        deadline = notice.deadline
        have = _have(conn, found, units)
        new = [u for u in units if u.code not in have]
        for notice_id in [found, *_carried_to(conn, found)]:
            _record(conn, notice_id, new, group.id, person.id, contact_id, now)
    return AckResult(
        notice_code(found),
        [u.name for u in new],
        [u.name for u in units if u.code in have],
        now > deadline,
        hit.state in ("pending", "sending"),
    )


def _carried_to(conn: Connection, notice_id: int) -> list[int]:
    """The corrections (and corrections of those) whose receipts are this notice's: a 收到 said
    to the original after it was corrected counts for them too, as the correction promised."""
    chain: list[int] = []
    current = notice_id
    while len(chain) < 20:  # bounded: a correction chain longer than this is not a real one
        following = conn.execute(
            select(NOTICE.c.id).where(NOTICE.c.corrects_id == current, NOTICE.c.carries_acks)
        ).scalar()
        if following is None:
            break
        chain.append(following)
        current = following
    return chain


def _have(conn: Connection, notice_id: int, units: list[UnitRef]) -> set[str]:
    """Those of ``units`` that have said 收到 to the notice."""
    return set(
        conn.execute(
            select(ACKNOWLEDGEMENT.c.unit_code).where(
                ACKNOWLEDGEMENT.c.notice_id == notice_id,
                ACKNOWLEDGEMENT.c.unit_code.in_([u.code for u in units]),
            )
        ).scalars()
    )


def _record(
    conn: Connection,
    notice_id: int,
    units: list[UnitRef],
    group_id: int,
    person_id: int,
    contact_id: str,
    at: datetime,
) -> None:
    """The units' 收到 to one notice, skipping those it already has (a correction may hold a
    receipt the unit gave it directly)."""
    have = _have(conn, notice_id, units)
    rows = [
        {
            "notice_id": notice_id,
            "unit_code": u.code,
            "group_id": group_id,
            "person_id": person_id,
            "contact_id": contact_id,
            "at": at,
        }
        for u in units
        if u.code not in have
    ]
    if rows:
        conn.execute(insert(ACKNOWLEDGEMENT), rows)


@dataclass(frozen=True)
class LevelProgress:
    """One level's line of ``#进度``: groups led at this level, units of this level."""

    level: str
    label: str
    groups_sent: int
    groups_total: int
    groups_failed: int
    units_acked: int
    units_total: int
    missing: list[str]
    missing_more: int


@dataclass(frozen=True)
class ReportLine:
    """A report listed under a notice's progress."""

    code: str
    unit_name: str
    sender_name: str
    body: str
    holder_name: str


@dataclass(frozen=True)
class LostAccount:
    """A bot account out of service that owes or owed this notice copies."""

    account: str
    reason: str


@dataclass(frozen=True)
class Progress:
    """``#进度 T12`` as seen from ``scope_name``'s subtree (rendered by ``relay/progress.j2``)."""

    code: str
    unit_name: str
    scope_name: str
    deadline: datetime  # local
    require_ack: bool
    levels: list[LevelProgress]
    failed_groups: list[str]
    reports: list[ReportLine]
    now: datetime  # local
    groups_sent: int
    groups_total: int
    units_acked: int
    units_total: int
    lost_accounts: list[LostAccount] = field(default_factory=list)
    moved_groups: int = 0  # copies another account took over (lost account, left group)
    unserved_groups: list[str] = field(default_factory=list)  # wait for a lost account


def notice_leaders(notice_id: int, kinds: list[str] | None = None) -> Select[tuple[str]]:
    """The units that lead the groups a notice was sent to (of ``kinds`` only, if given)."""
    query = (
        select(GROUP.c.unit_code)
        .join(DELIVERY, DELIVERY.c.group_id == GROUP.c.id)
        .where(DELIVERY.c.notice_id == notice_id, DELIVERY.c.kind == "notice")
    )
    if kinds is not None:
        query = query.where(GROUP.c.kind.in_(kinds))
    return query.distinct()


def expected_units(notice_id: int, scope: UnitRef, bp: Blueprint) -> Select[tuple[str]]:
    """Codes of the units that should acknowledge, in ``scope``: the children of the units
    leading the groups the notice reached, and the leaders themselves of groups answered by
    their own people (``answers_for_itself``); never the issuing unit."""
    itself = self_answering_kinds(bp)
    below = [k for k in relay_kinds(bp) if k not in itself]
    issuer = select(NOTICE.c.unit_code).where(NOTICE.c.id == notice_id).scalar_subquery()
    return select(UNIT.c.code).where(
        or_(
            UNIT.c.parent_code.in_(notice_leaders(notice_id, below)),
            UNIT.c.code.in_(notice_leaders(notice_id, itself)),
        ),
        UNIT.c.code != issuer,
        UNIT.c.removed_at.is_(None),
        UNIT.c.path.startswith(scope.path, autoescape=True),
    )


def _scope(conn: Connection, env: RelayEnv, issuer: UnitRef, asker: str | None) -> UnitRef:
    """The subtree the asker may see: all of it for an office at or above the issuing unit,
    their own part for an office below it."""
    if asker is None:
        return issuer
    person = person_for_contact(conn, asker)
    offices = offices_held(conn, env.blueprint, person.id) if person else []
    for office in offices:
        if office.contains(issuer):
            return issuer
    for office in offices:
        if issuer.contains(office):
            return office
    raise refused("progress", OUTSIDE)


def notice_progress(env: RelayEnv, notice_id: int, *, asker: str | None = None) -> Progress:
    """Progress of a notice; ``asker`` (a contact id) limits it to what they may see."""
    with env.engine.connect() as conn:
        return progress_in(conn, env, notice_id, asker=asker)


def progress_in(
    conn: Connection, env: RelayEnv, notice_id: int, *, asker: str | None = None
) -> Progress:
    """``notice_progress`` inside the caller's transaction."""
    notice, issuer = _notice_and_issuer(conn, notice_id)
    return _progress(conn, env, notice, issuer, _scope(conn, env, issuer, asker))


def progress_within(conn: Connection, env: RelayEnv, notice_id: int, within: UnitRef) -> Progress:
    """A notice's progress as seen from ``within``'s subtree: all of it when ``within`` is at or
    above the issuing unit, ``within``'s own part when it lies below (the summary tables)."""
    notice, issuer = _notice_and_issuer(conn, notice_id)
    return _progress(conn, env, notice, issuer, issuer if within.contains(issuer) else within)


def _notice_and_issuer(conn: Connection, notice_id: int) -> tuple[Any, UnitRef]:
    notice = conn.execute(select(NOTICE).where(NOTICE.c.id == notice_id)).first()
    issuer = unit(conn, notice.unit_code) if notice is not None else None
    if notice is None or issuer is None:
        raise UnknownCode(
            f"没有编号为 {notice_code(notice_id)} 的通知", fix="请核对通知编号（如 T12）"
        )
    return notice, issuer


def _progress(
    conn: Connection, env: RelayEnv, notice: Any, issuer: UnitRef, scope: UnitRef
) -> Progress:
    limit = env.options.list_limit
    notice_id = notice.id
    in_scope = UNIT.c.path.startswith(scope.path, autoescape=True)
    groups = _copies_by_level(conn, notice_id, in_scope)
    expected = expected_units(notice_id, scope, env.blueprint)
    totals, acked = _units_by_level(conn, notice_id, expected)
    levels = []
    for lvl in env.blueprint.levels:
        g = groups.get(lvl.key, {})
        if not g and not totals.get(lvl.key):
            continue
        missing: list[str] = []
        if notice.require_ack and totals.get(lvl.key, 0) > acked.get(lvl.key, 0):
            missing = _unacknowledged(conn, notice_id, expected, lvl.key, limit)
        levels.append(
            LevelProgress(
                lvl.key,
                lvl.label,
                g.get("sent", 0),
                sum(g.values()),
                g.get("failed", 0),
                acked.get(lvl.key, 0),
                totals.get(lvl.key, 0),
                missing,
                totals.get(lvl.key, 0) - acked.get(lvl.key, 0) - len(missing),
            )
        )
    failed = _failed_groups(conn, notice_id, in_scope, limit)
    reports = _reports(conn, notice_id, scope, limit)
    lost, moved, unserved = _accounts_story(conn, notice_id, in_scope, limit)
    return Progress(
        notice_code(notice_id),
        issuer.name,
        scope.name,
        env.local(notice.deadline),
        notice.require_ack,
        levels,
        failed,
        reports,
        env.now(),
        sum(lv.groups_sent for lv in levels),
        sum(lv.groups_total for lv in levels),
        sum(lv.units_acked for lv in levels),
        sum(lv.units_total for lv in levels),
        lost,
        moved,
        unserved,
    )


def _copies_by_level(
    conn: Connection, notice_id: int, in_scope: ColumnElement[bool]
) -> dict[str, dict[str, int]]:
    """Per level of the receiving groups' units, the notice's copies counted by state."""
    groups: dict[str, dict[str, int]] = {}
    for level, state, n in conn.execute(
        select(UNIT.c.level, DELIVERY.c.state, func.count())
        .select_from(
            DELIVERY.join(GROUP, GROUP.c.id == DELIVERY.c.group_id).join(
                UNIT, UNIT.c.code == GROUP.c.unit_code
            )
        )
        .where(DELIVERY.c.notice_id == notice_id, DELIVERY.c.kind == "notice", in_scope)
        .group_by(UNIT.c.level, DELIVERY.c.state)
    ):
        groups.setdefault(level, {})[state] = n
    return groups


def _units_by_level(
    conn: Connection, notice_id: int, expected: Select[tuple[str]]
) -> tuple[dict[str, int], dict[str, int]]:
    """Per level, the units expected to acknowledge, and those that did."""
    totals: dict[str, int] = dict(
        conn.execute(
            select(UNIT.c.level, func.count())
            .where(UNIT.c.code.in_(expected))
            .group_by(UNIT.c.level)
        ).all()
    )
    acked: dict[str, int] = dict(
        conn.execute(
            select(UNIT.c.level, func.count())
            .select_from(ACKNOWLEDGEMENT.join(UNIT, UNIT.c.code == ACKNOWLEDGEMENT.c.unit_code))
            .where(ACKNOWLEDGEMENT.c.notice_id == notice_id, UNIT.c.code.in_(expected))
            .group_by(UNIT.c.level)
        ).all()
    )
    return totals, acked


def _unacknowledged(
    conn: Connection, notice_id: int, expected: Select[tuple[str]], level: str, limit: int
) -> list[str]:
    """The first ``limit`` units of ``level`` that have not acknowledged, in tree order."""
    return list(
        conn.execute(
            select(UNIT.c.name)
            .where(
                UNIT.c.code.in_(expected),
                UNIT.c.level == level,
                ~exists().where(
                    and_(
                        ACKNOWLEDGEMENT.c.notice_id == notice_id,
                        ACKNOWLEDGEMENT.c.unit_code == UNIT.c.code,
                    )
                ),
            )
            .order_by(UNIT.c.path)
            .limit(limit)
        ).scalars()
    )


def _failed_groups(
    conn: Connection, notice_id: int, in_scope: ColumnElement[bool], limit: int
) -> list[str]:
    """The first ``limit`` groups in scope whose copy failed, in tree order."""
    return list(
        conn.execute(
            select(GROUP.c.name)
            .select_from(
                DELIVERY.join(GROUP, GROUP.c.id == DELIVERY.c.group_id).join(
                    UNIT, UNIT.c.code == GROUP.c.unit_code
                )
            )
            .where(
                DELIVERY.c.notice_id == notice_id,
                DELIVERY.c.kind == "notice",
                DELIVERY.c.state == "failed",
            )
            .where(in_scope)
            .order_by(UNIT.c.path)
            .limit(limit)
        ).scalars()
    )


def _accounts_story(
    conn: Connection, notice_id: int, in_scope: Any, limit: int
) -> tuple[list[LostAccount], int, list[str]]:
    """Which bot accounts stopped serving this notice, how many of its copies changed hands,
    and which groups wait for a lost account (no other account is in them)."""
    mine = (
        DELIVERY.join(GROUP, GROUP.c.id == DELIVERY.c.group_id)
        .join(UNIT, UNIT.c.code == GROUP.c.unit_code)
        .outerjoin(RELAY_ACCOUNT, RELAY_ACCOUNT.c.account_id == DELIVERY.c.account_id)
    )
    where = [DELIVERY.c.notice_id == notice_id, DELIVERY.c.kind == "notice", in_scope]
    rows = conn.execute(
        select(
            DELIVERY.c.account_id,
            DELIVERY.c.state,
            DELIVERY.c.tried,
            RELAY_ACCOUNT.c.lost_at,
            GROUP.c.name,
        )
        .select_from(mine)
        .where(*where, (DELIVERY.c.tried != "") | RELAY_ACCOUNT.c.lost_at.is_not(None))
        .order_by(UNIT.c.path)
    ).all()
    moved = sum(1 for r in rows if r.tried and r.state != "failed")
    unserved = [r.name for r in rows if r.state == "pending" and r.lost_at is not None]
    named = {r.account_id for r in rows if r.lost_at is not None}
    named |= {a for r in rows for a in r.tried.split(",") if a}
    lost = [
        LostAccount(r.account_id, r.lost_reason or "")
        for r in conn.execute(
            select(RELAY_ACCOUNT.c.account_id, RELAY_ACCOUNT.c.lost_reason)
            .where(RELAY_ACCOUNT.c.account_id.in_(named), RELAY_ACCOUNT.c.lost_at.is_not(None))
            .order_by(RELAY_ACCOUNT.c.account_id)
        )
    ]
    return lost, moved, unserved[:limit]


def _reports(conn: Connection, notice_id: int, scope: UnitRef, limit: int) -> list[ReportLine]:
    holder = UNIT.alias("holder")
    rows = conn.execute(
        select(
            REPORT.c.id,
            UNIT.c.name,
            REPORT.c.sender_name,
            REPORT.c.body,
            holder.c.name.label("holder_name"),
        )
        .join(UNIT, UNIT.c.code == REPORT.c.unit_code)
        .join(holder, holder.c.code == REPORT.c.holder_unit)
        .where(REPORT.c.notice_id == notice_id, UNIT.c.path.startswith(scope.path, autoescape=True))
        .order_by(REPORT.c.id)
        .limit(limit)
    )
    return [
        ReportLine(report_code(r.id), r.name, r.sender_name, r.body, r.holder_name) for r in rows
    ]


def latest_notice_in_room(env: RelayEnv, room_id: str) -> int:
    """The notice ``#进度`` without an id means: the newest one issued in this group or
    delivered to it."""
    with env.engine.connect() as conn:
        group = group_for_room(conn, room_id)
        issued = select(NOTICE.c.id.label("id")).where(NOTICE.c.group_id == group.id)
        delivered = select(DELIVERY.c.notice_id.label("id")).where(
            DELIVERY.c.group_id == group.id, DELIVERY.c.kind == "notice"
        )
        both = issued.union(delivered).subquery()
        found = conn.execute(select(func.max(both.c.id))).scalar()
    if found is None:
        raise UnknownCode(
            "本群还没有下发或收到过通知", fix="下发通知后再查看进度，或写上编号：#进度 T12"
        )
    return int(found)


def latest_notice_for(conn: Connection, group_id: int, now: datetime) -> int | None:
    """The newest notice delivered to a group whose deadline has not passed."""
    return conn.execute(
        select(DELIVERY.c.notice_id)
        .join(NOTICE, NOTICE.c.id == DELIVERY.c.notice_id)
        .where(
            DELIVERY.c.kind == "notice",
            DELIVERY.c.group_id == group_id,
            DELIVERY.c.state == "sent",
            NOTICE.c.deadline >= now.astimezone(UTC),
        )
        .order_by(DELIVERY.c.notice_id.desc())
        .limit(1)
    ).scalar()


@dataclass(frozen=True)
class Laggard:
    """A unit that owes a 收到."""

    code: str
    name: str
    level: str
    parent_code: str
    path: str


def unacknowledged(
    conn: Connection, notice_id: int, scope: UnitRef, bp: Blueprint
) -> list[Laggard]:
    """The units in ``scope`` that owe a 收到, in tree order."""
    rows = conn.execute(
        select(UNIT.c.code, UNIT.c.name, UNIT.c.level, UNIT.c.parent_code, UNIT.c.path)
        .where(
            UNIT.c.code.in_(expected_units(notice_id, scope, bp)),
            ~exists().where(
                and_(
                    ACKNOWLEDGEMENT.c.notice_id == notice_id,
                    ACKNOWLEDGEMENT.c.unit_code == UNIT.c.code,
                )
            ),
        )
        .order_by(UNIT.c.path)
    )
    return [Laggard(*r) for r in rows]
