"""#认领 and #解除认领 in chat, and how the bot behaves in a room outside the matrix.

``#认领 [单位] [群类型] [分群号]`` records the room it is typed in as one expected group of the
unit (``matrix.provisioning.adopt.adopt``): an office of that unit or above may, by the one
authority policy (a sibling county's office is refused like for every command). The member list
is read from the platform at once, stored (``read_members``), and the room audited, so the
answer says what the audit sees: members on the roster, strangers, who is missing, the admins.
``#解除认领`` undoes it (``unadopt``).

A room outside the matrix hears the bot once: when the bot is brought in (``ARRIVED``), or the
first time someone there sends it a command it will not answer, it introduces itself and says
that the unit's office sends #认领 (``greeting``; remembered in the database, so a restart does
not repeat it). Otherwise it stays quiet there: ``answers_outside`` says what it still answers
(#认领 and #帮助 from anyone, and an office's commands: a matrix with no groups yet is begun
from such a room, #建群 and #确认 by the top unit's office).

Where the bots lack rights in an adopted room (usually: a person built it), ``ask_owners`` turns
the plan's asks into ONE message in that room @-mentioning its owner and admins, with the list
(remove these, appoint these, rename to …). It runs when an office sends #确认 for a plan that
has such asks: that is the office's go-ahead for the repairs, so the group's owner is asked
together with the invitations going out, never behind the office's back at a #核查 or #建群
(which only show them). What was asked is kept (``matrix.provisioning.adopt.ask_owner``): a
second #确认 asks again only when something new appears, and #核查 clears what the re-read
rooms show done (``settle_requests``).

The platform is read before anything is written (nothing waits on the network inside a write),
and the adoption, the read and the audit run in a worker thread with a connection of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from bot.chat.commands import UNIT, Command, Kind, Param, Who, number
from bot.chat.context import Call, Reply, Services
from bot.render.provision import code_totals
from bot.render.templates import render
from matrix.blueprint import Blueprint
from matrix.platform import Member, Platform
from matrix.provisioning.adopt import (
    RoomRequests,
    adopt,
    ask_owner,
    greet,
    owner_requests,
    read_members,
    unadopt,
)
from matrix.provisioning.authority import Asker
from matrix.provisioning.findings import audit, person_names
from matrix.provisioning.membership import survey
from matrix.provisioning.plan import Plan
from matrix.relay.accounts import accounts_in_groups

NAMES_SHOWN = 5  # strangers and missing people named in #认领's answer; the rest are counted
# what the bot answers anyone in a room outside the matrix (an office is answered in full)
ANSWERED_OUTSIDE = frozenset({"adopt", "help"})
# the audit codes #认领's answer lists on their own lines, not among the other findings
LISTED = frozenset({"UNKNOWN_MEMBER", "MISSING_MEMBER"})


def answers_outside(command: Command | None, asker: Asker) -> bool:
    """Whether the bot answers ``command`` from ``asker`` in a room outside the matrix."""
    return command is not None and (command.key in ANSWERED_OUTSIDE or bool(asker.office_units))


def _greet(engine: Engine, room_id: str, account_id: str) -> bool:
    with engine.begin() as conn:
        return greet(conn, room_id, account_id)


async def greeting(core: Services, platform: Platform, room_id: str) -> Reply | None:
    """The bot's introduction in a room outside the matrix, the first time only; else None."""
    first = await core.offload_quick(_greet, core.engine, room_id, platform.account_id)
    return Reply("introduce.j2") if first else None


@dataclass(frozen=True)
class OwnerAsk:
    """One message to the owner and admins of an adopted room, and who may send it."""

    room_id: str
    text: str
    mentions: tuple[str, ...]
    accounts: tuple[str, ...]  # the bot accounts seated in the room


def _owner_asks(engine: Engine, plan: Plan, accounts: frozenset[str], actor: str) -> list[OwnerAsk]:
    """Keep the plan's requests to owners and word those with something new (worker thread)."""
    with engine.begin() as conn:
        rooms = ask_owner(conn, owner_requests(plan), actor)
        if not rooms:
            return []
        names = person_names(conn, [q.person for r in rooms for q in r.requests if q.person])
        seated = accounts_in_groups(conn, accounts, [r.group_id for r in rooms])
    nick = {
        (gid, cid): n
        for gid, seats in plan.survey.actual.seats.items()
        for _, cid, _, n in seats
        if cid
    }
    return [
        OwnerAsk(
            r.room_id,
            render("adopt/owner_request.txt.j2", **_asked(r, names, nick)).strip(),
            tuple(r.ask),
            tuple(seated.get(r.group_id, ())),
        )
        for r in rooms
    ]


def _asked(
    r: RoomRequests, names: dict[int, str], nick: dict[tuple[int, str], str | None]
) -> dict[str, Any]:
    def who(person: int | None, contact: str | None) -> str:
        if person is not None and person in names:
            return names[person]
        return nick.get((r.group_id, contact or "")) or contact or ""

    return {
        "remove": [who(q.person, q.contact) for q in r.requests if q.action == "remove"],
        "admins": [who(q.person, q.contact) for q in r.requests if q.action == "set_admin"],
        "rename": next((q.name for q in r.requests if q.action == "rename"), None),
    }


async def ask_owners(core: Services, plan: Plan, actor: str) -> int:
    """Ask the owner and admins of each adopted room of ``plan`` for what the bots may not do
    there (once; again only when something new appears), on ``actor``'s go-ahead. How many
    rooms were asked."""
    asks = await core.offload(_owner_asks, core.engine, plan, frozenset(core.accounts), actor)
    sent = 0
    for ask in asks:
        platform = core.platform_for(ask.room_id) or next(
            (core.platforms[a] for a in ask.accounts if a in core.platforms), None
        )
        if platform is None:
            continue  # no account of this process sits there: the next #确认 asks again
        await core.outbox.send(platform, ask.room_id, ask.text, ask.mentions)
        sent += 1
    return sent


@dataclass
class AdoptedView:
    """What #认领 answers: the group the room now is and what the audit sees in it."""

    unit: str
    name: str  # the name the blueprint expects
    topic: str  # the room's name as it is
    kind: str
    shard: int
    people: int  # members other than the bots
    matched: int  # of them, roster persons
    strangers: list[str]
    stranger_count: int
    missing: list[str]
    missing_count: int
    admins: list[str]
    bot_rights: str  # owner | admin | none
    others: list[dict[str, Any]] = field(default_factory=list)  # other findings, by code


@dataclass(frozen=True)
class Claim:
    """What #认领 asks for: this room as the unit's group (kind, shard: None to infer them),
    by ``actor``; the room as the platform just showed it."""

    room_id: str
    unit: str
    kind: str | None
    shard: int | None
    actor: str
    topic: str | None
    members: tuple[Member, ...]


def _adopt_and_audit(
    engine: Engine, bp: Blueprint, claim: Claim, bots: frozenset[str]
) -> AdoptedView:
    """#认领's work, in a worker thread: adopt, store the members, audit the unit's groups."""
    unit, topic, members = claim.unit, claim.topic, claim.members
    with engine.begin() as conn:
        done = adopt(
            conn, bp, claim.room_id, unit, claim.kind, claim.shard, claim.actor, topic=topic
        )
        read_members(conn, done.group_id, members, bots=bots, actor=claim.actor)
    with engine.connect() as conn:
        found = audit(conn, survey(conn, bp, unit, bots=bots))
    names = {done.name, topic or done.name}
    mine = [f for f in found if f.group in names]
    people = [m for m in members if m.contact_id not in bots]
    strangers = [f for f in mine if f.code == "UNKNOWN_MEMBER"]
    missing = [f for f in mine if f.code == "MISSING_MEMBER"]
    stranger_ids = {f.contact for f in strangers}
    by_contact = {m.contact_id: m for m in people}
    seated = [m for m in members if m.contact_id in bots]
    rights = (
        "owner"
        if any(m.is_owner for m in seated)
        else "admin"
        if any(m.is_admin for m in seated)
        else "none"
    )
    return AdoptedView(
        unit=unit,
        name=done.name,
        topic=topic or done.name,
        kind=done.kind,
        shard=done.shard,
        people=len(people),
        matched=len(people) - len(stranger_ids),
        strangers=[_shown(by_contact.get(f.contact or ""), f.who) for f in strangers][:NAMES_SHOWN],
        stranger_count=len(strangers),
        missing=[f.who for f in missing][:NAMES_SHOWN],
        missing_count=len(missing),
        admins=[_shown(m, m.contact_id) for m in people if m.is_admin or m.is_owner],
        bot_rights=rights,
        others=code_totals([f for f in mine if f.code not in LISTED]),
    )


def _shown(member: Member | None, fallback: str) -> str:
    """A room member as people there know them: 群昵称, else WeChat name, else the id."""
    if member is None:
        return fallback
    return member.nickname or member.name or member.contact_id


def _kind_and_shard(args: dict[str, Any]) -> tuple[str | None, int | None]:
    """The group type and shard typed; a bare number where the type goes is the shard
    (#认领 2)."""
    kind, shard = args["kind"], args["shard"]
    if kind is not None and shard is None:
        try:
            return None, number(kind)
        except ValueError:
            pass
    return kind, shard


async def adopt_(call: Call) -> Reply:
    """#认领 [单位] [群类型] [分群号]: this room becomes that group of the unit."""
    bot = call.core
    assert call.unit is not None  # an office command always acts on a unit
    kind, shard = _kind_and_shard(call.args)
    room_id = call.message.room_id
    # the platform first: nothing may wait on the network inside a write
    members = await call.platform.list_members(room_id)
    topic = next((r.topic for r in await call.platform.list_rooms() if r.room_id == room_id), None)
    claim = Claim(room_id, call.unit, kind, shard, call.asker.contact_id, topic, tuple(members))
    view = await bot.offload(
        _adopt_and_audit, bot.engine, bot.blueprint, claim, frozenset(bot.accounts)
    )
    return Reply(
        "adopted.j2",
        {"v": view, "unit_name": bot.tree.name(call.unit)},
        audit={"kind": view.kind, "shard": view.shard, "strangers": view.stranger_count},
    )


async def unadopt_(call: Call) -> Reply:
    """#解除认领: this room is no longer the group it was adopted as."""
    done = unadopt(call.conn, call.message.room_id, call.asker.contact_id)
    return Reply("unadopted.j2", {"group": done.name, "unit_name": call.core.tree.name(done.unit)})


ADOPT = Command(
    "adopt",
    "认领",
    "adopt",
    (
        UNIT,
        Param("kind", "群类型", Kind.TEXT, required=False),
        Param("shard", "分群号", Kind.NUMBER, required=False),
    ),
    Who.OFFICE,
    "把本单位已经建好的群登记为群矩阵中的群（读取成员并核查）",
    "#认领 乙1县",
    templates=("adopted.j2",),
    executor=adopt_,
)
UNADOPT = Command(
    "unadopt",
    "解除认领",
    "unadopt",
    (),
    Who.OFFICE,
    "撤销本群的认领，本群不再是群矩阵中的群",
    "#解除认领",
    templates=("unadopted.j2",),
    executor=unadopt_,
)
