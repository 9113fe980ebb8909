"""A county whose counselor group was built by hand: the world of the #匹配 tests and benchmark.

乙1县 (K1) has ``schools`` schools, each with a brigade counselor and two core squadron
counselors, none with a 微信号 on the roster (people rarely know theirs): only the county's
first office staff has one. They all sit in 乙1县少先队大队辅导员群, built by that office, as
WeChat contacts the bot cannot bind, showing 群昵称 the way people write them:

- ``exact``: 乙1县第3小学-张子涵 (the blueprint's 单位-姓名);
- ``spaced``: 第3小学 - 张子涵; ``wide``: 第3小学－张子涵; ``dash``: 第3小学—张子涵;
- ``name``: 张子涵 alone; ``blank``: no 群昵称, the WeChat name 张子涵.

Besides them: two 王伟 (schools 3 and 7) both writing just 王伟 (ambiguous); 刘洋 of school 1
writing 乙2县第1小学-刘洋 (a wrong unit: not bound); 张三丰 (乙1县第2小学-张三丰), who is on no
roster; 阳光, with no 群昵称 at all, and 孙老师, whose 群昵称 names nobody (both asked to set
one, not held: they could be anyone); and the county's second office staff 周敏 (乙1县-周敏),
whose roles carry office authority.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bot.platforms.simulated import SimulatedWeChat
from matrix.blueprint import Blueprint
from matrix.provisioning.adopt import adopt, read_members
from matrix.roster import import_roster, read_roster
from tests import worlds

TOPIC = "乙1县少先队大队辅导员群"
OWNER = "wxK1office1"  # 乙1县 office staff with a 微信号: bound, the room's owner
OFFICE_NAME = "周敏"  # the second office staff: no 微信号, seated as OFFICE_CONTACT
OFFICE_CONTACT = "wxid_office2"
WANG = ("wxid_wang3", "wxid_wang7")  # 王伟 of schools 3 and 7, both nicknamed 王伟
WRONG_UNIT = "wxid_liu"  # 刘洋 of school 1 writing another county's school
STRANGER = "wxid_stranger"  # 张三丰: on no roster
NAMELESS = "wxid_sunny"  # no 群昵称, the WeChat name 阳光: asked to set one, not held
HONORIFIC = "wxid_teacher"  # 群昵称 孙老师: nobody's name, but not 单位-姓名: asked, not held
OTHER_COUNTY_OFFICE = "wxK2office1"
CITY_OFFICE = "wxC1office1"
STYLES = ("exact", "spaced", "wide", "dash", "name", "blank")
_SURNAMES = "张李陈杨黄赵吴孙马朱胡郭何高罗郑梁谢宋唐"
_FIRST = "子雨浩思梓一欣宇佳俊晨嘉若依诗博文泽明志"
_SECOND = "涵轩然远萱诺怡航琪杰曦宁辰瑶睿瑞凯豪琳彤"


def _name(i: int) -> str:
    """The i-th generated name: three characters (so never one of the two-character names
    above), distinct for i < 8000."""
    return _SURNAMES[i % 20] + _FIRST[(i // 20) % 20] + _SECOND[(i // 400) % 20]


@dataclass
class Seat:
    contact_id: str
    name: str  # the roster name
    nickname: str
    style: str


@dataclass
class County:
    schools: int
    seats: list[Seat] = field(default_factory=list)
    room: str = ""
    group_id: int = 0

    def by_style(self, style: str) -> list[Seat]:
        return [s for s in self.seats if s.style == style]


def roster(schools: int) -> tuple[list[worlds.Row], list[worlds.Row], list[Seat]]:
    """Units, persons and the seats of the hand-built group (contact, 群昵称)."""
    units: list[worlds.Row] = [
        ("P", "示范省", "province", ""),
        ("C1", "甲市", "city", "P"),
        ("K1", "乙1县", "county", "C1"),
        ("K2", "乙2县", "county", "C1"),
        ("K2S1", "乙2县第1小学", "school", "K2"),
    ]
    persons: list[worlds.Row] = [
        ("P", "省办公室", "office_staff", "13800000001", "wxPoffice1"),
        ("C1", "市办公室", "office_staff", "13800000002", CITY_OFFICE),
        ("K1", "县办公室", "office_staff", "13800000003", OWNER),
        ("K1", OFFICE_NAME, "office_staff", "13800000004", ""),
        ("K2", "二县办公室", "office_staff", "13800000005", OTHER_COUNTY_OFFICE),
        ("K2S1", "刘洋", "brigade_counselor", "13800000006", ""),
    ]
    seats = [Seat(OFFICE_CONTACT, OFFICE_NAME, f"乙1县-{OFFICE_NAME}", "office")]
    n = 0
    for s in range(1, schools + 1):
        school = f"K1S{s}"
        units.append((school, f"乙1县第{s}小学", "school", "K1"))
        for role in ("brigade_counselor", "core_squadron_counselor", "core_squadron_counselor"):
            if role == "brigade_counselor" and s in (3, 7):
                name, cid, nick, style = "王伟", WANG[s == 7], "王伟", "same"
            elif role == "brigade_counselor" and s == 1:
                name, cid, nick, style = "刘洋", WRONG_UNIT, "乙2县第1小学-刘洋", "wrong"
            else:
                name, style = _name(n), STYLES[n % len(STYLES)]
                cid, nick = f"wxid_{n:04d}", _nickname(style, s, name)
                n += 1
            persons.append((school, name, role, f"139{len(persons):08d}", ""))
            seats.append(Seat(cid, name, nick, style))
    seats.append(Seat(STRANGER, "张三丰", "乙1县第2小学-张三丰", "stranger"))
    seats.append(Seat(HONORIFIC, "孙老师", "孙老师", "honorific"))
    seats.append(Seat(NAMELESS, "阳光", "", "nameless"))
    return units, persons, seats


def _nickname(style: str, school: int, name: str) -> str:
    return {
        "exact": f"乙1县第{school}小学-{name}",
        "spaced": f"第{school}小学 - {name}",
        "wide": f"第{school}小学－{name}",
        "dash": f"第{school}小学—{name}",
        "name": name,
        "blank": "",
    }[style]


def load(engine: Engine, bp: Blueprint, folder: Path, schools: int) -> County:
    """Import the roster of the county; returns the seats to build its group with."""
    units, persons, seats = roster(schools)
    folder.mkdir(parents=True, exist_ok=True)
    import_roster(engine, read_roster(*worlds.write_roster(folder, units, persons), bp), bp)
    return County(schools, seats)


def hand_build(
    engine: Engine, bp: Blueprint, world: SimulatedWeChat, county: County, bot: str
) -> County:
    """The office builds the group by hand with every seat and the bot; the group is adopted
    (the core's ``adopt``, as #认领 would) and its members read."""
    for seat in county.seats:
        world.add_contact(seat.contact_id, seat.name)
    for cid, name in (
        (OWNER, "县办公室"),
        (CITY_OFFICE, "市办公室"),
        (OTHER_COUNTY_OFFICE, "二县"),
    ):
        if cid not in world.contacts:
            world.add_contact(cid, name)
    ids = [s.contact_id for s in county.seats]
    county.room = world.create_room(OWNER, TOPIC, [*ids, CITY_OFFICE, OTHER_COUNTY_OFFICE, bot])
    for seat in county.seats:
        world.set_nickname(county.room, seat.contact_id, seat.nickname)
    members = asyncio.run(world.account(bot).list_members(county.room))
    with engine.begin() as conn:
        done = adopt(conn, bp, county.room, "K1", "county-counselors", None, "test")
        read_members(conn, done.group_id, members, bots={bot})
    county.group_id = done.group_id
    return county
