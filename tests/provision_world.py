"""Helpers for the provisioning tests: a roster in a database, a fake WeChat, one-line plans."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, select

from matrix.actual import refresh_rooms
from matrix.apply import ApplyReport, apply_plan
from matrix.blueprint import Blueprint
from matrix.findings import Finding, audit
from matrix.membership import Survey, survey
from matrix.models import Person
from matrix.plan import Plan, build_plan
from matrix.roster import import_roster, read_roster
from matrix.schedule import AccountQuota
from tests import worlds
from tests.fake_platform import FakeWeChat

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


def apply(engine: Engine, p: Plan, world: FakeWeChat, *, account: str = BOT) -> ApplyReport:
    platforms = {a.id: world.account(a.id) for a in p.accounts}
    return asyncio.run(apply_plan(engine, p, platforms, actor="cli:test", sleep=no_wait))


def sync(engine: Engine, world: FakeWeChat, accounts: Sequence[AccountQuota] = ACCOUNTS) -> None:
    """Read every room back from the fake WeChat into the database."""
    for a in accounts:
        asyncio.run(refresh_rooms(world.account(a.id), engine, bots=[x.id for x in accounts]))


def name_everyone(engine: Engine, world: FakeWeChat) -> None:
    """Give every roster person a 群昵称 in the blueprint's format (单位-姓名)."""
    person = Person.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        for wx, name in conn.execute(select(person.c.wechat_id, person.c.name)):
            if wx:
                world.nicknames[wx] = f"单位-{name}"


def built(engine: Engine, bp: Blueprint, world: FakeWeChat | None = None) -> FakeWeChat:
    """Every required group built by the bot, everyone invited in and named properly, and
    the rooms read back: a matrix with nothing wrong."""
    world = world or FakeWeChat()
    name_everyone(engine, world)
    apply(engine, plan(engine, bp), world)
    world.accept_invitations()
    sync(engine, world)
    return world


def room_of(world: FakeWeChat, name: str) -> str:
    return next(r.room_id for r in world.rooms.values() if r.topic == name)


def person_id(engine: Engine, wechat_id: str) -> int:
    person = Person.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(
            conn.execute(select(person.c.id).where(person.c.wechat_id == wechat_id)).scalar_one()
        )
