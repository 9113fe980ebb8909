"""Planning and applying: from an empty (simulated) WeChat to the matrix the rules ask for,
step by step, and resuming where an interrupted apply stopped."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.platforms.simulated import SimulatedWeChat
from bot.rehearsal.sim_build import populate
from matrix import audit_log
from matrix.models import ProvisionStep
from matrix.platform import NotSupported, PlatformError, RateLimited
from matrix.provisioning.apply import ApplyReport, apply_plan
from matrix.provisioning.schedule import AccountQuota
from tests import worlds
from tests.worlds import (
    BOT,
    accept,
    apply,
    built,
    findings,
    join,
    load,
    looked,
    name_everyone,
    new_world,
    plan,
    platforms,
    room_of,
    sync,
    waiter,
)


class Crash(Exception):
    """Stands for the process dying during a platform call."""


def test_a_new_province_plans_every_required_group(province_db, bp):
    p = plan(province_db, bp)
    made = [g.target.name for g in p.groups if g.create]
    assert made == [
        "示范省地市级团委少年部长群",
        "甲市县级少工委负责同志群",
        "乙1县少先队大队辅导员群",
        "乙2县少先队大队辅导员群",
        "乙3县少先队大队辅导员群",
    ]  # the optional extension groups (延展群) are not built unless asked for
    county = next(g for g in p.groups if g.target.unit == "K1")
    assert len(county.initial) == 2 + 2 * 3  # office staff and every school's counselors
    assert p.counts() == {"create": 5, "rename": 0, "remove": 0, "invite": 0, "set_admin": 10}
    assert p.schedule.days == 1 and p.schedule.optimal


def test_applying_a_plan_then_planning_again_gives_an_empty_plan(engine, bp, tmp_path):
    load(engine, bp, tmp_path, *worlds.province(counties=1, schools=20, cores=2))
    world = new_world()
    first = plan(engine, bp)
    assert first.invitations() > 0  # the county group passes 40 members: invitations
    report = apply(engine, first, world)
    assert report.finished and report.failed == 0
    assert report.done == sum(first.counts().values())
    assert plan(engine, bp).empty  # from what the apply recorded

    accept(world)
    sync(engine, world)
    assert plan(engine, bp).empty  # and from what the platform shows


def test_every_step_is_recorded_and_the_apply_is_in_the_audit_log(province_db, bp):
    apply(province_db, plan(province_db, bp), new_world())
    step = ProvisionStep.__table__  # type: ignore[attr-defined]
    with province_db.connect() as conn:
        statuses = Counter(r[0] for r in conn.execute(select(step.c.status)))
        actions = [e.action for e in audit_log.entries(conn)]
    assert statuses == {"done": 15}
    assert actions[:2] == ["provision.finish", "provision.start"]


def test_an_interrupted_apply_resumes_without_repeating_done_steps(engine, bp, tmp_path):
    load(engine, bp, tmp_path, *worlds.province(counties=1, schools=20, cores=2))
    world = new_world()
    world.fail("add_member", PlatformError("connection lost", retryable=True), at=7)
    first = apply(engine, plan(engine, bp), world)
    assert not first.finished and "connection lost" in first.stopped
    calls_before = list(world.calls)

    second = apply(engine, plan(engine, bp), world)  # the open run is resumed, not re-planned
    assert second.finished and second.run_id == first.run_id
    assert second.done == sum(plan_counts(world).values()) - first.done
    after = world.calls[len(calls_before) :]
    assert not {c for c in after if c[0] == "create_room"} & set(calls_before)
    adds = Counter(c for c in world.calls if c[0] == "add_member")
    assert (
        sorted(adds.values())[-1] == 2 and list(adds.values()).count(2) == 1
    )  # only the failed one
    assert plan(engine, bp).empty


def plan_counts(world: SimulatedWeChat) -> Counter[str]:
    """Platform calls that took effect (a failed attempt raised before doing anything)."""
    seen: dict[tuple[str, ...], int] = defaultdict(int)
    for c in world.calls:
        seen[c] += 1
    return Counter(c[0] for c in seen)


def test_a_crash_during_a_call_is_checked_on_the_platform_not_repeated(province_db, bp):
    world = new_world()
    world.fail("create_room", Crash(), at=2, after=True)  # the room is made, then the process dies
    with pytest.raises(Crash):
        apply(province_db, plan(province_db, bp), world)
    report = apply(province_db, plan(province_db, bp), world)
    assert report.finished and report.confirmed == 1
    assert world.count("create_room") == 5
    assert len({r.topic for r in world.rooms.values()}) == 5
    assert plan(province_db, bp).empty


def test_a_crash_after_an_invitation_is_confirmed_by_the_member_list(engine, bp, tmp_path):
    load(engine, bp, tmp_path, *worlds.province(counties=1, schools=15, cores=2))
    world = new_world()
    world.fail("add_member", Crash(), at=1, after=True)
    with pytest.raises(Crash):
        apply(engine, plan(engine, bp), world)
    report = apply(engine, plan(engine, bp), world)
    assert report.confirmed == 1
    assert max(Counter(c for c in world.calls if c[0] == "add_member").values()) == 1


def test_rate_limits_are_waited_out(province_db, bp):
    world = new_world()
    world.fail("set_admin", RateLimited("too fast", retry_after=7))
    waits: list[float] = []
    passes = waiter(world)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await passes(seconds)

    p = plan(province_db, bp)
    populate(province_db, world)
    report = asyncio.run(
        apply_plan(province_db, p, platforms(world, p.accounts), actor="cli:test", sleep=sleep)
    )
    assert report.finished and report.failed == 0
    assert 7 in waits
    assert waits.count(1.0) == report.done  # paced at one operation a second


def test_a_refused_step_is_recorded_and_the_rest_goes_on(province_db, bp):
    world = new_world()
    world.fail("set_admin", NotSupported("this puppet cannot appoint admins"))
    report = apply(province_db, plan(province_db, bp), world)
    assert report.finished and report.failed == 1 and "appoint" in report.errors[0]
    assert plan(province_db, bp).counts()["set_admin"] == 1  # still to do, by a person or later


def test_steps_of_a_day_not_yet_come_wait(engine, bp, tmp_path):
    load(engine, bp, tmp_path, *worlds.province(counties=3))
    slow = [AccountQuota(BOT, daily_group_creations=2)]
    p = plan(engine, bp, accounts=slow)
    assert p.schedule.days == 3
    world = new_world()
    populate(engine, world)
    report = asyncio.run(
        apply_plan(engine, p, platforms(world, slow), actor="t", through_day=1, sleep=waiter(world))
    )
    assert not report.finished and report.waiting > 0
    creations_by_day = Counter(a.day for a in p.actions() if a.action == "create")
    assert creations_by_day == {1: 2, 2: 2, 3: 1}


def test_each_day_an_account_stays_within_its_quota_and_the_rest_waits(engine, bp, tmp_path):
    load(engine, bp, tmp_path, *worlds.province(counties=3))
    slow = [AccountQuota(BOT, daily_group_creations=2)]
    world = new_world()
    day = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    made = []

    def apply_at(when: datetime) -> ApplyReport:
        return apply(engine, plan(engine, bp, accounts=slow), world, now=when)

    for n in range(3):
        report = apply_at(day + timedelta(days=n))
        made.append(world.count("create_room"))
        again = apply_at(day + timedelta(days=n, hours=5))
        assert again.done == 0  # the same day again: the quota is used up
    assert made == [2, 4, 5] and report.finished
    assert plan(engine, bp, accounts=slow).empty


def test_someone_who_does_not_belong_is_removed_and_a_rename_is_planned(province_db, bp):
    world = built(province_db, bp)
    k1 = room_of(world, "乙1县少先队大队辅导员群")
    join(world, k1, "wxK2S1n999")  # a stranger
    join(world, k1, "wxK2S1n022")  # K2's counselor, belongs in K2's group
    world.rooms[k1].topic = "乙1县辅导员群（旧名）"
    sync(province_db, world)
    p = plan(province_db, bp)
    g = next(g for g in p.groups if g.target.unit == "K1")
    assert [c for _, c in g.removals] == ["wxK2S1n999", "wxK2S1n022"]
    assert g.rename_from == "乙1县辅导员群（旧名）"
    apply(province_db, p, world)
    sync(province_db, world)
    assert plan(province_db, bp).empty
    assert world.rooms[k1].topic == "乙1县少先队大队辅导员群"


def test_a_county_too_big_for_one_room_splits_and_keeps_everyone_in_place(engine, bp, tmp_path):
    load(engine, bp, tmp_path, *worlds.province(counties=1, schools=100, cores=3))
    world = built(engine, bp)
    room = room_of(world, "乙1县少先队大队辅导员群")
    before = set(world.rooms[room].members) - {BOT}
    assert len(before) == 402  # 2 office staff + 100 schools x 4, one room

    load(engine, bp, tmp_path, *worlds.province(counties=1, schools=130, cores=3))
    p = plan(engine, bp)
    county = [g for g in p.groups if g.target.unit == "K1"]
    assert [g.target.name for g in county] == [
        "乙1县少先队大队辅导员一群",
        "乙1县少先队大队辅导员二群",
    ]
    first, second = county
    assert first.rename_from == "乙1县少先队大队辅导员群" and not first.removals
    assert second.create
    office = {p for p in first.target.members[:2]}
    assert office <= set(second.target.members)  # the office is in every shard
    apply(engine, p, world)
    accept(world)
    name_everyone(engine, world)
    sync(engine, world)
    assert before <= set(world.rooms[room].members)  # nobody moved
    assert all(len(r.members) <= 500 for r in world.rooms.values())  # the bot included
    assert plan(engine, bp).empty
    assert findings(engine, bp) == []  # the office in both shards is no duplicate


def test_two_accounts_share_the_work_and_keep_their_rooms(province_db, bp):
    accounts = [
        AccountQuota(BOT, daily_group_creations=2),
        AccountQuota("wxid_bot2", daily_group_creations=2),
    ]
    p = plan(province_db, bp, accounts=accounts)
    owners = Counter(a.account for a in p.actions() if a.action == "create")
    assert owners == {BOT: 3, "wxid_bot2": 2} or owners == {BOT: 2, "wxid_bot2": 3}
    assert p.schedule.days == 2
    world = new_world()
    today = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    apply(province_db, p, world, now=today)
    assert world.count("create_room") == 4  # two a day each
    apply(province_db, p, world, now=today + timedelta(days=1))
    survey = looked(province_db, bp)
    assert [t.room.owner for t in survey.targets if t.room].count(None) == 0
    assert {t.room.owner for t in survey.targets if t.room} == {BOT, "wxid_bot2"}
    assert plan(province_db, bp, accounts=accounts).empty


def test_two_processes_confirming_at_once_share_one_open_run(province_db, bp, monkeypatch):
    from matrix.provisioning import apply as apply_module

    p = plan(province_db, bp)
    first, resumed = apply_module.start_run(province_db, p, "bot-a")
    assert not resumed
    real = apply_module.open_run
    seen = []

    def racing(conn, scope):  # the second process looked before the first one's run was stored
        seen.append(scope)
        return None if len(seen) == 1 else real(conn, scope)

    monkeypatch.setattr(apply_module, "open_run", racing)
    assert apply_module.start_run(province_db, p, "bot-b") == (first, True)


def test_an_extension_group_turned_on_in_the_blueprint_is_planned(province_db, bp):
    """What `qunmatrix blueprint` tells the operator: optional = false puts a 延展群 in the plan."""
    from matrix.blueprint import BUILTIN_DIR, parse_blueprint
    from matrix.provisioning.membership import survey

    text = (BUILTIN_DIR / "young_pioneers.toml").read_text(encoding="utf-8")
    key = 'key = "county-committee"'
    head, tail = text.split(key, 1)
    on = parse_blueprint(head + key + tail.replace("optional = true", "optional = false", 1))
    with province_db.connect() as conn:
        before = {t.kind for t in survey(conn, bp).targets}
        after = {t.kind for t in survey(conn, on).targets}
    assert "county-committee" not in before and "county-committee" in after
