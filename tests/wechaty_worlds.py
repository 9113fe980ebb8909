"""Worlds for the Wechaty tests: the province of ``tests.worlds`` with its groups built in a
simulated WeChat, and the same world written out for the Node mock puppet service."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Engine

from bot.platforms.simulated import ManualClock, SimCalendar, SimulatedWeChat
from bot.rehearsal.sim_build import build_matrix
from matrix.blueprint import Blueprint
from matrix.provisioning.schedule import AccountQuota

ACCOUNT = "qunmatrix-bot"
COUNTY_OFFICE = "wxK1n008"  # K1's office staff: administers K1's counselor group
SCHOOL_COUNSELOR = "wxK1S1n012"  # a brigade counselor in that group: a member, not an office


def provisioned_world(engine: Engine, bp: Blueprint) -> SimulatedWeChat:
    """Every group of the loaded roster planned and built in a fresh simulated WeChat by
    ``ACCOUNT`` (paced generously on real time: these tests are not about pacing)."""
    world = SimulatedWeChat(max_room_size=bp.matrix.max_group_size)
    account = world.account(ACCOUNT, "群矩阵助手", rate=100.0, burst=100)
    quota = AccountQuota(ACCOUNT, ops_per_second=100.0)
    days = SimCalendar(ManualClock())  # only dates the apply's daily quotas
    asyncio.run(build_matrix(engine, bp, world, {ACCOUNT: account}, [quota], days))
    return world


def mock_world(world: SimulatedWeChat, account: str = ACCOUNT) -> dict[str, Any]:
    """``world`` as ``tests/wire/mock_server.js`` reads it: same contacts, rooms and ids."""
    return {
        "self": {"id": account, "name": world.contacts[account].name},
        "contacts": [
            {"id": c.contact_id, "name": c.name}
            for c in world.contacts.values()
            if c.contact_id != account
        ],
        "rooms": [
            {
                "id": r.room_id,
                "topic": r.topic,
                "members": list(r.members),
                "owner": r.owner_id,
                "admins": sorted(r.admins),
            }
            for r in world.rooms.values()
        ],
    }


def room_of(world: SimulatedWeChat, topic: str) -> str:
    room = world.find_room(topic)
    assert room is not None, f"no room {topic}"
    return room.room_id
