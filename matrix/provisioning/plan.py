"""The plan: what must be done on the platform to make every room what the rules expect.

For each expected room (``membership.Target``) the plan compares the members it should have with
the members the platform last showed (``actual.ActualState``) and lists, in order: create the
room (with the first members placed directly), rename it, remove who does not belong, invite
who is missing, appoint the admins. ``schedule`` then says which bot account does each step on
which day. A plan is only data (a dry run); ``matrix.provisioning.apply`` carries it out.

Who is removed: contacts bound to no roster person, persons no longer on the roster, persons
expected elsewhere or nowhere, and a second contact of the same person — unless an admin
approved them at join review, or their join is still under review. Persons with neither a 微信号 nor a bound
contact cannot be invited by a bot; they are listed as ``unreachable`` for a person to handle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from matrix.provisioning.membership import OWNER_SEATS, Survey, Target
from matrix.provisioning.schedule import AccountQuota, Job, Placement, Schedule, schedule

STEP_EVERY = 200  # a long step's ``on_step`` hears its count every so many items, and at the end

INVITATION_ABOVE = 40  # WeChat: adding to a room of more than 40 members sends an invitation
ACTIONS = ("create", "rename", "remove", "invite", "set_admin")
# the rights a step needs in a room (the others any member has): in a room a person built and
# the bots adopted, a step they have no right to becomes a request to its owner and admins
OWNER, ADMIN = "owner", "admin"
NEEDS = {"remove": ADMIN, "rename": ADMIN, "set_admin": OWNER}
ACTION_LABELS = {
    "create": "建群",
    "rename": "改群名",
    "remove": "移出",
    "invite": "邀请",
    "set_admin": "设管理员",
}


@dataclass(slots=True)
class GroupPlan:
    """The steps for one expected room, in the order they must happen."""

    target: Target
    create: bool
    rename_from: str | None
    initial: list[int]  # create: persons placed in the room as it is made
    removals: list[tuple[int | None, str]]  # (person or None when unknown, contact id)
    invites: list[tuple[int, bool]]  # (person, needs the invitee to accept)
    admins: list[int]  # persons to appoint
    unreachable: list[int]  # expected, but a bot has no way to reach them
    account: str | None = None  # the owner, when the room has one the scheduler must keep
    # steps the bots have no right to do in this (adopted) room: (action, person, contact),
    # asked of its owner and admins instead (``adopt.owner_requests``); not in ``work``
    asks: list[tuple[str, int | None, str | None]] = field(default_factory=list)

    @property
    def work(self) -> int:
        """Platform operations this group needs."""
        return (
            int(self.create)
            + int(self.rename_from is not None)
            + len(self.removals)
            + len(self.invites)
            + len(self.admins)
        )


@dataclass(frozen=True, slots=True)
class Action:
    """One step on the platform, with who does it and when."""

    action: str
    unit: str
    kind: str
    shard: int
    name: str
    account: str
    day: int
    person: int | None = None
    contact: str | None = None
    members: tuple[int, ...] = ()  # create: the persons placed in the room at once
    invitation: bool = False  # invite: the room is above 40, the invitee must accept
    previous: str | None = None  # rename: the old name

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "unit": self.unit,
            "kind": self.kind,
            "shard": self.shard,
            "name": self.name,
            "account": self.account,
            "day": self.day,
        }
        if self.action == "create":
            out["members"] = list(self.members)
        elif self.action == "rename":
            out["previous"] = self.previous
        else:
            out["person"] = self.person
            if self.contact is not None:
                out["contact"] = self.contact
            if self.action == "invite":
                out["invitation"] = self.invitation
        return out


@dataclass
class Plan:
    """The steps for every room of a scope, and their schedule."""

    survey: Survey
    groups: list[GroupPlan]
    schedule: Schedule
    accounts: list[AccountQuota] = field(default_factory=list)

    @property
    def scope(self) -> str:
        return self.survey.scope

    @property
    def empty(self) -> bool:
        return not any(g.work for g in self.groups)

    def counts(self) -> dict[str, int]:
        """How many steps of each kind."""
        out = dict.fromkeys(ACTIONS, 0)
        for g in self.groups:
            out["create"] += int(g.create)
            out["rename"] += int(g.rename_from is not None)
            out["remove"] += len(g.removals)
            out["invite"] += len(g.invites)
            out["set_admin"] += len(g.admins)
        return out

    def invitations(self) -> int:
        return sum(1 for g in self.groups for _, asks in g.invites if asks)

    def actions(self) -> Iterator[Action]:
        """Every step in plan order, each with its account and day."""
        for g, placement in zip(self.groups, self._placements(), strict=True):
            if placement is None:
                continue
            t, account = g.target, placement.account
            days = placement.each_day()
            if g.create:
                yield _action(t, account, next(days), "create", members=tuple(g.initial))
            if g.rename_from is not None:
                yield _action(t, account, next(days), "rename", previous=g.rename_from)
            for pid, cid in g.removals:
                yield _action(t, account, next(days), "remove", person=pid, contact=cid)
            for pid, asks in g.invites:
                yield _action(t, account, next(days), "invite", person=pid, invitation=asks)
            for pid in g.admins:
                yield _action(t, account, next(days), "set_admin", person=pid)

    def _placements(self) -> Iterator[Placement | None]:
        placements = iter(self.schedule.placements)
        for g in self.groups:
            yield next(placements) if g.work else None

    def scheduled(self) -> Iterator[tuple[GroupPlan, Placement | None]]:
        """Each group's steps with where the schedule put them (None: nothing to do)."""
        return zip(self.groups, self._placements(), strict=True)

    def to_json(self) -> dict[str, Any]:
        """The plan for scripts: groups, actions and schedule (see the README)."""
        s = self.schedule
        return {
            "groups": [
                {
                    "unit": t.unit,
                    "kind": t.kind,
                    "shard": t.shard,
                    "name": t.name,
                    "members": t.members,
                    "admins": t.admins,
                }
                for t in self.survey.targets
            ],
            "actions": [a.to_json() for a in self.actions()],
            "schedule": {
                "days": s.days,
                "lower_bound_days": s.lower_bound,
                "optimal": s.optimal,
                "proof": s.proof,
                "invitations": self.invitations(),
                "accounts": [
                    {
                        "id": a.id,
                        "creations": a.creations,
                        "operations": a.operations,
                        "days": a.days,
                        "seconds": round(a.seconds, 1),
                    }
                    for a in s.accounts
                ],
                "unreachable": [
                    {
                        "unit": g.target.unit,
                        "kind": g.target.kind,
                        "shard": g.target.shard,
                        "person": p,
                    }
                    for g in self.groups
                    for p in g.unreachable
                ],
            },
        }


def _action(t: Target, account: str, day: int, action: str, **extra: Any) -> Action:
    return Action(action, t.unit, t.kind, t.shard, t.name, account, day, **extra)


def build_plan(
    survey: Survey,
    accounts: Sequence[AccountQuota],
    on_step: Callable[[int, int], None] | None = None,
) -> Plan:
    """Compare every expected room of ``survey`` with what the platform showed; schedule the
    difference over ``accounts``. ``on_step`` hears (groups planned, groups in all)."""
    ids = {a.id for a in accounts}
    total = len(survey.targets)
    groups = []
    for i, t in enumerate(survey.targets, 1):
        groups.append(_group_plan(t, survey))
        if on_step is not None and (i % STEP_EVERY == 0 or i == total):
            on_step(i, total)
    for g in groups:
        room = g.target.room
        if room is not None and room.owner in ids:
            g.account = room.owner
    jobs = [Job(g.work, g.create, g.account) for g in groups if g.work]
    return Plan(survey, groups, schedule(jobs, accounts), list(accounts))


def _group_plan(t: Target, survey: Survey) -> GroupPlan:
    if t.built:
        return _room_plan(t, survey)
    unreachable = survey.view.unreachable
    order = list(dict.fromkeys([*t.admins, *t.members]))
    reach = [p for p in order if p not in unreachable]
    seats = INVITATION_ABOVE - OWNER_SEATS
    initial, rest = reach[:seats], reach[seats:]
    size = OWNER_SEATS + len(initial)
    invites = []
    for pid in rest:
        invites.append((pid, size > INVITATION_ABOVE))
        size += 1
    return GroupPlan(
        t,
        create=True,
        rename_from=None,
        initial=initial,
        removals=[],
        invites=invites,
        admins=[a for a in t.admins if a not in unreachable],
        unreachable=[p for p in order if p in unreachable],
    )


def _room_plan(t: Target, survey: Survey) -> GroupPlan:
    """Steps for a room that exists: rename, remove, invite, appoint."""
    assert t.room is not None
    unreachable = survey.view.unreachable
    actual = survey.actual
    gid = t.room.id
    expected = set(t.members)
    approved = actual.approved.get(gid, set())
    held = actual.held.get(gid, set())
    seated: set[int] = set()
    admins_now: set[int] = set()
    removals: list[tuple[int | None, str]] = []
    seats = actual.seats.get(gid, [])
    contacts: set[str] = set()
    for who, cid, is_admin, _ in seats:
        if cid is not None and (cid in approved or cid in held):  # an admin decides
            continue
        if cid is not None:
            if cid in contacts:  # the same contact stored twice is one member, not two
                continue
            contacts.add(cid)
        if who is None or who not in expected or who in seated:
            if cid is not None:
                removals.append((who, cid))
            continue
        seated.add(who)
        if is_admin:
            admins_now.add(who)
    pending = actual.invited.get(gid, set())
    size = OWNER_SEATS + len(seats) - len(removals)
    invites: list[tuple[int, bool]] = []
    unreached: list[int] = []
    for pid in t.members:
        if pid in seated or pid in pending:
            continue
        if pid in unreachable:
            unreached.append(pid)
            continue
        invites.append((pid, size > INVITATION_ABOVE))
        size += 1
    coming = {p for p, _ in invites}
    plan = GroupPlan(
        t,
        create=False,
        rename_from=t.room.name if t.room.name != t.name else None,
        initial=[],
        removals=removals,
        invites=invites,
        admins=[a for a in t.admins if a not in admins_now and (a in seated or a in coming)],
        unreachable=unreached,
    )
    if t.room.adopted:
        _keep_to_rights(plan, t.room.owner is not None, t.room.bot_admin)
    return plan


def may(action: str, owner: bool, admin: bool) -> bool:
    """Whether a bot that owns the room (``owner``) or is an admin of it may do ``action``."""
    need = NEEDS.get(action)
    return need is None or owner or (need == ADMIN and admin)


def _keep_to_rights(g: GroupPlan, owner: bool, admin: bool) -> None:
    """Move the steps the bots have no right to do in an adopted room to ``g.asks``."""
    if g.rename_from is not None and not may("rename", owner, admin):
        g.asks.append(("rename", None, None))
        g.rename_from = None
    if not may("remove", owner, admin):
        g.asks.extend(("remove", p, c) for p, c in g.removals)
        g.removals = []
    if not may("set_admin", owner, admin):
        g.asks.extend(("set_admin", p, None) for p in g.admins)
        g.admins = []


PLAN_TTL = 3600.0  # seconds (the caller's clock) during which a shown plan may be carried out


@dataclass(frozen=True)
class ShownPlan:
    """A plan shown to someone in a room (#建群), waiting for their go-ahead (#确认)."""

    plan: Plan
    unit: str
    shown_at: float


class ShownPlans:
    """The plans shown and not yet carried out, one per (room, asker), each good for ``ttl``
    seconds: conversation state of the planner, kept in the process (a shown plan that is
    lost with a restart is shown again by sending #建群 again; an interrupted apply is a
    recorded run and survives)."""

    def __init__(self, ttl: float = PLAN_TTL) -> None:
        self.ttl = ttl
        self._shown: dict[tuple[str, str], ShownPlan] = {}

    def __len__(self) -> int:
        return len(self._shown)

    def keep(self, room: str, asker: str, plan: Plan, unit: str, at: float) -> None:
        self._shown[(room, asker)] = ShownPlan(plan, unit, at)

    def get(self, room: str, asker: str, at: float) -> ShownPlan | None:
        """The plan shown to ``asker`` in ``room``, unless it was shown too long ago."""
        shown = self._shown.get((room, asker))
        if shown is not None and at - shown.shown_at > self.ttl:
            del self._shown[(room, asker)]
            return None
        return shown

    def drop(self, room: str, asker: str) -> None:
        self._shown.pop((room, asker), None)

    def forget_old(self, at: float) -> int:
        """Drop the plans shown longer than ``ttl`` ago (a national plan is large); how many."""
        old = [k for k, shown in self._shown.items() if at - shown.shown_at > self.ttl]
        for key in old:
            del self._shown[key]
        return len(old)
