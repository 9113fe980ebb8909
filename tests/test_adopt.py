"""Adoption (认领) in the core: a room built by hand becomes a matrix group, and everything
downstream (audit, plan, relay targets, 附件2, owner requests) treats it as built."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, insert, select, update

from bot.platforms.simulated import SimulatedWeChat
from bot.rehearsal.sim_build import populate
from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.platform import Room
from matrix.provisioning.actual import record_rooms, refresh_rooms
from matrix.provisioning.adopt import (
    ADOPTED_INSTEAD,
    adopt,
    match_rooms,
    name_key,
    owner_requests,
    read_members,
    unadopt,
)
from matrix.relay.people import UnitRef
from matrix.relay.targets import relay_targets
from matrix.summary import build_status
from matrix.tables import GROUP, PERSON, POSITION, PROVISION_STEP, UNIT
from tests.worlds import BOT, findings, new_world, plan

COUNSELORS = "乙1县少先队大队辅导员群"


def wechat_ids(engine: Engine, unit: str, role: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(PERSON.c.wechat_id)
                .join(POSITION, POSITION.c.person_id == PERSON.c.id)
                .where(POSITION.c.unit_code == unit, POSITION.c.role == role)
                .order_by(POSITION.c.seq)
            ).scalars()
        )


def hand_built(
    engine: Engine, topic: str = COUNSELORS, *, bot_admin: bool = False
) -> tuple[SimulatedWeChat, str, str]:
    """K1's office built its counselor group by hand: the office (owner), one school's
    brigade counselor, a stranger, and the bot invited in. Returns (world, room, owner)."""
    world = new_world()
    populate(engine, world)
    world.add_contact("wx_stranger", "陌生人")
    owner, *_ = wechat_ids(engine, "K1", "office_staff")
    school = wechat_ids(engine, "K1S1", "brigade_counselor")
    world.account(BOT)
    room = world.create_room(owner, topic, [*school, "wx_stranger", BOT])
    if bot_admin:
        world.rooms[room].admins.add(BOT)
    return world, room, owner


def adopt_read(
    engine: Engine, bp: Blueprint, world: SimulatedWeChat, room: str, unit: str = "K1", **kw
) -> int:
    members = asyncio.run(world.account(BOT).list_members(room))
    with engine.begin() as conn:
        done = adopt(conn, bp, room, unit, kw.pop("kind", None), kw.pop("shard", None), "test")
        read_members(conn, done.group_id, members, bots={BOT})
    return done.group_id


def test_an_adopted_room_is_the_expected_group_and_the_audit_sees_its_members(province_db, bp):
    world, room, _ = hand_built(province_db)
    gid = adopt_read(province_db, bp, world, room)
    with province_db.connect() as conn:
        row = conn.execute(select(GROUP).where(GROUP.c.id == gid)).one()
        logged = audit_log.entries(conn, action="group.adopt")
    assert (row.unit_code, row.kind, row.shard, row.room_id) == ("K1", "county-counselors", 0, room)
    assert row.adopted_by == "test" and row.adopted_at is not None
    assert len(logged) == 1 and logged[0].unit_code == "K1"
    found = findings(province_db, bp, "K1")
    mine = {f.code for f in found if f.group == COUNSELORS}
    assert {"UNKNOWN_MEMBER", "MISSING_MEMBER"} <= mine
    assert "GROUP_MISSING" not in {f.code for f in found if f.unit == "K1"}


def test_the_plan_repairs_an_adopted_room_and_never_rebuilds_it(province_db, bp):
    world, room, _ = hand_built(province_db, bot_admin=True)
    before = {g.target.name for g in plan(province_db, bp).groups if g.create}
    assert COUNSELORS in before
    adopt_read(province_db, bp, world, room)
    p = plan(province_db, bp)
    mine = next(g for g in p.groups if g.target.name == COUNSELORS)
    assert not mine.create
    assert [c for _, c in mine.removals] == ["wx_stranger"]
    assert mine.invites  # the missing schools are invited
    assert not any(a.action == "create" and a.name == COUNSELORS for a in p.actions())
    assert {a for a, _, _ in mine.asks} == {"set_admin"}  # an admin may remove, not appoint


def test_in_a_room_where_the_bot_has_no_rights_the_plan_asks_instead_of_acting(province_db, bp):
    world, room, _ = hand_built(province_db)
    adopt_read(province_db, bp, world, room)
    mine = next(g for g in plan(province_db, bp).groups if g.target.name == COUNSELORS)
    assert mine.removals == [] and mine.admins == []
    assert ("remove", None, "wx_stranger") in mine.asks
    assert {a for a, _, _ in mine.asks} == {"remove", "set_admin"}
    assert mine.invites  # invitations the bot can send still go out


def test_relay_targets_and_the_build_form_count_an_adopted_room(province_db, bp):
    world, room, _ = hand_built(province_db)
    with province_db.connect() as conn:
        k1 = conn.execute(select(UNIT).where(UNIT.c.code == "K1")).one()
        ref = UnitRef(k1.code, k1.name, k1.level, k1.depth, k1.path, k1.parent_code)
        assert [t.room_id for t in relay_targets(conn, bp, ref)] == []
    built = build_status(province_db, bp, requester="P", as_of=date(2026, 5, 1)).built_groups
    adopt_read(province_db, bp, world, room)
    with province_db.connect() as conn:
        assert [t.room_id for t in relay_targets(conn, bp, ref)] == [room]
    after = build_status(province_db, bp, requester="P", as_of=date(2026, 5, 1))
    assert after.built_groups == built + 1


def test_an_adopted_extension_group_counts_as_an_extension_group(province_db, bp):
    world, room, _ = hand_built(province_db, "乙1县少工委委员群")
    before = build_status(province_db, bp, requester="P", as_of=date(2026, 5, 1))
    adopt_read(province_db, bp, world, room, kind="county-committee")
    after = build_status(province_db, bp, requester="P", as_of=date(2026, 5, 1))
    extension = sum(lv.extension_groups for lv in after.levels)
    assert extension == sum(lv.extension_groups for lv in before.levels) + 1
    assert after.built_groups == before.built_groups


def test_one_room_is_one_group_and_one_group_one_room(province_db, bp):
    world, room, owner = hand_built(province_db)
    adopt_read(province_db, bp, world, room)
    with province_db.begin() as conn, pytest.raises(MatrixError, match="已登记"):
        adopt(conn, bp, room, "K2", None, None, "test")
    other = world.create_room(owner, "另一个群", [BOT])
    with province_db.begin() as conn, pytest.raises(MatrixError, match="已有对应的群"):
        adopt(conn, bp, other, "K1", "county-counselors", None, "test")


def test_a_kind_the_unit_does_not_lead_or_a_shard_that_does_not_exist_is_refused(province_db, bp):
    _world, room, _ = hand_built(province_db)
    with province_db.begin() as conn:
        with pytest.raises(MatrixError, match="不牵头"):
            adopt(conn, bp, room, "K1", "city-committee", None, "test")
        with pytest.raises(MatrixError, match="没有第 3 群"):
            adopt(conn, bp, room, "K1", "county-counselors", 3, "test")
        with pytest.raises(MatrixError, match="不牵头任何群"):
            adopt(conn, bp, room, "K1S1", None, None, "test")
        with pytest.raises(MatrixError, match="不牵头“nope”"):
            adopt(conn, bp, room, "P", "nope", None, "test")


def test_the_kind_may_be_left_out_only_when_one_group_is_left_to_build(province_db, bp):
    world, room, _ = hand_built(province_db)
    with province_db.begin() as conn:
        done = adopt(conn, bp, room, "K1", None, 1, "test")  # 一群 for the only room
    assert (done.kind, done.shard) == ("county-counselors", 0)
    other = world.create_room("wx_stranger", "乙1县少工委委员群", [BOT])
    with province_db.begin() as conn, pytest.raises(MatrixError, match="都已建立"):
        adopt(conn, bp, other, "K1", None, None, "test")


def test_unadopt_releases_the_room_and_only_an_adopted_one(province_db, bp):
    world, room, _ = hand_built(province_db)
    adopt_read(province_db, bp, world, room)
    with province_db.begin() as conn:
        unadopt(conn, room, "test")
    assert COUNSELORS in {g.target.name for g in plan(province_db, bp).groups if g.create}
    with province_db.begin() as conn, pytest.raises(MatrixError, match="没有登记"):
        unadopt(conn, room, "test")
    with province_db.begin() as conn:
        adopt(conn, bp, room, "K1", None, None, "test")  # it can be adopted again


def test_owner_requests_list_what_the_bot_cannot_do_until_the_owner_did_it(province_db, bp):
    world, room, owner = hand_built(province_db)
    adopt_read(province_db, bp, world, room)
    asked = owner_requests(plan(province_db, bp))
    mine = next(r for r in asked if r.room_id == room)
    assert mine.ask == [owner]
    assert ("remove", "wx_stranger") in {(q.action, q.contact) for q in mine.requests}
    assert "invite" not in {q.action for q in mine.requests}  # a member may invite
    asyncio.run(world.leave(room, "wx_stranger"))  # the owner removed the stranger
    asyncio.run(refresh_rooms(world.account(BOT), province_db, bots=[BOT]))
    asked = owner_requests(plan(province_db, bp))
    mine = next(r for r in asked if r.room_id == room)
    assert "remove" not in {q.action for q in mine.requests}
    assert "UNKNOWN_MEMBER" not in {
        f.code for f in findings(province_db, bp, "K1") if f.group == COUNSELORS
    }


def test_a_room_where_the_bot_owns_asks_nobody(province_db, bp):
    world, room, _ = hand_built(province_db)
    world.rooms[room].owner_id = BOT
    adopt_read(province_db, bp, world, room)
    assert all(r.room_id != room for r in owner_requests(plan(province_db, bp)))


@pytest.mark.parametrize(
    ("topic", "key"),
    [
        ("乙1县少先队大队辅导员一群", ("乙1县少先队大队辅导员", 1)),
        ("乙1县少先队大队辅导员1群", ("乙1县少先队大队辅导员", 1)),
        ("乙1县 少先队大队辅导员群", ("乙1县少先队大队辅导员", 0)),
        ("乙1县少先队大队辅导员", ("乙1县少先队大队辅导员", 0)),
        ("省级团委少年部长群（二）", ("省级团委少年部长", 2)),
        ("省级团委少年部长群(2)", ("省级团委少年部长", 2)),
        ("省级团委少年部长群【二】", ("省级团委少年部长", 2)),
        ("乙县委员群（一）", ("乙县委员", 1)),
    ],
)
def test_name_keys_tolerate_how_people_write_names(topic, key):
    assert name_key(topic) == key


def test_match_pairs_rooms_seen_by_the_bot_with_expected_groups_of_one_unit(province_db, bp):
    world = new_world()
    populate(province_db, world)
    world.account(BOT)
    office = wechat_ids(province_db, "K1", "office_staff")[0]
    topics = {
        "乙1县少先队大队辅导员群": ("K1", "county-counselors", 0, 1.0),
        "乙2县 少先队大队辅导员 1群": ("K2", "county-counselors", 0, 0.8),
        "乙3县少先队大队辅导员": ("K3", "county-counselors", 0, 0.8),
        "甲市县级少工委负责同志群（一）": ("C1", "county-league-leaders", 0, 0.8),
        "示范省地市级团委少年部长群": ("P", "city-youth-heads", 0, 1.0),
        "示范省少工委委员群": ("P", "province-committee", 0, 1.0),
        "乙1县少工委委员群": ("K1", "county-committee", 0, 1.0),
        "乙4县少先队大队辅导员群": None,  # no such county
        "乙1县少先队中队辅导员群": None,  # no such group
        "家长群": None,
    }
    for topic in topics:
        world.create_room(office, topic, [BOT])
    asyncio.run(refresh_rooms(world.account(BOT), province_db, bots=[BOT]))
    with province_db.connect() as conn:
        matches, doubtful = match_rooms(conn, bp)
    got = {m.topic: (m.unit, m.kind, m.shard, m.confidence) for m in matches}
    assert got == {t: v for t, v in topics.items() if v is not None}
    assert doubtful == []


def test_a_topic_naming_units_of_the_same_name_or_a_missing_shard_is_only_doubtful(province_db, bp):
    with province_db.begin() as conn:
        conn.execute(UNIT.update().where(UNIT.c.code == "K2").values(name="乙1县"))
        record_rooms(
            conn,
            BOT,
            [
                Room("r1@chatroom", "乙1县少先队大队辅导员群"),
                Room("r3@chatroom", "乙3县大队辅导员三群"),
            ],
        )
        record_rooms(conn, "other-bot", [Room("r4@chatroom", "乙3县少先队大队辅导员3群")])
    with province_db.connect() as conn:
        matches, doubtful = match_rooms(conn, bp)
    assert matches == []
    assert [(r, why[:8]) for r, _, why in doubtful] == [
        ("r1@chatroom", "可对应多个同名单"),
        ("r4@chatroom", "乙3县的中小学少"),
    ]


def test_a_run_still_owing_the_creation_does_not_build_a_second_room(province_db, bp):
    from matrix.provisioning.apply import run_steps, start_run
    from tests.worlds import ACCOUNTS, platforms, waiter

    world, room, _ = hand_built(province_db)
    run_id, _ = start_run(province_db, plan(province_db, bp, "K1"), "test")
    adopt_read(province_db, bp, world, room)
    report = asyncio.run(
        run_steps(
            province_db, run_id, platforms(world, ACCOUNTS), accounts=ACCOUNTS, sleep=waiter(world)
        )
    )
    assert [r.room_id for r in world.rooms.values() if r.topic == COUNSELORS] == [room]
    assert report.done == 0  # the appointments fail: the bot does not own the room
    with province_db.connect() as conn:
        errors = conn.execute(
            select(PROVISION_STEP.c.error).where(PROVISION_STEP.c.action == "create")
        ).scalars()
        assert ADOPTED_INSTEAD in list(errors)
    again = next(g for g in plan(province_db, bp, "K1").groups if g.target.name == COUNSELORS)
    assert not again.create and again.invites  # a fresh plan repairs it


def meanwhile(monkeypatch, statement) -> None:  # type: ignore[no-untyped-def]
    """Another process writes ``statement`` while an adoption reads (simulated on the same
    connection, between the adoption's reading and its writing)."""
    import matrix.provisioning.adopt as core

    read = core.expected_shards

    def shards(conn, *args):  # type: ignore[no-untyped-def]
        conn.execute(statement)
        return read(conn, *args)

    monkeypatch.setattr(core, "expected_shards", shards)


def planned(engine: Engine, kind: str, name: str) -> None:
    """The planner recorded K1's group ``kind``, not built yet."""
    with engine.begin() as conn:
        conn.execute(
            insert(GROUP).values(
                unit_code="K1", kind=kind, shard=0, name=name, created_at=datetime.now(UTC)
            )
        )


def test_a_group_adopted_meanwhile_by_another_room_refuses_this_one(province_db, bp, monkeypatch):
    _world, room, _ = hand_built(province_db)
    planned(province_db, "county-counselors", COUNSELORS)
    meanwhile(monkeypatch, update(GROUP).values(room_id="other@chatroom"))
    with province_db.begin() as conn, pytest.raises(MatrixError, match="已有对应的群"):
        adopt(conn, bp, room, "K1", None, None, "test")


def test_a_room_adopted_meanwhile_as_another_group_is_refused_not_an_error(
    province_db, bp, monkeypatch
):
    _world, room, _ = hand_built(province_db)
    planned(province_db, "county-counselors", COUNSELORS)
    planned(province_db, "county-committee", "乙1县少工委委员群")
    taken = update(GROUP).where(GROUP.c.kind == "county-committee").values(room_id=room)
    meanwhile(monkeypatch, taken)
    with province_db.begin() as conn, pytest.raises(MatrixError, match="本群已登记为矩阵群"):
        adopt(conn, bp, room, "K1", "county-counselors", None, "test")
