"""Building the matrix in the simulated WeChat the way it is built for real: plan, apply.

``build_matrix`` plans every group of a scope (``matrix.provisioning.plan``), carries the plan out through
the simulated accounts (``matrix.provisioning.apply``) one simulated day at a time, as each account's daily
quotas allow, lets the invited people accept, and reads the rooms back into the database
(``matrix.provisioning.actual``). The demo, ``qunmatrix console --provision``, ``qunmatrix provision`` in
embedded mode, the conversation tests and the benchmarks all build their groups with it.

``mirror_rooms`` goes the other way: it recreates, in a fresh simulated WeChat, the rooms a
database already records (a console started again over the same database).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from bot.platforms.simulated import SimCalendar, SimulatedAccount, SimulatedWeChat
from matrix.blueprint import Blueprint
from matrix.provisioning.actual import recorded_rooms, recorded_seats, refresh_rooms
from matrix.provisioning.apply import ApplyReport, apply_plan
from matrix.provisioning.membership import survey
from matrix.provisioning.plan import Plan, build_plan
from matrix.provisioning.schedule import AccountQuota
from matrix.relay.people import roster_wechat_ids

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class BuildReport:
    """What building a scope took: its plan, and what each simulated day's apply did."""

    plan: Plan
    days: list[ApplyReport] = field(default_factory=list)
    accepted: int = 0  # invitations accepted once the apply was done

    @property
    def rooms(self) -> int:
        """Rooms the plan created."""
        return self.plan.counts()["create"]

    @property
    def steps(self) -> int:
        return sum(r.done + r.confirmed for r in self.days)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.days)

    @property
    def finished(self) -> bool:
        return bool(self.days) and self.days[-1].finished

    @property
    def unreachable(self) -> int:
        """Expected members the bots cannot invite (no 微信号, no bound contact)."""
        return len({p for g in self.plan.groups for p in g.unreachable})


def populate(engine: Engine, world: SimulatedWeChat) -> int:
    """Everyone on the roster with a 微信号 exists in the simulated WeChat, under their name
    (a bot can only invite people who have WeChat). Returns how many were added."""
    before = len(world.contacts)
    with engine.connect() as conn:
        for wechat_id, name in roster_wechat_ids(conn):
            world.add_contact(wechat_id, name)
    return len(world.contacts) - before


async def build_matrix(
    engine: Engine,
    bp: Blueprint,
    world: SimulatedWeChat,
    accounts: Mapping[str, SimulatedAccount],
    quotas: Sequence[AccountQuota],
    calendar: SimCalendar,
    *,
    unit: str | None = None,
    actor: str = "cli:provision",
    max_days: int = 400,
    on_step: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Plan the groups of ``unit``'s subtree (default: everything) and apply the plan through
    ``accounts``, one simulated day after another until it is done; then everyone invited
    accepts and the rooms are read back. An open run of the scope (an earlier apply that
    stopped) is resumed instead. ``on_step`` hears (steps gone through, steps in all) over all
    the days: each day goes through the steps the days before left."""
    populate(engine, world)
    ids = [q.id for q in quotas]
    with engine.connect() as conn:
        plan = build_plan(survey(conn, bp, unit, bots=ids), quotas)
    report = BuildReport(plan)

    async def sleep(seconds: float) -> None:
        calendar.clock.advance(seconds)

    first: list[int] = []  # the steps to do on the first day: the bar's total

    def today(done: int, left: int) -> None:
        if not first:
            first.append(left)
        if on_step is not None:
            on_step(first[0] - left + done, first[0])

    for day in range(max_days):
        if day:
            calendar.next_morning()
        done = await apply_plan(
            engine,
            plan,
            accounts,
            actor=actor,
            now=calendar.now(),
            sleep=sleep,
            on_step=today if on_step is not None else None,
        )
        report.days.append(done)
        if done.finished or done.stopped or not (done.done or done.confirmed or done.failed):
            break
    report.accepted = await world.accept_invitations()
    for account in accounts.values():
        await refresh_rooms(account, engine, bots=ids)
    return report


def mirror_rooms(engine: Engine, world: SimulatedWeChat, accounts: Sequence[str]) -> int:
    """Recreate, under their recorded ids, the rooms of the groups the database records, with
    the members it last saw in them (their owner when it is one of ``accounts``, else the
    first). Returns how many rooms were made."""
    with engine.connect() as conn:
        groups = recorded_rooms(conn)
        seats = recorded_seats(conn)
    by_group: dict[int, list[tuple[str, str, bool, str]]] = {}
    for gid, contact, nickname, is_admin, name in seats:
        by_group.setdefault(gid, []).append((contact, nickname or "", bool(is_admin), name or ""))
    made = 0
    for gid, name, room_id, owner in groups:
        if room_id in world.rooms:
            continue
        people = by_group.get(gid, [])
        for contact, _, _, person in people:
            world.add_contact(contact, person)
        world.create_room(
            owner if owner is not None and owner in accounts else accounts[0],
            name,
            [c for c, *_ in people],
            room_id=room_id,
        )
        room = world.rooms[room_id]
        for contact, nickname, is_admin, _ in people:
            room.members[contact] = nickname
            if is_admin and len(room.admins) < world.max_admins:
                room.admins.add(contact)
        made += 1
    return made
