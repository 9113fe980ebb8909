"""The rooms as the platform last showed them: who is actually in each group.

``sync_members`` stores a room's member list, read from the platform, as Membership rows with
state "actual" (contacts resolved to roster persons through ``matrix.provisioning.binding``); invitations sent
but not yet accepted are rows with state "invited". ``ActualState`` reads all of that back for
one scope as plain tuples, for the planner and the auditor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from matrix.db import raw_rows
from matrix.models import utcnow
from matrix.platform import Member, Platform
from matrix.platform import Room as PlatformRoom
from matrix.provisioning.binding import resolve
from matrix.tables import GROUP, JOIN_REQUEST, MEMBERSHIP, PERSON, SEEN_ROOM, UNIT
from matrix.tree import within_path

# A bot account's own seat in a group is a membership row of its own state, not "actual":
# people's actual memberships are rewritten by every sync of a room (which leaves the bots
# out), counted in the summaries (人数) and checked by the audit, none of which is about bots.
ACCOUNT_SEAT = "account"

Seat = tuple[int | None, str | None, bool, str | None]  # person, contact, is admin, 群昵称
CHUNK = 500  # ids per IN (...) list


@dataclass(slots=True)
class Room:
    """A group row: a room the bots run (``room_id``), or one planned but not yet created."""

    id: int
    unit: str
    kind: str
    shard: int
    name: str
    room_id: str | None
    owner: str | None
    adopted: bool = False  # built by a person and adopted (认领): the bots may lack rights there
    bot_admin: bool = False  # a bot account is an admin of the room (as last read)


@dataclass
class ActualState:
    """The known rooms of one scope and who is in them."""

    rooms: dict[tuple[str, str], list[Room]] = field(default_factory=dict)
    seats: dict[int, list[Seat]] = field(default_factory=dict)
    invited: dict[int, set[int]] = field(default_factory=dict)
    approved: dict[int, set[str]] = field(default_factory=dict)  # kept by an admin's decision
    held: dict[int, set[str]] = field(default_factory=dict)  # awaiting an admin's decision
    removed: set[int] = field(default_factory=set)  # seated persons no longer on the roster
    bots: frozenset[str] = frozenset()

    def present(self, group_id: int) -> Iterator[int]:
        """Roster persons in the room or invited to it."""
        for pid, *_ in self.seats.get(group_id, ()):
            if pid is not None:
                yield pid
        yield from self.invited.get(group_id, ())

    @classmethod
    def load(
        cls,
        conn: Connection,
        scope: str | None,
        *,
        bots: Collection[str] = (),
    ) -> ActualState:
        """Rooms led by units in the subtree of ``scope`` (None: everywhere)."""
        state = cls(bots=frozenset(bots))
        head = None
        if scope is not None:
            head = conn.execute(
                select(UNIT.c.path, UNIT.c.parent_code).where(UNIT.c.code == scope)
            ).first()
        rooms_q = select(
            GROUP.c.id,
            GROUP.c.unit_code,
            GROUP.c.kind,
            GROUP.c.shard,
            GROUP.c.name,
            GROUP.c.room_id,
            GROUP.c.owner_account,
            GROUP.c.adopted_at,
        ).order_by(GROUP.c.unit_code, GROUP.c.kind, GROUP.c.shard)
        seats_q = select(
            MEMBERSHIP.c.group_id,
            MEMBERSHIP.c.state,
            MEMBERSHIP.c.person_id,
            MEMBERSHIP.c.contact_id,
            MEMBERSHIP.c.is_admin,
            MEMBERSHIP.c.nickname,
        ).where(MEMBERSHIP.c.state.in_(("actual", "invited")))
        join_q = select(
            JOIN_REQUEST.c.group_id, JOIN_REQUEST.c.contact_id, JOIN_REQUEST.c.status
        ).where(JOIN_REQUEST.c.status.in_(("approved", "held")))
        if head is not None and head.parent_code is not None:
            rooms_q = rooms_q.join(UNIT, UNIT.c.code == GROUP.c.unit_code).where(
                within_path(UNIT.c.path, head.path, conn.dialect.name)
            )
        adopted: dict[int, Room] = {}
        for gid, unit, kind, shard, name, room_id, owner, adopted_at in conn.execute(rooms_q):
            room = Room(gid, unit, kind, shard, name, room_id, owner, adopted_at is not None)
            state.rooms.setdefault((unit, kind), []).append(room)
            if room.adopted:
                adopted[gid] = room
        if not state.rooms:
            return state
        ids = sorted(adopted)
        for i in range(0, len(ids), CHUNK):  # the bots' rights, where they may lack them
            for (gid,) in conn.execute(
                select(MEMBERSHIP.c.group_id).where(
                    MEMBERSHIP.c.group_id.in_(ids[i : i + CHUNK]),
                    MEMBERSHIP.c.state == "account",
                    MEMBERSHIP.c.is_admin.is_(True),
                )
            ):
                adopted[gid].bot_admin = True
        chunks: list[Any]
        joins: list[Any]
        if head is None or head.parent_code is None:
            chunks = [seats_q]
            joins = [join_q]
        else:  # by group id: a join on the unit path lets SQLite scan every membership row
            ids = sorted(r.id for rooms in state.rooms.values() for r in rooms)
            parts = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
            chunks = [seats_q.where(MEMBERSHIP.c.group_id.in_(p)) for p in parts]
            joins = [join_q.where(JOIN_REQUEST.c.group_id.in_(p)) for p in parts]
        seated: set[int] = set()
        for query in chunks:
            for gid, st, pid, cid, admin, nick in raw_rows(conn, query):
                if st == "actual":
                    state.seats.setdefault(gid, []).append((pid, cid, bool(admin), nick))
                    if pid is not None:
                        seated.add(pid)
                elif pid is not None:
                    state.invited.setdefault(gid, set()).add(pid)
        for query in joins:
            for gid, cid, status in conn.execute(query):
                (state.approved if status == "approved" else state.held).setdefault(gid, set()).add(
                    cid
                )
        state.removed = _removed(conn, seated)
        return state


def _removed(conn: Connection, persons: set[int]) -> set[int]:
    out: set[int] = set()
    ids = sorted(persons)
    for i in range(0, len(ids), CHUNK):
        out.update(
            int(r[0])
            for r in conn.execute(
                select(PERSON.c.id).where(
                    PERSON.c.id.in_(ids[i : i + CHUNK]), PERSON.c.removed_at.is_not(None)
                )
            )
        )
    return out


@dataclass(frozen=True)
class SyncResult:
    """What changed in a room since it was last read."""

    joined: list[str]
    left: list[str]
    unknown: list[str]  # contacts in the room bound to no roster person


def sync_members(
    conn: Connection,
    group_id: int,
    members: Sequence[Member],
    *,
    bots: Collection[str] = (),
    actor: str = "platform",
) -> SyncResult:
    """Make the stored actual members of ``group_id`` exactly ``members`` (the bots left out),
    in the caller's transaction. Contacts are resolved to roster persons; an invitation that
    was accepted stops being pending."""
    people = [m for m in members if m.contact_id not in bots]
    known = resolve(conn, people, actor)
    before = {
        r[0]
        for r in conn.execute(
            select(MEMBERSHIP.c.contact_id).where(
                MEMBERSHIP.c.group_id == group_id, MEMBERSHIP.c.state == "actual"
            )
        )
    }
    conn.execute(
        delete(MEMBERSHIP).where(MEMBERSHIP.c.group_id == group_id, MEMBERSHIP.c.state == "actual")
    )
    _store_seats(conn, group_id, people, known)
    now_in = {m.contact_id for m in people}
    return SyncResult(
        joined=sorted(now_in - before),
        left=sorted(before - now_in),
        unknown=sorted(m.contact_id for m in people if m.contact_id not in known),
    )


def seat(
    conn: Connection,
    group_id: int,
    members: Sequence[Member],
    *,
    bots: Collection[str] = (),
    actor: str = "platform",
) -> None:
    """Someone joined a room: add them to its stored actual members (between two full reads
    of the room by ``sync_members``), in the caller's transaction."""
    people = [m for m in members if m.contact_id not in bots]
    if not people:
        return
    known = resolve(conn, people, actor)
    seated = {
        r[0]
        for r in conn.execute(
            select(MEMBERSHIP.c.contact_id).where(
                MEMBERSHIP.c.group_id == group_id,
                MEMBERSHIP.c.state == "actual",
                MEMBERSHIP.c.contact_id.in_([m.contact_id for m in people]),
            )
        )
    }
    fresh = {m.contact_id: m for m in people if m.contact_id not in seated}
    _store_seats(conn, group_id, list(fresh.values()), known)


def _store_seats(
    conn: Connection, group_id: int, members: Sequence[Member], known: dict[str, int]
) -> None:
    """Store ``members`` as actual members of the room; the invitations of those who are
    roster persons are accepted."""
    now = utcnow()
    if members:
        conn.execute(
            insert(MEMBERSHIP),
            [
                {
                    "group_id": group_id,
                    "state": "actual",
                    "person_id": known.get(m.contact_id),
                    "contact_id": m.contact_id,
                    "is_admin": m.is_admin or m.is_owner,
                    "nickname": m.nickname or None,
                    "source": "platform",
                    "updated_at": now,
                }
                for m in members
            ],
        )
    persons = [known[m.contact_id] for m in members if m.contact_id in known]
    for i in range(0, len(persons), CHUNK):
        conn.execute(
            delete(MEMBERSHIP).where(
                MEMBERSHIP.c.group_id == group_id,
                MEMBERSHIP.c.state == "invited",
                MEMBERSHIP.c.person_id.in_(persons[i : i + CHUNK]),
            )
        )


def unseat(conn: Connection, group_id: int, contact_ids: Collection[str]) -> None:
    """Someone left a room (or was removed): drop them from its stored actual members."""
    if contact_ids:
        conn.execute(
            delete(MEMBERSHIP).where(
                MEMBERSHIP.c.group_id == group_id,
                MEMBERSHIP.c.state == "actual",
                MEMBERSHIP.c.contact_id.in_(sorted(contact_ids)),
            )
        )


async def refresh_rooms(
    platform: Platform,
    engine: Engine,
    *,
    bots: Collection[str] = (),
    only: Collection[int] | None = None,
) -> dict[int, SyncResult]:
    """Read every room this account is in that the matrix knows (or only the groups ``only``),
    and store its topic and members (one transaction per room, in a thread: the chat goes on
    meanwhile). Every room the account sits in is recorded too (``record_rooms``), matrix
    group or not."""
    bots = {*bots, platform.account_id}
    known = await asyncio.to_thread(_known_rooms, engine)
    out: dict[int, SyncResult] = {}
    rooms = await platform.list_rooms()
    await asyncio.to_thread(store_rooms, engine, platform.account_id, rooms)
    for room in rooms:
        gid = known.get(room.room_id)
        if gid is None or (only is not None and gid not in only):
            continue
        members = await platform.list_members(room.room_id)
        out[gid] = await asyncio.to_thread(_store_room, engine, gid, room.topic, members, bots)
    return out


def _known_rooms(engine: Engine) -> dict[str, int]:
    query = select(GROUP.c.id, GROUP.c.room_id).where(GROUP.c.room_id.is_not(None))
    with engine.connect() as conn:
        return {r.room_id: r.id for r in conn.execute(query)}


def store_rooms(engine: Engine, account_id: str, rooms: list[PlatformRoom]) -> None:
    """``record_rooms`` in a transaction of its own (for a thread: the loop goes on)."""
    with engine.begin() as conn:  # every room it sits in, for adopting the ones built by hand
        record_rooms(conn, account_id, rooms)


def _store_room(
    engine: Engine, gid: int, topic: str, members: list[Member], bots: Collection[str]
) -> SyncResult:
    with engine.begin() as conn:
        conn.execute(update(GROUP).where(GROUP.c.id == gid).values(name=topic))
        return sync_members(conn, gid, members, bots=bots)


def recorded_rooms(conn: Connection) -> list[tuple[int, str, str, str | None]]:
    """(group id, name, room id, owner account) of every group the database records a room
    for, in the order the groups were made."""
    rows = conn.execute(
        select(GROUP.c.id, GROUP.c.name, GROUP.c.room_id, GROUP.c.owner_account)
        .where(GROUP.c.room_id.is_not(None))
        .order_by(GROUP.c.id)
    ).all()
    return [(int(gid), str(name), str(room), owner) for gid, name, room, owner in rows]


def recorded_seats(conn: Connection) -> list[tuple[int, str, str | None, bool, str | None]]:
    """(group id, contact id, group nickname, is admin, roster name or None) of every member
    last seen in a group, in the order they were recorded."""
    rows = conn.execute(
        select(
            MEMBERSHIP.c.group_id,
            MEMBERSHIP.c.contact_id,
            MEMBERSHIP.c.nickname,
            MEMBERSHIP.c.is_admin,
            PERSON.c.name,
        )
        .select_from(MEMBERSHIP.outerjoin(PERSON, PERSON.c.id == MEMBERSHIP.c.person_id))
        .where(MEMBERSHIP.c.state == "actual", MEMBERSHIP.c.contact_id.is_not(None))
        .order_by(MEMBERSHIP.c.id)
    ).all()
    return [(int(g), str(c), nick, bool(admin), name) for g, c, nick, admin, name in rows]


def record_rooms(
    conn: Connection, account_id: str, rooms: Iterable[PlatformRoom], *, now: datetime | None = None
) -> int:
    """Replace what is known of the rooms ``account_id`` sits in with ``rooms`` (as it just
    listed them). Returns how many."""
    at = now or utcnow()
    rows = {
        r.room_id: {
            "account_id": account_id,
            "room_id": r.room_id,
            "topic": r.topic[:128],
            "member_count": r.member_count,
            "seen_at": at,
        }
        for r in rooms
    }
    conn.execute(delete(SEEN_ROOM).where(SEEN_ROOM.c.account_id == account_id))
    if rows:
        conn.execute(insert(SEEN_ROOM), list(rows.values()))
    return len(rows)


def seen_room_count(conn: Connection) -> int:
    """How many distinct rooms the bot accounts were last seen sitting in."""
    return int(conn.execute(select(func.count(func.distinct(SEEN_ROOM.c.room_id)))).scalar_one())
