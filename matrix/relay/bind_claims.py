"""Binding by phone (``#绑定``) that cannot be guessed into authority, and what offices are told.

A contact that proves a roster phone is bound to that person only when the person's roles carry
no office authority, the person has no contact yet, and the rules put them in the group where
the phone was typed. A person whose roles make them an office is never bound this way: the claim
is held for an office of the same unit or above (``join_review.hold_claim``), asked in that
office's own group, and decided there with ``#同意 N`` / ``#拒绝 N``.

Guessing is bounded: failed attempts are counted per contact and per target person over a
window (``BindLimits``); at the target's limit the target's office is told. Every attempt is an
audit entry, with the phone masked (138****1234) and never in clear.

Whatever the phone named (nobody, several people, someone bound already, someone of another
unit, an office person), the claimant is told the same thing: the reply (``Claim.reply``) is
``received``, which reveals nobody's name, unit or binding. Offices are told in their own group
(``office_room``), never in a room where the claimant sits, so the roster stays with them.
Office messages go through the relay's queue (``matrix.relay.outbox.enqueue``): they commit
with the binding, survive a crash, and can be queued by the CLI for the running bot to send.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select

from matrix import audit_log
from matrix.provisioning import binding, join_review
from matrix.relay.env import RelayEnv
from matrix.relay.outbox import enqueue
from matrix.relay.people import GroupRef, office_groups, office_roles, offices_held, positions, unit
from matrix.relay.people import group as group_by_id
from matrix.roster import clean_phone
from matrix.tables import BIND_ATTEMPT, MEMBERSHIP, PERSON, POSITION

Reply = Literal["bound", "already", "received", "wait"]
# attempts that count against the limits: they did not bind anyone
_FAILED = ("pending", "refused", "limited")
NAME_SHOWN = 32  # characters of a claimant's display name an office is shown


@dataclass(frozen=True)
class BindLimits:
    """Failed ``#绑定`` attempts allowed within ``window_hours``: per contact (then it must
    wait) and per target person (then nobody can bind to them by phone, and their office is
    told). The defaults are far above what a real person needs."""

    per_contact: int = 3
    per_person: int = 5
    window_hours: float = 24.0


@dataclass(frozen=True)
class Claim:
    """The outcome of one ``#绑定``. Only ``reply`` reaches the claimant; the rest is for the
    audit and the office."""

    reply: Reply
    outcome: str  # bound | already | pending | refused | limited
    reason: str  # why, in the audit: none, many, taken, elsewhere, office, target_limit …
    person_id: int | None = None
    request_id: int | None = None
    admitted: tuple[int, ...] = ()


def mask_phone(phone: str) -> str:
    """A phone number as the audit log and offices see it.

    >>> mask_phone("13900000009"), mask_phone("045153603185"), mask_phone("123")
    ('139****0009', '045*****3185', '***')
    """
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


@dataclass(frozen=True)
class PhoneClaim:
    """One ``#绑定`` as typed: by ``contact_id`` (shown as ``name``) in ``group`` (None:
    outside the matrix), under ``limits``; a held claim lapses after ``claim_hours``."""

    contact_id: str
    name: str  # the WeChat display name: anyone's choice, so shown only in part
    phone: str
    group: GroupRef | None
    limits: BindLimits
    claim_hours: float
    now: datetime

    @property
    def since(self) -> datetime:
        """Where the window the limits count in begins."""
        return self.now - timedelta(hours=self.limits.window_hours)


def claim_by_phone(conn: Connection, env: RelayEnv, ask: PhoneClaim) -> Claim:
    """Bind, hold a claim for an office, or refuse; record the attempt."""
    masked = mask_phone(ask.phone)
    if binding.lookup(conn, ask.contact_id) is not None:
        claim = Claim("already", "already", "already_bound")
    elif _failures(conn, BIND_ATTEMPT.c.contact_id == ask.contact_id, ask.since) >= (
        ask.limits.per_contact
    ):
        claim = Claim("wait", "limited", "contact_limit")
    else:
        claim = _judge(conn, env, ask)
    _record(conn, ask, claim, masked)
    if claim.outcome in ("pending", "refused") and claim.person_id is not None:
        failed = _failures(conn, BIND_ATTEMPT.c.person_id == claim.person_id, ask.since)
        if failed == ask.limits.per_person:
            tell_office(
                conn,
                env,
                claim.person_id,
                "limit",
                avoid_rooms=_room_ids(ask.group),
                avoid_contact=ask.contact_id,
                count=failed,
                hours=ask.limits.window_hours,
                phone=masked,
                contact=ask.contact_id,
                group=ask.group.name if ask.group else "",
            )
    return claim


def _judge(conn: Connection, env: RelayEnv, ask: PhoneClaim) -> Claim:
    holders = binding.phone_holders(conn, clean_phone(ask.phone) or ask.phone)
    if len(holders) != 1:
        return Claim("received", "refused", "many" if holders else "none")
    person = holders[0]
    if _failures(conn, BIND_ATTEMPT.c.person_id == person, ask.since) >= ask.limits.per_person:
        return Claim("received", "limited", "target_limit", person)
    refused = _refusal(conn, env, ask.contact_id, person, ask.group)
    if refused:
        return Claim("received", "refused", refused, person)
    assert ask.group is not None
    if offices_held(conn, env.blueprint, person):
        return _hold(conn, env, ask, ask.group, person)
    binding.bind(conn, ask.contact_id, person, "phone", ask.contact_id)
    # held when they joined as a stranger: now known, they are let in where they belong
    admitted = join_review.admit_bound(
        conn, env.blueprint, ask.contact_id, now=ask.now, actor=ask.contact_id
    )
    tell_office(
        conn,
        env,
        person,
        "bound",
        avoid_rooms=_room_ids(ask.group),
        contact=ask.contact_id,
        path=binding.PATHS["phone"],
        group=ask.group.name,
    )
    return Claim("bound", "bound", "phone", person, admitted=tuple(admitted))


def _refusal(
    conn: Connection, env: RelayEnv, contact_id: str, person: int, group: GroupRef | None
) -> str:
    """Why ``contact_id`` may not take ``person`` by phone here; '' when it may."""
    if group is None:
        return "no_group"  # a claim is only believable where the person belongs
    if binding.has_history(conn, contact_id):
        return "history"  # replaced or revoked: only an office binds it again
    current = binding.contacts_of(conn, [person]).get(person)
    if current is not None and current != contact_id:
        return "taken"
    if not join_review.is_expected(conn, env.blueprint, group.id, person):
        return "elsewhere"
    return ""


def _hold(conn: Connection, env: RelayEnv, ask: PhoneClaim, group: GroupRef, person: int) -> Claim:
    """The person is an office: hold the claim for an office of their unit or above."""
    offices = offices_held(conn, env.blueprint, person)
    found = office_room(
        conn, env, offices[0].code, avoid_rooms=_room_ids(group), avoid=ask.contact_id
    )
    if found is None:
        return Claim("received", "refused", "no_office_group", person)
    room, _ = found
    request_id, fresh = join_review.hold_claim(
        conn,
        group_id=room.id,
        from_group_id=group.id,
        contact_id=ask.contact_id,
        name=ask.name[:NAME_SHOWN],
        person_id=person,
        now=ask.now,
        hours=ask.claim_hours,
        actor=ask.contact_id,
    )
    if fresh:
        _queue(
            conn,
            env,
            room,
            "claim",
            person,
            number=request_id,
            contact=ask.contact_id,
            contact_name=ask.name[:NAME_SHOWN],
            phone=mask_phone(ask.phone),
            group=group.name,
            hours=ask.claim_hours,
        )
    return Claim("received", "pending", "office", person, request_id)


def office_room(
    conn: Connection,
    env: RelayEnv,
    unit_code: str,
    *,
    avoid_rooms: Collection[str] = (),
    avoid: str | None = None,
) -> tuple[GroupRef, str] | None:
    """Where to tell the office of ``unit_code``: the first group, going up from the unit,
    that the unit (or the nearest unit above) leads and that is not in ``avoid_rooms`` and
    does not seat the contact ``avoid``; with the code of the unit whose group it is."""
    code: str | None = unit_code
    while code is not None:
        here = unit(conn, code)
        if here is None:
            return None
        for group in office_groups(conn, env.blueprint, code):
            if group.room_id in avoid_rooms:
                continue
            if avoid is not None and _seated(conn, group.id, avoid):
                continue
            return group, code
        code = here.parent_code
    return None


def tell_office(
    conn: Connection,
    env: RelayEnv,
    person_id: int,
    event: str,
    *,
    avoid_rooms: Collection[str] = (),
    avoid_contact: str | None = None,
    **context: Any,
) -> GroupRef | None:
    """Tell the office of ``person_id``'s unit (in its own group, see ``office_room``) about a
    binding ``event`` (bound, revoked, limit); the group told, or None when none can be."""
    places = positions(conn, person_id)
    if not places:
        return None
    found = office_room(conn, env, places[0][0].code, avoid_rooms=avoid_rooms, avoid=avoid_contact)
    if found is None:
        return None
    room, _ = found
    _queue(conn, env, room, event, person_id, **context)
    return room


def tell_claimant(conn: Connection, env: RelayEnv, request: join_review.Request) -> None:
    """The office confirmed a claim: say so where it was made, naming nobody."""
    if request.from_group_id is None:
        return
    where = group_by_id(conn, request.from_group_id)
    if where.room_id is None:
        return
    enqueue(
        conn,
        env,
        key=f"binding:confirmed:{request.id}",
        kind="binding",
        group=where,
        template="relay/binding.j2",
        context={"event": "confirmed"},
        mentions=[request.contact_id],
    )


def _queue(
    conn: Connection,
    env: RelayEnv,
    room: GroupRef,
    event: str,
    person_id: int,
    **context: Any,
) -> None:
    places = positions(conn, person_id)
    name = conn.execute(select(PERSON.c.name).where(PERSON.c.id == person_id)).scalar() or ""
    unit_name = places[0][0].name if places else ""
    enqueue(
        conn,
        env,
        key=f"binding:{event}:{uuid.uuid4().hex}",
        kind="binding",
        group=room,
        template="relay/binding.j2",
        context={"event": event, "person_name": name, "unit_name": unit_name, **context},
        mentions=list(office_contacts(conn, env, room.unit_code)),
    )


def office_contacts(conn: Connection, env: RelayEnv, unit_code: str) -> tuple[str, ...]:
    """Contact ids of the unit's office (its admin roles), to @-mention them: each person's
    bound contact, else their 微信号."""
    here = unit(conn, unit_code)
    if here is None:
        return ()
    roles = office_roles(env.blueprint).get(here.level, frozenset())
    persons = [
        int(r[0])
        for r in conn.execute(
            select(POSITION.c.person_id)
            .where(POSITION.c.unit_code == unit_code, POSITION.c.role.in_(sorted(roles)))
            .order_by(POSITION.c.seq, POSITION.c.person_id)
        )
    ]
    reach = binding.contacts_of(conn, persons)
    return tuple(dict.fromkeys(reach[p] for p in persons if p in reach))


def _seated(conn: Connection, group_id: int, contact_id: str) -> bool:
    found = conn.execute(
        select(MEMBERSHIP.c.id).where(
            MEMBERSHIP.c.group_id == group_id,
            MEMBERSHIP.c.contact_id == contact_id,
            MEMBERSHIP.c.state == "actual",
        )
    ).first()
    return found is not None


def _room_ids(group: GroupRef | None) -> tuple[str, ...]:
    return (group.room_id,) if group is not None and group.room_id else ()


def _failures(conn: Connection, who: Any, since: datetime) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                who, BIND_ATTEMPT.c.at >= since, BIND_ATTEMPT.c.outcome.in_(_FAILED)
            )
        ).scalar_one()
    )


def _record(conn: Connection, ask: PhoneClaim, claim: Claim, masked: str) -> None:
    row = {"at": ask.now, "contact_id": ask.contact_id, "person_id": claim.person_id}
    conn.execute(insert(BIND_ATTEMPT), [{**row, "outcome": claim.outcome}])
    group = ask.group
    audit_log.record(
        conn,
        ask.contact_id,
        "binding.attempt",
        group.unit_code if group else None,
        outcome=claim.outcome,
        reason=claim.reason,
        phone=masked,
        person=claim.person_id,
        request=claim.request_id,
        group=group.id if group else None,
    )
