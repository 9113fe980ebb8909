"""Adoption (认领): a room somebody built by hand becomes one expected matrix group.

In the field most of the matrix already exists, built by each office from its own WeChat.
``adopt`` records such a room as the group the planner would have built (unit, kind, shard),
so that everything downstream (audit, plan, relay, 附件2) treats it as built: the plan then
repairs it (rename, remove, invite, appoint) and never rebuilds it. ``read_members`` stores the
room's member list at once, so the audit sees it; ``unadopt`` undoes an adoption.

In an adopted room the bots are usually neither owner nor admin. The planner knows which steps
need which rights (``plan.NEEDS``: remove and rename an admin, appointing an admin the owner)
and sets aside those the bots cannot do there; ``owner_requests`` lists them per room as
requests to the room's owner and admins. A request is derived from the plan, so it is listed
until a later read of the room shows it done. ``ask_owner`` keeps what was asked (so that one
message asks it once, and again only when something new appears) and ``settle_requests``
clears what a read of the room shows done.

A room outside the matrix hears the bot once: ``greet`` says whether it has introduced itself
there yet (remembered across restarts).

``match_rooms`` pairs the rooms the bot accounts sit in (``record_rooms``, read by every
``refresh_rooms``) with the expected group names, tolerating how people write them (一群, 1群,
（一）, spaces, full-width brackets, no 群 at the end), for ``qunmatrix adopt --match``.

Who may adopt is not decided here: the chat and CLI layers check authority first.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from matrix import audit_log
from matrix.blueprint import Blueprint, GroupSpec
from matrix.db import inserted_id
from matrix.errors import MatrixError, UnknownUnit
from matrix.models import utcnow
from matrix.numerals import chinese_number
from matrix.platform import Member
from matrix.provisioning.actual import ACCOUNT_SEAT, ActualState, SyncResult, sync_members
from matrix.provisioning.membership import OWNER_SEATS, RosterView, expect, roles_needed
from matrix.provisioning.plan import NEEDS, Plan, may
from matrix.provisioning.sharding import assign_shards, group_name
from matrix.tables import (
    GROUP,
    MEMBERSHIP,
    OWNER_REQUEST,
    PROVISION_STEP,
    ROOM_GREETING,
    SEEN_ROOM,
    UNIT,
)

__all__ = [
    "NEEDS",
    "adopt",
    "ask_owner",
    "greet",
    "match_rooms",
    "may",
    "owner_requests",
    "read_members",
    "settle_requests",
    "unadopt",
]
WHERE = "认领"
ADOPTED_INSTEAD = "已认领手工建立的群，无需再建"


@dataclass(frozen=True)
class Adopted:
    """A room recorded as a matrix group."""

    group_id: int
    unit: str
    kind: str
    shard: int
    name: str  # the name the blueprint expects
    room_id: str


def adopt(
    conn: Connection,
    bp: Blueprint,
    room_id: str,
    unit_code: str,
    kind: str | None,
    shard: int | None,
    actor: str,
    *,
    topic: str | None = None,
    now: datetime | None = None,
) -> Adopted:
    """Record ``room_id`` as ``unit_code``'s group ``kind``, shard ``shard`` (None: the only
    one), in the caller's transaction, audit-logged. ``kind`` may be None when the unit leads
    exactly one required group not yet built, or when ``topic`` names one of its groups (then
    its shard too, unless given). ``topic``: the room's name as it is now (the plan renames it
    when it differs from the expected name); default the expected name. With ``kind`` None, a
    topic naming only other units' groups is refused: the room is most likely theirs."""
    unit = conn.execute(
        select(UNIT.c.name, UNIT.c.level).where(
            UNIT.c.code == unit_code, UNIT.c.removed_at.is_(None)
        )
    ).first()
    if unit is None:
        raise UnknownUnit(unit_code)
    led = bp.groups_led_by(unit.level)
    if not led:
        raise MatrixError(f"{unit.name}不牵头任何群", where=WHERE, fix="请由牵头建群的单位认领本群")
    rows = conn.execute(
        select(GROUP.c.id, GROUP.c.kind, GROUP.c.shard, GROUP.c.room_id, GROUP.c.name).where(
            GROUP.c.unit_code == unit_code
        )
    ).all()
    already = conn.execute(
        select(GROUP.c.unit_code, GROUP.c.name).where(GROUP.c.room_id == room_id)
    ).first()
    if already is not None:  # said first: whatever else was typed, this room is taken
        raise _room_taken(already.name)
    if kind is None and topic:  # the room's name says which group it is, or whose
        kind, shard = _kind_in_topic(conn, bp, unit_code, unit.name, topic, shard)
    spec = _spec(bp, unit.name, led, kind, {r.kind for r in rows if r.room_id is not None})
    shards = expected_shards(conn, bp, unit_code, spec)
    mine = {r.shard: r for r in rows if r.kind == spec.key}
    shards |= set(mine)
    shard = _chosen_shard(unit.name, spec, shards, shard)
    expected = group_name(spec.name, unit.name, unit_code, shard)
    row = mine.get(shard)
    at = now or utcnow()
    values = {
        "room_id": room_id,
        "name": topic or expected,
        "adopted_at": at,
        "adopted_by": actor,
        "owner_account": None,
    }
    gid = _store_group(conn, row, unit_code, spec.key, shard, expected, values, at)
    audit_log.record(
        conn,
        actor,
        "group.adopt",
        unit_code,
        room=room_id,
        kind=spec.key,
        shard=shard,
        topic=topic or expected,
    )
    return Adopted(gid, unit_code, spec.key, shard, expected, room_id)


def _kind_in_topic(
    conn: Connection, bp: Blueprint, unit_code: str, unit_name: str, topic: str, shard: int | None
) -> tuple[str | None, int | None]:
    """The group kind (and shard, unless given) ``topic`` names for ``unit_code``; (None,
    ``shard``) when it names no group; ``MatrixError`` when it names only other units'."""
    named = topic_names(conn, bp, topic)
    mine = {(spec.key, n) for code, spec, n in named if code == unit_code}
    if len(mine) == 1:
        [(kind, in_topic)] = mine
        return kind, shard if shard is not None else in_topic
    others = sorted({code for code, _, _ in named if code != unit_code})
    if not mine and others:
        names = dict(
            conn.execute(select(UNIT.c.code, UNIT.c.name).where(UNIT.c.code.in_(others[:5]))).all()
        )
        whose = "、".join(names.get(c, c) for c in others[:5])
        raise MatrixError(
            f"群名“{topic[:50]}”是{whose}的群，不是{unit_name}的",
            where=WHERE,
            fix=f"请由{whose}的办公室认领；如本群确是{unit_name}的群，请写明群类型",
        )
    return None, shard


def topic_names(conn: Connection, bp: Blueprint, topic: str) -> list[tuple[str, GroupSpec, int]]:
    """The expected groups a room's name names, however it is written (``name_key``): (unit
    code, group, shard), one per unit of that name at the level leading the group."""
    words, shard = name_key(topic)
    found: list[tuple[str, GroupSpec, int]] = []
    for spec in bp.groups:
        suffix, _ = name_key(group_name(spec.name, "", "", 0))
        if not suffix or not words.endswith(suffix):
            continue
        prefix = words[: len(words) - len(suffix)]
        per_unit = "{unit.name}" in spec.name
        if per_unit != bool(prefix):
            continue  # a unit's group names its unit; a group of the top unit names none
        query = select(UNIT.c.code).where(UNIT.c.level == spec.led_by, UNIT.c.removed_at.is_(None))
        if per_unit:
            query = query.where(UNIT.c.name == prefix)
        found.extend((code, spec, shard) for (code,) in conn.execute(query))
    return found


def _chosen_shard(unit_name: str, spec: GroupSpec, shards: set[int], shard: int | None) -> int:
    """The shard ``shard`` names among ``shards`` (None: the only one)."""
    if shard is None:
        if len(shards) > 1:
            raise MatrixError(
                f"{unit_name}的{spec.label}分为 {len(shards)} 个群",
                where=WHERE,
                fix="请写明分群号，例如 #认领 " + spec.label + " 1",
            )
        shard = min(shards)
    elif shard not in shards:
        if shard == 1 and shards == {0}:
            shard = 0  # people call the only room 一群
        else:
            have = "、".join(str(s) for s in sorted(shards) if s) or "不分群"
            raise MatrixError(
                f"{unit_name}的{spec.label}没有第 {shard} 群（现有：{have}）",
                where=WHERE,
                fix="请写现有的分群号，或不写分群号",
            )
    return shard


def _store_group(
    conn: Connection,
    row: Any,
    unit_code: str,
    kind: str,
    shard: int,
    expected: str,
    values: dict[str, Any],
    at: datetime,
) -> int:
    """Point the expected group row at the room (or make the row); its id. Two adoptions at
    once of the same room or group: the second is refused like one coming later."""
    taken = MatrixError(
        f"{expected}已有对应的群",
        where=WHERE,
        fix="一个矩阵群只能对应一个群；如需更换，请先在原群发送 #解除认领",
    )
    if row is not None:
        if row.room_id is not None:
            raise taken
        try:
            done = conn.execute(
                update(GROUP)
                .where(GROUP.c.id == row.id, GROUP.c.room_id.is_(None))
                .values(**values)
            )
        except IntegrityError:  # the room was adopted as another group meanwhile
            raise _room_taken() from None
        if done.rowcount != 1:
            raise taken
        gid = int(row.id)
        # a run still owing this group's creation must not build a second room
        conn.execute(
            update(PROVISION_STEP)
            .where(
                PROVISION_STEP.c.group_id == gid,
                PROVISION_STEP.c.action == "create",
                PROVISION_STEP.c.status.in_(("pending", "started")),
            )
            .values(status="failed", error=ADOPTED_INSTEAD, done_at=at)
        )
    else:
        try:
            gid = inserted_id(
                conn.execute(
                    insert(GROUP).values(
                        unit_code=unit_code, kind=kind, shard=shard, created_at=at, **values
                    )
                )
            )
        except IntegrityError:  # the group or the room was adopted meanwhile
            raise taken from None
    return gid


def _room_taken(name: str = "") -> MatrixError:
    return MatrixError(
        f"本群已登记为“{name}”" if name else "本群已登记为矩阵群",
        where=WHERE,
        fix="一个群只能登记为一个矩阵群；如登记有误，请先发送 #解除认领",
    )


def _spec(
    bp: Blueprint, unit_name: str, led: list[GroupSpec], kind: str | None, built: set[str]
) -> GroupSpec:
    if kind is not None:
        for spec in led:
            if kind in (spec.key, spec.label):
                return spec
        raise MatrixError(
            f"{unit_name}不牵头“{kind}”",
            where=WHERE,
            fix="可认领的群类型：" + "、".join(s.label for s in led),
        )
    open_ = [s for s in led if not s.optional and s.key not in built]
    if len(open_) == 1:
        return open_[0]
    raise MatrixError(
        f"{unit_name}牵头的群中有 {len(open_)} 个尚未建立" if open_ else f"{unit_name}的群都已建立",
        where=WHERE,
        fix="请写明群类型，例如 #认领 "
        + led[0].label
        + "（可选："
        + "、".join(s.label for s in led)
        + "）",
    )


def expected_shards(conn: Connection, bp: Blueprint, unit_code: str, spec: GroupSpec) -> set[int]:
    """The shards the rules split ``unit_code``'s group ``spec`` into ({0}: one room)."""
    view = RosterView.load(conn, unit_code, roles=roles_needed(bp, [spec]))
    exp = expect(view, bp, unit_code, spec, [])
    room = max(1, bp.matrix.max_group_size - OWNER_SEATS - len(exp.pinned))
    actual = ActualState.load(conn, unit_code)
    rooms = actual.rooms.get((unit_code, spec.key), [])
    prior: dict[int, int] = {}
    for r in rooms:
        for pid in actual.present(r.id):
            prior.setdefault(pid, r.shard)
    return set(assign_shards(exp.blocks, room, prior, {r.shard for r in rooms}))


def unadopt(conn: Connection, room_id: str, actor: str, *, now: datetime | None = None) -> Adopted:
    """Undo ``adopt``: the group is no longer built (its row, notices and receipts stay), the
    room's stored members are dropped. Only an adopted room can be released: a room the bots
    built stays theirs."""
    row = conn.execute(
        select(
            GROUP.c.id,
            GROUP.c.unit_code,
            GROUP.c.kind,
            GROUP.c.shard,
            GROUP.c.name,
            GROUP.c.adopted_at,
        ).where(GROUP.c.room_id == room_id)
    ).first()
    if row is None:
        raise MatrixError("本群没有登记为矩阵群", where="解除认领", fix="无需解除")
    if row.adopted_at is None:
        raise MatrixError(
            f"“{row.name}”是机器人建立的群，不是认领的",
            where="解除认领",
            fix="只有认领的群可以解除认领",
        )
    conn.execute(
        delete(MEMBERSHIP).where(
            MEMBERSHIP.c.group_id == row.id,
            MEMBERSHIP.c.state.in_(("actual", "invited", ACCOUNT_SEAT)),
        )
    )
    conn.execute(delete(OWNER_REQUEST).where(OWNER_REQUEST.c.group_id == row.id))
    conn.execute(
        update(GROUP)
        .where(GROUP.c.id == row.id)
        .values(room_id=None, adopted_at=None, adopted_by=None, owner_account=None)
    )
    audit_log.record(
        conn, actor, "group.unadopt", row.unit_code, room=room_id, kind=row.kind, shard=row.shard
    )
    return Adopted(int(row.id), row.unit_code, row.kind, row.shard, row.name, room_id)


def read_members(
    conn: Connection,
    group_id: int,
    members: Sequence[Member],
    *,
    bots: Collection[str],
    actor: str = "platform",
    now: datetime | None = None,
) -> SyncResult:
    """Store a room's member list as the platform gave it: people as actual memberships
    (``actual.sync_members``), the bot accounts in it as their seats, with their rights there
    (admin, and the owning account), so that the audit and ``owner_requests`` see it at once."""
    result = sync_members(conn, group_id, members, bots=bots, actor=actor)
    seated = [m for m in members if m.contact_id in bots]
    conn.execute(
        delete(MEMBERSHIP).where(
            MEMBERSHIP.c.group_id == group_id, MEMBERSHIP.c.state == ACCOUNT_SEAT
        )
    )
    at = now or utcnow()
    if seated:
        conn.execute(
            insert(MEMBERSHIP),
            [
                {
                    "group_id": group_id,
                    "state": ACCOUNT_SEAT,
                    "person_id": None,
                    "contact_id": m.contact_id,
                    "is_admin": m.is_admin or m.is_owner,
                    "nickname": None,
                    "source": "platform",
                    "updated_at": at,
                }
                for m in seated
            ],
        )
    owner = next((m.contact_id for m in seated if m.is_owner), None)
    conn.execute(update(GROUP).where(GROUP.c.id == group_id).values(owner_account=owner))
    return result


# --- owner rights -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One step the bots cannot do in a room: ``action`` is remove | set_admin | rename."""

    action: str
    person: int | None = None
    contact: str | None = None
    name: str | None = None  # rename: the name the room should have


@dataclass
class RoomRequests:
    """What to ask the owner and admins of one room (@-mentioned: ``ask``)."""

    group_id: int
    unit: str
    kind: str
    shard: int
    room_id: str
    topic: str
    ask: list[str]  # contact ids of the room's people who are owner or admin
    requests: list[Request] = field(default_factory=list)


def owner_requests(plan: Plan) -> list[RoomRequests]:
    """Per adopted room of ``plan``, the steps the bots have no right to do there (the planner
    set them aside: ``GroupPlan.asks``), as requests to its owner and admins. They come from
    the plan (the rules against the room as last read), so a request the owner did is gone
    once the room is read again."""
    seats = plan.survey.actual.seats
    out: list[RoomRequests] = []
    for g in plan.groups:
        room = g.target.room
        if not g.asks or room is None or room.room_id is None:
            continue
        admins = sorted({cid for _, cid, is_admin, _ in seats.get(room.id, []) if is_admin and cid})
        requests = [
            Request(action, person, contact, g.target.name if action == "rename" else None)
            for action, person, contact in g.asks
        ]
        out.append(
            RoomRequests(
                room.id, room.unit, room.kind, room.shard, room.room_id, room.name, admins, requests
            )
        )
    return out


def _key(r: Request) -> tuple[str, int | None, str | None, str | None]:
    return (r.action, r.person, r.contact, r.name)


def ask_owner(
    conn: Connection,
    rooms: Sequence[RoomRequests],
    actor: str,
    *,
    now: datetime | None = None,
) -> list[RoomRequests]:
    """Keep what each room's owner is asked (``owner_requests`` of a plan being carried out);
    the rooms to ask now: those with a request not asked before, each with all its requests
    (one message lists everything outstanding). A request asked before and gone from the list
    is no longer needed and is dropped, in the caller's transaction; ``actor`` (who gave the
    go-ahead) is audit-logged for each room asked."""
    at = now or utcnow()
    out: list[RoomRequests] = []
    for room in rooms:
        stored = {
            (r.action, r.person_id, r.contact_id, r.name): r.id
            for r in conn.execute(
                select(
                    OWNER_REQUEST.c.id,
                    OWNER_REQUEST.c.action,
                    OWNER_REQUEST.c.person_id,
                    OWNER_REQUEST.c.contact_id,
                    OWNER_REQUEST.c.name,
                ).where(OWNER_REQUEST.c.group_id == room.group_id)
            )
        }
        wanted = {_key(r): r for r in room.requests}
        gone = [rid for key, rid in stored.items() if key not in wanted]
        if gone:
            conn.execute(delete(OWNER_REQUEST).where(OWNER_REQUEST.c.id.in_(gone)))
        new = [r for key, r in wanted.items() if key not in stored]
        if not new:
            continue
        conn.execute(
            insert(OWNER_REQUEST),
            [
                {
                    "group_id": room.group_id,
                    "action": r.action,
                    "person_id": r.person,
                    "contact_id": r.contact,
                    "name": r.name,
                    "asked_at": at,
                }
                for r in new
            ],
        )
        audit_log.record(
            conn,
            actor,
            "group.ask_owner",
            room.unit,
            room=room.room_id,
            asked=len(room.requests),
            new=len(new),
        )
        out.append(room)
    return out


def settle_requests(conn: Connection, group_ids: Collection[int] | None = None) -> int:
    """Drop the stored requests that the rooms, as last read, show done: the person removed is
    gone, the admin appointed is one, the room has the name asked. How many were dropped."""
    query = select(
        OWNER_REQUEST.c.id,
        OWNER_REQUEST.c.group_id,
        OWNER_REQUEST.c.action,
        OWNER_REQUEST.c.person_id,
        OWNER_REQUEST.c.contact_id,
        OWNER_REQUEST.c.name,
        GROUP.c.name.label("topic"),
    ).join(GROUP, GROUP.c.id == OWNER_REQUEST.c.group_id)
    if group_ids is not None:
        query = query.where(OWNER_REQUEST.c.group_id.in_(sorted(group_ids)))
    done: list[int] = []
    for r in conn.execute(query).all():
        seat = and_(MEMBERSHIP.c.group_id == r.group_id, MEMBERSHIP.c.state == "actual")
        if r.action == "rename":
            finished = r.topic == r.name
        elif r.action == "remove":
            finished = (
                conn.execute(
                    select(MEMBERSHIP.c.id).where(seat, MEMBERSHIP.c.contact_id == r.contact_id)
                ).first()
                is None
            )
        else:
            finished = (
                conn.execute(
                    select(MEMBERSHIP.c.id).where(
                        seat,
                        MEMBERSHIP.c.person_id == r.person_id,
                        MEMBERSHIP.c.is_admin.is_(True),
                    )
                ).first()
                is not None
            )
        if finished:
            done.append(int(r.id))
    if done:
        conn.execute(delete(OWNER_REQUEST).where(OWNER_REQUEST.c.id.in_(done)))
    return len(done)


# --- a room outside the matrix ------------------------------------------------------------------


def greet(conn: Connection, room_id: str, account_id: str, *, now: datetime | None = None) -> bool:
    """Whether the bot should introduce itself in ``room_id`` (a room outside the matrix) now:
    True the first time only, and from then on remembered, in the caller's transaction. Two
    accounts invited at once: one insert wins, the other is told False (no error)."""
    upsert = _INSERTS[conn.dialect.name](ROOM_GREETING)
    stmt = (
        upsert.values(room_id=room_id, account_id=account_id, greeted_at=now or utcnow())
        .on_conflict_do_nothing(index_elements=[ROOM_GREETING.c.room_id])
        .returning(ROOM_GREETING.c.room_id)
    )
    return conn.execute(stmt).first() is not None


_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


# --- rooms the bots sit in, and matching them to expected groups -----------------------------------


_NUMERAL = "一二三四五六七八九十"
_BRACKETED = re.compile(rf"^(.*?)\(([{_NUMERAL}]+|\d+)\)$")
_BEFORE_QUN = re.compile(rf"^(.*?)([{_NUMERAL}]+|\d+)群$")
_AFTER_QUN = re.compile(rf"^(.*?群)([{_NUMERAL}]+|\d+)$")
_NOISE = re.compile(r"[\s\-_·•.。,，:：、]+")


def name_key(text: str) -> tuple[str, int]:
    """A room name as (its words, its shard number, 0 when none), however it is written:
    full-width brackets and digits, spaces, 一群 / 1群 / (一) / （一）, no 群 at the end.

    >>> name_key("乙1县少先队大队辅导员二群"), name_key("乙1县 少先队大队辅导员 2群")
    (('乙1县少先队大队辅导员', 2), ('乙1县少先队大队辅导员', 2))
    >>> name_key("省级团委少年部长群（一）"), name_key("省级团委少年部长群1"), name_key("乙县委员")
    (('省级团委少年部长', 1), ('省级团委少年部长', 1), ('乙县委员', 0))
    """
    s = _NOISE.sub("", unicodedata.normalize("NFKC", text))
    s = s.replace("【", "(").replace("】", ")").replace("〔", "(").replace("〕", ")")
    shard = 0
    for pattern in (_BRACKETED, _BEFORE_QUN, _AFTER_QUN):
        found = pattern.match(s)
        if found and found[1]:
            s, shard = found[1], _number(found[2])
            if pattern is _BEFORE_QUN:
                s += "群"
            break
    return s.removesuffix("群"), shard


def _number(text: str) -> int:
    if text.isdigit():
        return int(text)
    for n in range(1, 100):
        if chinese_number(n) == text:
            return n
    return 0


@dataclass(frozen=True)
class Match:
    """A room whose topic names an expected group."""

    room_id: str
    topic: str
    unit: str
    unit_name: str
    kind: str
    label: str
    shard: int
    expected: str  # the expected name
    confidence: float  # 1.0 the very name; less for a looser way of writing it
    accounts: tuple[str, ...]


def match_rooms(conn: Connection, bp: Blueprint) -> tuple[list[Match], list[tuple[str, str, str]]]:
    """The rooms the bots sit in (``record_rooms``) that are no matrix group yet, whose topic
    names exactly one expected group of a unit that leads it, at a shard the rules give it;
    and the doubtful ones, never adopted by matching: (room id, topic, why), a topic that
    names the groups of several units of the same name, or a shard the group does not have."""
    levels = {s.led_by for s in bp.groups}
    by_key: dict[str, list[tuple[str, str, GroupSpec]]] = {}
    units = conn.execute(
        select(UNIT.c.code, UNIT.c.name, UNIT.c.level).where(
            UNIT.c.level.in_(sorted(levels)), UNIT.c.removed_at.is_(None)
        )
    ).all()
    for code, name, level in units:
        for spec in bp.groups_led_by(level):
            words, _ = name_key(group_name(spec.name, name, code, 0))
            by_key.setdefault(words, []).append((code, name, spec))
    taken = {
        r[0] for r in conn.execute(select(GROUP.c.room_id).where(GROUP.c.room_id.is_not(None)))
    }
    built = {
        (r.unit_code, r.kind, r.shard)
        for r in conn.execute(
            select(GROUP.c.unit_code, GROUP.c.kind, GROUP.c.shard).where(
                GROUP.c.room_id.is_not(None)
            )
        )
    }
    rooms: dict[str, tuple[str, list[str]]] = {}
    for account, room_id, topic in conn.execute(
        select(SEEN_ROOM.c.account_id, SEEN_ROOM.c.room_id, SEEN_ROOM.c.topic).order_by(
            SEEN_ROOM.c.room_id, SEEN_ROOM.c.account_id
        )
    ):
        rooms.setdefault(room_id, (topic, []))[1].append(account)
    matches: list[Match] = []
    doubtful: list[tuple[str, str, str]] = []
    shards_of: dict[tuple[str, str], set[int]] = {}
    for room_id, (topic, accounts) in rooms.items():
        if room_id in taken:
            continue
        words, shard = name_key(topic)
        found = by_key.get(words, [])
        if len(found) > 1:
            names = "、".join(f"{name}（{code}）" for code, name, _ in found[:5])
            doubtful.append((room_id, topic, f"可对应多个同名单位的群：{names}"))
            continue
        if not found:
            continue
        code, name, spec = found[0]
        if (code, spec.key) not in shards_of:
            shards_of[(code, spec.key)] = expected_shards(conn, bp, code, spec)
        shards = shards_of[(code, spec.key)]
        loose = False
        if shard == 1 and shards == {0}:
            shard, loose = 0, True  # people call the only room 一群
        if shard not in shards:
            have = "、".join(str(s) for s in sorted(shards) if s) or "不分群"
            doubtful.append((room_id, topic, f"{name}的{spec.label}没有这个分群（现有：{have}）"))
            continue
        if (code, spec.key, shard) in built:
            continue
        expected = group_name(spec.name, name, code, shard)
        if topic == expected:
            confidence = 1.0
        elif not loose and _plain(topic) == _plain(expected):
            confidence = 0.9
        else:
            confidence = 0.8
        matches.append(
            Match(
                room_id,
                topic,
                code,
                name,
                spec.key,
                spec.label,
                shard,
                expected,
                confidence,
                tuple(accounts),
            )
        )
    matches.sort(key=lambda m: (m.unit, m.kind, m.shard))
    return matches, doubtful


def _plain(text: str) -> str:
    return _NOISE.sub("", unicodedata.normalize("NFKC", text))
