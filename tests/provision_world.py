"""Helpers for the provisioning tests: a roster in a database, the simulated WeChat (on a
manual clock, so that pacing passes without waiting), one-line plans, applies and syncs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select

from bot.platforms.simulated import ManualClock, SimulatedWeChat
from bot.rehearsal.sim_build import populate
from matrix.blueprint import Blueprint
from matrix.models import Person
from matrix.platform import Platform
from matrix.provisioning.actual import refresh_rooms
from matrix.provisioning.apply import ApplyReport, apply_plan
from matrix.provisioning.findings import Finding, audit
from matrix.provisioning.membership import Survey, survey
from matrix.provisioning.plan import Plan, build_plan
from matrix.provisioning.schedule import AccountQuota
from matrix.roster import import_roster, read_roster
from tests import worlds

BOT = "wxid_bot"
ACCOUNTS = [AccountQuota(BOT)]


async def no_wait(_: float) -> None:
    return None


def load(
    engine: Engine, bp: Blueprint, folder: Path, units: list[worlds.Row], persons: list[worlds.Row]
) -> None:
    """Import (or re-import) a roster given as rows."""
    folder.mkdir(parents=True, exist_ok=True)
    u, p = worlds.write_roster(folder, units, persons)
    import_roster(engine, read_roster(u, p, bp), bp)


def looked(engine: Engine, bp: Blueprint, unit: str | None = None) -> Survey:
    with engine.connect() as conn:
        return survey(conn, bp, unit, bots=[a.id for a in ACCOUNTS])


def plan(
    engine: Engine,
    bp: Blueprint,
    unit: str | None = None,
    accounts: Sequence[AccountQuota] = ACCOUNTS,
) -> Plan:
    with engine.connect() as conn:
        return build_plan(survey(conn, bp, unit, bots=[a.id for a in accounts]), accounts)


def findings(engine: Engine, bp: Blueprint, unit: str | None = None) -> list[Finding]:
    with engine.connect() as conn:
        return audit(conn, survey(conn, bp, unit, bots=[a.id for a in ACCOUNTS]))


def codes(found: list[Finding]) -> set[str]:
    return {f.code for f in found}


def new_world() -> SimulatedWeChat:
    """An empty simulated WeChat on a manual clock."""
    return SimulatedWeChat(clock=ManualClock())


def waiter(world: SimulatedWeChat) -> Callable[[float], Awaitable[None]]:
    """An apply's ``sleep``: the time passes on the world's clock, at once."""

    async def sleep(seconds: float) -> None:
        assert isinstance(world.clock, ManualClock)
        world.clock.advance(seconds)

    return sleep


def platforms(world: SimulatedWeChat, accounts: Sequence[AccountQuota]) -> dict[str, Platform]:
    return {a.id: world.account(a.id, rate=a.ops_per_second) for a in accounts}


def apply(
    engine: Engine, p: Plan, world: SimulatedWeChat, *, now: datetime | None = None
) -> ApplyReport:
    """Carry ``p`` out in ``world``; everyone on the roster with a 微信号 has WeChat there."""
    populate(engine, world)
    return asyncio.run(
        apply_plan(
            engine,
            p,
            platforms(world, p.accounts),
            actor="cli:test",
            sleep=waiter(world),
            now=now,
        )
    )


def sync(
    engine: Engine, world: SimulatedWeChat, accounts: Sequence[AccountQuota] = ACCOUNTS
) -> None:
    """Read every room back from the simulated WeChat into the database."""
    for a in accounts:
        asyncio.run(refresh_rooms(world.account(a.id), engine, bots=[x.id for x in accounts]))


def accept(world: SimulatedWeChat) -> int:
    """Everyone invited accepts."""
    return asyncio.run(world.accept_invitations())


def join(
    world: SimulatedWeChat, room: str, contact: str, *, nickname: str = "", wechat_id: str = ""
) -> None:
    """Someone joins by themselves (a QR code, a member's invitation), with this 群昵称."""
    world.add_contact(contact, nickname or contact, wechat_id=wechat_id)
    asyncio.run(world.join(room, contact))
    world.set_nickname(room, contact, nickname)


def name_everyone(engine: Engine, world: SimulatedWeChat) -> None:
    """Every roster person in a room sets their 群昵称 in the blueprint's format (单位-姓名)."""
    person = Person.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        names = dict(conn.execute(select(person.c.wechat_id, person.c.name)).all())
    for room in world.rooms.values():
        for cid in room.members:
            if names.get(cid):
                room.members[cid] = f"单位-{names[cid]}"


def built(engine: Engine, bp: Blueprint, world: SimulatedWeChat | None = None) -> SimulatedWeChat:
    """Every required group built by the bot, everyone invited in and named properly, and
    the rooms read back: a matrix with nothing wrong."""
    world = world or new_world()
    apply(engine, plan(engine, bp), world)
    accept(world)
    name_everyone(engine, world)
    sync(engine, world)
    return world


def room_of(world: SimulatedWeChat, name: str) -> str:
    room = world.find_room(name)
    assert room is not None, f"no room {name}"
    return room.room_id


def person_id(engine: Engine, wechat_id: str) -> int:
    person = Person.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(
            conn.execute(select(person.c.id).where(person.c.wechat_id == wechat_id)).scalar_one()
        )
