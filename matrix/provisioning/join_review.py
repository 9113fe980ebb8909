"""Join review (严格入群人员审核): what to do when someone joins a group.

A roster person expected in the group is welcomed (the bot asks for the 群昵称 format). Anyone
else is held: a ``JoinRequest`` is stored and the room's admins are told; an admin approves
(binding the contact to a roster person, or keeping them as a guest) or rejects (the bot removes
them). A held joiner who binds themselves (their phone) is let in where the rules put them; one
who leaves needs no decision. A request nobody decides on times out by the configured policy:
remove them, keep them, or remind the admins again. Every decision goes to the audit log.

A claim to be a roster person whose roles carry office authority (``#绑定`` with that person's
phone) is held the same way, as a request with reason ``claim`` in the group of the office that
decides it (``hold_claim``): ``#同意 N`` there binds the claimant, ``#拒绝 N`` turns the claim
down. Claims never remove anyone and simply lapse when their time is up.

The functions return data (``JoinDecision``, ``Removal`` …); the bot renders the replies from
``templates/provision/`` and carries out removals through the platform port. Who may approve is
the bot's permission check, not this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from sqlalchemy import Connection, insert, or_, select, update

from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.db import inserted_id
from matrix.errors import MatrixError
from matrix.platform import Member
from matrix.provisioning.binding import bind_by_admin, person_of, resolve
from matrix.provisioning.membership import RosterView, expect
from matrix.tables import GROUP, JOIN_REQUEST, MEMBERSHIP, PERSON

OnTimeout = Literal["remove", "keep", "remind"]
JoinReason = Literal["expected", "approved", "unknown", "not_expected", "stale"]
CLAIM = "claim"  # the reason of a held claim to an office person's identity
_JOINS = JOIN_REQUEST.c.reason != CLAIM


class JoinReviewError(MatrixError):
    """A review action that cannot be done (no such request, already decided …)."""


@dataclass(frozen=True)
class TimeoutPolicy:
    """How long a held joiner waits for an admin, and what happens then."""

    hours: float = 24.0
    on_timeout: OnTimeout = "remove"


@dataclass(frozen=True)
class JoinDecision:
    """The outcome of a join: ``welcome`` (expected here) or ``hold`` (awaiting an admin)."""

    outcome: Literal["welcome", "hold"]
    reason: JoinReason
    group_id: int
    group: str
    unit: str
    contact_id: str
    person_id: int | None
    person_name: str
    nickname_hint: str
    request_id: int | None = None
    notify: tuple[str, ...] = ()  # admins to tell about a held joiner
    expires_at: datetime | None = None
    repeat: bool = False  # held again on a request the admins were told of: say nothing new


@dataclass(frozen=True)
class Removal:
    """Someone the bot must now remove from a room."""

    request_id: int
    room_id: str | None
    contact_id: str
    group: str


@dataclass(frozen=True)
class Timeout:
    """A held request whose time ran out, and what the policy did with it."""

    request_id: int
    action: OnTimeout
    group_id: int
    group: str
    room_id: str | None
    contact_id: str
    name: str
    notify: tuple[str, ...]


@dataclass(frozen=True)
class Request:
    """A join request as the admins see it: ``id`` is the number they type (#同意 3)."""

    id: int
    group_id: int
    contact_id: str
    name: str
    person_id: int | None
    reason: str
    status: str
    from_group_id: int | None = None  # a claim: the group it was made in

    @property
    def is_claim(self) -> bool:
        return self.reason == CLAIM


class NotWaiting(JoinReviewError):
    """The number names no request waiting in this group."""

    def __init__(self, number: int, waiting: Sequence[Request]) -> None:
        listed = "、".join(f"{r.id}（{r.name or r.contact_id}）" for r in waiting) or "无"
        super().__init__(f"本群没有编号为 {number} 的待审核入群人员", fix=f"本群待审核：{listed}")
        self.number = number


_REQUEST = (
    JOIN_REQUEST.c.id,
    JOIN_REQUEST.c.group_id,
    JOIN_REQUEST.c.contact_id,
    JOIN_REQUEST.c.name,
    JOIN_REQUEST.c.person_id,
    JOIN_REQUEST.c.reason,
    JOIN_REQUEST.c.status,
    JOIN_REQUEST.c.from_group_id,
)


def pending(conn: Connection, group_id: int) -> list[Request]:
    """The requests still held in this group, oldest first."""
    query = select(*_REQUEST).where(
        JOIN_REQUEST.c.group_id == group_id, JOIN_REQUEST.c.status == "held"
    )
    return [Request(*r) for r in conn.execute(query.order_by(JOIN_REQUEST.c.id))]


def request_in(conn: Connection, group_id: int, number: int) -> Request:
    """The held request ``number`` of this group; ``NotWaiting`` (listing who is) otherwise."""
    found = conn.execute(
        select(*_REQUEST).where(JOIN_REQUEST.c.id == number, JOIN_REQUEST.c.group_id == group_id)
    ).first()
    if found is None or found.status != "held":
        raise NotWaiting(number, pending(conn, group_id))
    return Request(*found)


def withdraw(
    conn: Connection, group_id: int, contact_ids: Collection[str], *, now: datetime
) -> int:
    """Held joiners who left the group on their own need no decision any more; how many."""
    if not contact_ids:
        return 0
    result = conn.execute(
        update(JOIN_REQUEST)
        .where(
            JOIN_REQUEST.c.group_id == group_id,
            JOIN_REQUEST.c.contact_id.in_(sorted(contact_ids)),
            JOIN_REQUEST.c.status == "held",
            _JOINS,
        )
        .values(status="left", decided_at=now)
    )
    return int(result.rowcount or 0)


def review_join(
    conn: Connection,
    bp: Blueprint,
    group_id: int,
    member: Member,
    *,
    now: datetime,
    policy: TimeoutPolicy = TimeoutPolicy(),
    actor: str = "platform",
) -> JoinDecision:
    """Decide on ``member`` who just joined the room of ``group_id``; record the decision."""
    [decision] = review_joins(conn, bp, group_id, [member], now=now, policy=policy, actor=actor)
    return decision


def review_joins(
    conn: Connection,
    bp: Blueprint,
    group_id: int,
    members: Sequence[Member],
    *,
    now: datetime,
    policy: TimeoutPolicy = TimeoutPolicy(),
    actor: str = "platform",
) -> list[JoinDecision]:
    """Decide on everyone who joined the room of ``group_id`` at once (WeChat reports a batch
    of accepted invitations as one event); record each decision. Someone who joins again while
    still held keeps their request and its number; so does someone who left and comes back
    before that request would have timed out (``repeat``: the admins were told already, and
    join/leave churn must not make a notice, and @-mention them, every time)."""
    unit, kind, name = _group(conn, group_id)
    # a contact its person has replaced (or an office revoked) is a stranger at the door
    known = resolve(conn, members, actor, superseded=False)
    persons = _persons(conn, known.values())
    requests = _latest_requests(conn, group_id, [m.contact_id for m in members], now)
    expected = cache(lambda: _expected(conn, bp, unit, kind))  # read at the first who needs it
    notify: tuple[str, ...] | None = None
    out = []
    for member in members:
        person_id = known.get(member.contact_id)
        person_name, removed = member.name, False
        if person_id is not None:
            person_name, removed = persons.get(person_id, (member.name, False))
        base: dict[str, Any] = {
            "group_id": group_id,
            "group": name,
            "unit": unit,
            "contact_id": member.contact_id,
            "person_id": person_id,
            "person_name": person_name,
            "nickname_hint": bp.matrix.nickname_hint,
        }
        status, request_id = requests.get(member.contact_id, ("", 0))
        reason = _reason(status, person_id, removed, expected)
        if reason in ("expected", "approved"):
            audit_log.record(
                conn,
                actor,
                "join.welcome",
                unit,
                group=group_id,
                contact=member.contact_id,
                person=person_id,
            )
            out.append(JoinDecision("welcome", reason, **base))
            continue
        if notify is None:
            notify = _admins(conn, group_id, {m.contact_id for m in members})
        if status in ("held", "left"):
            out.append(_held_again(conn, request_id, status, base, reason, notify, actor, now))
            continue
        request_id, expires = _hold(
            conn, unit, group_id, member, person_id, reason, policy, actor, now
        )
        out.append(
            JoinDecision(
                "hold", reason, **base, request_id=request_id, notify=notify, expires_at=expires
            )
        )
    return out


def _group(conn: Connection, group_id: int) -> tuple[str, str, str]:
    """The group's unit, kind and name."""
    group = conn.execute(
        select(GROUP.c.unit_code, GROUP.c.kind, GROUP.c.name).where(GROUP.c.id == group_id)
    ).first()
    if group is None:
        raise JoinReviewError(f"找不到群 {group_id}", fix="请先同步群列表")
    unit, kind, name = group
    return unit, kind, name


def _persons(conn: Connection, person_ids: Iterable[int]) -> dict[int, tuple[str, bool]]:
    """person id → (name, whether removed from the roster)."""
    return {
        int(pid): (pname, removed is not None)
        for pid, pname, removed in conn.execute(
            select(PERSON.c.id, PERSON.c.name, PERSON.c.removed_at).where(
                PERSON.c.id.in_(sorted(set(person_ids)))
            )
        )
    }


def _reason(
    status: str, person_id: int | None, removed: bool, expected: Callable[[], set[int]]
) -> JoinReason:
    """Why a joiner is welcomed (``expected``, ``approved``) or held (the others)."""
    if status == "approved":
        return "approved"
    if person_id is None:
        return "unknown"
    if removed:
        return "stale"
    return "expected" if person_id in expected() else "not_expected"


def _hold(
    conn: Connection,
    unit: str,
    group_id: int,
    member: Member,
    person_id: int | None,
    reason: JoinReason,
    policy: TimeoutPolicy,
    actor: str,
    now: datetime,
) -> tuple[int, datetime]:
    """Store a new held request for ``member`` and record it: (its number, its deadline)."""
    expires = now + timedelta(hours=policy.hours)
    request_id = inserted_id(
        conn.execute(
            insert(JOIN_REQUEST).values(
                group_id=group_id,
                contact_id=member.contact_id,
                name=member.name or member.nickname,
                person_id=person_id,
                reason=reason,
                status="held",
                created_at=now,
                expires_at=expires,
                reminders=0,
            )
        )
    )
    audit_log.record(
        conn,
        actor,
        "join.hold",
        unit,
        group=group_id,
        contact=member.contact_id,
        person=person_id,
        reason=reason,
        request=request_id,
    )
    return request_id, expires


def is_expected(conn: Connection, bp: Blueprint, group_id: int, person_id: int) -> bool:
    """Whether the rules put ``person_id`` in the group ``group_id`` (any shard of it)."""
    group = conn.execute(
        select(GROUP.c.unit_code, GROUP.c.kind).where(GROUP.c.id == group_id)
    ).first()
    if group is None or group.kind not in bp.group_keys():
        return False
    return person_id in _expected(conn, bp, group.unit_code, group.kind)


def hold_claim(
    conn: Connection,
    *,
    group_id: int,
    from_group_id: int | None,
    contact_id: str,
    name: str,
    person_id: int,
    now: datetime,
    hours: float,
    actor: str,
) -> tuple[int, bool]:
    """Hold ``contact_id``'s claim to be ``person_id`` for the office whose group is
    ``group_id``: (request number, whether it is new). The same claim made again keeps its
    number, so the office is asked once."""
    held = conn.execute(
        select(JOIN_REQUEST.c.id).where(
            JOIN_REQUEST.c.group_id == group_id,
            JOIN_REQUEST.c.contact_id == contact_id,
            JOIN_REQUEST.c.person_id == person_id,
            JOIN_REQUEST.c.reason == CLAIM,
            JOIN_REQUEST.c.status == "held",
        )
    ).scalar()
    if held is not None:
        return int(held), False
    request_id = inserted_id(
        conn.execute(
            insert(JOIN_REQUEST).values(
                group_id=group_id,
                contact_id=contact_id,
                name=name,
                person_id=person_id,
                reason=CLAIM,
                status="held",
                created_at=now,
                expires_at=now + timedelta(hours=hours),
                reminders=0,
                from_group_id=from_group_id,
            )
        )
    )
    audit_log.record(
        conn,
        actor,
        "binding.claim",
        None,
        request=request_id,
        group=group_id,
        from_group=from_group_id,
        contact=contact_id,
        person=person_id,
    )
    return request_id, True


def _latest_requests(
    conn: Connection, group_id: int, contact_ids: list[str], now: datetime
) -> dict[str, tuple[str, int]]:
    """contact → (status, request id) of the newest request that still counts on joining:
    approved, held, or left before it would have timed out."""
    requests: dict[str, tuple[str, int]] = {}
    # compared in the database, as ``expire`` does: the stored times and ``now`` agree there
    live = or_(JOIN_REQUEST.c.status != "left", JOIN_REQUEST.c.expires_at > now).label("live")
    for rid, cid, status, alive in conn.execute(
        select(JOIN_REQUEST.c.id, JOIN_REQUEST.c.contact_id, JOIN_REQUEST.c.status, live)
        .where(
            JOIN_REQUEST.c.group_id == group_id,
            JOIN_REQUEST.c.contact_id.in_(contact_ids),
            JOIN_REQUEST.c.status.in_(("approved", "held", "left")),
            _JOINS,
        )
        .order_by(JOIN_REQUEST.c.id)
    ):
        if alive:
            requests[cid] = (status, int(rid))
        else:
            requests.pop(cid, None)
    return requests


def _held_again(
    conn: Connection,
    request_id: int,
    status: str,
    base: dict[str, object],
    reason: JoinReason,
    notify: tuple[str, ...],
    actor: str,
    now: datetime,
) -> JoinDecision:
    """The joiner's earlier request holds them again, with its number and its deadline."""
    if status == "left":
        conn.execute(
            update(JOIN_REQUEST)
            .where(JOIN_REQUEST.c.id == request_id)
            .values(status="held", decided_at=None, decided_by=None)
        )
        audit_log.record(
            conn,
            actor,
            "join.rejoin",
            str(base["unit"]),
            group=base["group_id"],
            contact=base["contact_id"],
            request=request_id,
        )
    expires = conn.execute(
        select(JOIN_REQUEST.c.expires_at).where(JOIN_REQUEST.c.id == request_id)
    ).scalar_one()
    return JoinDecision(
        "hold",
        reason,
        **base,  # type: ignore[arg-type]
        request_id=request_id,
        notify=notify,
        expires_at=expires,
        repeat=True,
    )


def _expected(conn: Connection, bp: Blueprint, unit: str, kind: str) -> set[int]:
    """Everyone the rules put in the group (any shard)."""
    return expected_view(conn, bp, unit, kind)[1]


def expected_view(
    conn: Connection, bp: Blueprint, unit: str, kind: str
) -> tuple[RosterView, set[int]]:
    """The part of the roster the group's rules read, and everyone they put in the group (any
    shard): who is welcomed on joining, and whom ``matching`` may suggest for a member."""
    spec = bp.group(kind)
    deep = any(sel.scope == "descendants" for sel in spec.members)
    view = RosterView.load(
        conn, unit, roles={s.role for s in spec.selectors()}, below=None if deep else 1
    )
    exp = expect(view, bp, unit, spec, [])
    return view, {*exp.pinned, *(p for _, people in exp.blocks for p in people)}


def _admins(conn: Connection, group_id: int, besides: Collection[str]) -> tuple[str, ...]:
    found = conn.execute(
        select(MEMBERSHIP.c.contact_id)
        .where(
            MEMBERSHIP.c.group_id == group_id,
            MEMBERSHIP.c.state == "actual",
            MEMBERSHIP.c.is_admin.is_(True),
        )
        .order_by(MEMBERSHIP.c.id)
    )
    return tuple(dict.fromkeys(str(r[0]) for r in found if r[0] not in besides))


def _held(conn: Connection, request_id: int) -> tuple[int, str, str | None, str]:
    row = conn.execute(
        select(JOIN_REQUEST.c.group_id, JOIN_REQUEST.c.contact_id, JOIN_REQUEST.c.status).where(
            JOIN_REQUEST.c.id == request_id
        )
    ).first()
    if row is None:
        raise JoinReviewError(f"没有编号为 {request_id} 的入群申请", fix="请核对编号")
    if row.status != "held":
        raise JoinReviewError(f"入群申请 {request_id} 已处理（{row.status}）", fix="无需再次处理")
    room = conn.execute(
        select(GROUP.c.room_id, GROUP.c.name, GROUP.c.unit_code).where(GROUP.c.id == row.group_id)
    ).first()
    assert room is not None
    return row.group_id, row.contact_id, room.room_id, room.name


def approve(
    conn: Connection, request_id: int, actor: str, *, person_id: int | None, now: datetime
) -> None:
    """An admin lets the held joiner stay: bound to ``person_id`` (or kept as a guest if None).
    For a claim, the office confirms that the claimant is the person claimed."""
    group_id, contact_id, _, _ = _held(conn, request_id)
    claimed = conn.execute(
        select(JOIN_REQUEST.c.person_id).where(
            JOIN_REQUEST.c.id == request_id, JOIN_REQUEST.c.reason == CLAIM
        )
    ).first()
    if claimed is not None:
        if person_id is not None and person_id != claimed.person_id:
            raise JoinReviewError(
                f"绑定申请 {request_id} 申请的是另一位名册人员",
                fix=f"核实无误请只回复 #同意 {request_id}；不是本人请回复 #拒绝 {request_id}",
            )
        person_id = claimed.person_id
    if person_id is not None:
        bind_by_admin(conn, contact_id, person_id, actor)
    _approved(conn, request_id, group_id, contact_id, person_id, actor=actor, now=now)


def _approved(
    conn: Connection,
    request_id: int,
    group_id: int,
    contact_id: str,
    person_id: int | None,
    *,
    actor: str,
    now: datetime,
    unit: str | None = None,
    **detail: object,
) -> None:
    conn.execute(
        update(JOIN_REQUEST)
        .where(JOIN_REQUEST.c.id == request_id)
        .values(status="approved", person_id=person_id, decided_at=now, decided_by=actor)
    )
    audit_log.record(
        conn,
        actor,
        "join.approve",
        unit,
        request=request_id,
        group=group_id,
        contact=contact_id,
        person=person_id,
        **detail,
    )


def admit_bound(
    conn: Connection, bp: Blueprint, contact_id: str, *, now: datetime, actor: str
) -> list[int]:
    """A held joiner has since been bound to a roster person (they confirmed their phone):
    approve their held requests in the groups the rules put that person in, as if they had
    joined bound. Returns the ids of the requests approved."""
    person_id = person_of(conn, contact_id)
    if person_id is None:
        return []
    rows = conn.execute(
        select(JOIN_REQUEST.c.id, JOIN_REQUEST.c.group_id, GROUP.c.unit_code, GROUP.c.kind)
        .join(GROUP, GROUP.c.id == JOIN_REQUEST.c.group_id)
        .where(JOIN_REQUEST.c.contact_id == contact_id, JOIN_REQUEST.c.status == "held", _JOINS)
        .order_by(JOIN_REQUEST.c.id)
    ).all()
    approved = []
    for rid, gid, unit, kind in rows:
        if person_id not in _expected(conn, bp, unit, kind):
            continue
        _approved(
            conn, rid, gid, contact_id, person_id, actor=actor, now=now, unit=unit, by="binding"
        )
        approved.append(int(rid))
    return approved


def reject(conn: Connection, request_id: int, actor: str, *, now: datetime) -> Removal:
    """An admin turns the held joiner away; the bot must remove them (the returned Removal)."""
    group_id, contact_id, room_id, name = _held(conn, request_id)
    conn.execute(
        update(JOIN_REQUEST)
        .where(JOIN_REQUEST.c.id == request_id)
        .values(status="rejected", decided_at=now, decided_by=actor)
    )
    audit_log.record(
        conn, actor, "join.reject", None, request=request_id, group=group_id, contact=contact_id
    )
    return Removal(request_id, room_id, contact_id, name)


def expire(
    conn: Connection, *, now: datetime, policy: TimeoutPolicy, actor: str = "system"
) -> list[Timeout]:
    """Apply ``policy`` to every held request whose time is up; record each."""
    rows = conn.execute(
        select(
            JOIN_REQUEST.c.id,
            JOIN_REQUEST.c.group_id,
            JOIN_REQUEST.c.contact_id,
            JOIN_REQUEST.c.name,
            GROUP.c.room_id,
            GROUP.c.name,
        )
        .join(GROUP, GROUP.c.id == JOIN_REQUEST.c.group_id)
        .where(JOIN_REQUEST.c.status == "held", JOIN_REQUEST.c.expires_at <= now, _JOINS)
        .order_by(JOIN_REQUEST.c.id)
    ).all()
    _lapse_claims(conn, now=now, actor=actor)
    out = []
    for rid, gid, contact, name, room_id, group in rows:
        values: dict[str, object]
        if policy.on_timeout == "remove":
            values = {"status": "timed_out", "decided_at": now, "decided_by": actor}
        elif policy.on_timeout == "keep":
            values = {"status": "approved", "decided_at": now, "decided_by": actor}
        else:
            values = {
                "expires_at": now + timedelta(hours=policy.hours),
                "reminders": JOIN_REQUEST.c.reminders + 1,
            }
        conn.execute(update(JOIN_REQUEST).where(JOIN_REQUEST.c.id == rid).values(**values))
        audit_log.record(
            conn,
            actor,
            "join.timeout",
            None,
            request=rid,
            group=gid,
            contact=contact,
            policy=policy.on_timeout,
        )
        out.append(
            Timeout(
                rid,
                policy.on_timeout,
                gid,
                group,
                room_id,
                contact,
                name,
                _admins(conn, gid, {contact}),
            )
        )
    return out


def _lapse_claims(conn: Connection, *, now: datetime, actor: str) -> None:
    """Claims nobody decided on in time lapse: the claimant may ask again (within the limits)."""
    due = conn.execute(
        select(JOIN_REQUEST.c.id, JOIN_REQUEST.c.contact_id, JOIN_REQUEST.c.person_id).where(
            JOIN_REQUEST.c.status == "held",
            JOIN_REQUEST.c.expires_at <= now,
            JOIN_REQUEST.c.reason == CLAIM,
        )
    ).all()
    for rid, contact, person in due:
        conn.execute(
            update(JOIN_REQUEST)
            .where(JOIN_REQUEST.c.id == rid)
            .values(status="timed_out", decided_at=now, decided_by=actor)
        )
        audit_log.record(
            conn, actor, "binding.claim_lapsed", None, request=rid, contact=contact, person=person
        )
