"""The 关工委 matrix end to end, from its own sample: a province roster generated for the
guangongwei blueprint is imported, planned and built; the province office sends a notice; the
cities answer in the province's group, the counties in their city's group or in their own
关工工作群 (whose members are all the county's own people, so the county answers for itself
there); #进度, the deadline report and the 通知 summary agree that everyone answered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.rehearsal.stage import Stage
from matrix.blueprint import Blueprint, load_blueprint
from matrix.provisioning.membership import survey
from matrix.provisioning.plan import build_plan
from matrix.provisioning.schedule import AccountQuota
from matrix.roster import import_roster, read_roster
from matrix.sample import generate
from matrix.tables import PERSON, POSITION, UNIT

PROVINCE = "230000"
HARBIN = "230100"
NOTICE = "#通知 截止 17:00 请于今天17:00前报送关心下一代工作简报"


@pytest.fixture(scope="module")
def gw() -> Blueprint:
    return load_blueprint("guangongwei")


@pytest.fixture
def gw_stage(engine: Engine, gw: Blueprint, tmp_path: Path) -> Iterator[Stage]:
    units, persons = generate("province", tmp_path / "sample", seed=4, blueprint=gw)
    report = import_roster(engine, read_roster(units, persons, gw), gw)
    assert report.units.added == 139
    with Stage(engine, gw, accounts=("bot-1", "bot-2")) as stage:
        yield stage


def contacts(stage: Stage, unit_code: str) -> list[str]:
    """The WeChat ids of a unit's roster people, in roster order."""
    with stage.engine.connect() as conn:
        return list(
            conn.execute(
                select(PERSON.c.wechat_id)
                .join(POSITION, POSITION.c.person_id == PERSON.c.id)
                .where(POSITION.c.unit_code == unit_code, PERSON.c.wechat_id.is_not(None))
                .order_by(POSITION.c.seq)
            ).scalars()
        )


def units_of(stage: Stage, level: str) -> list[str]:
    with stage.engine.connect() as conn:
        return list(
            conn.execute(
                select(UNIT.c.code).where(UNIT.c.level == level).order_by(UNIT.c.code)
            ).scalars()
        )


def group_of(unit_code: str, kind: str) -> str:
    # by code, not by name: 鹤岗 and 佳木斯 both have a 向阳区
    return f"{unit_code}:{kind}"


def member_of(stage: Stage, group: str, unit_code: str) -> str:
    """One of the unit's people who is in the group (the sample leaves some without WeChat)."""
    room = stage.world.rooms[stage.room_of(group)]
    return next(c for c in contacts(stage, unit_code) if c in room.members)


def test_guangongwei_from_its_own_sample_to_receipts_at_every_level(gw_stage: Stage) -> None:
    stage = gw_stage
    with stage.engine.connect() as conn:
        plan = build_plan(survey(conn, stage.bp), [AccountQuota("bot-1")])
    assert {g.target.kind for g in plan.groups} == {"city-work", "county-work", "county-base"}
    stage.provision()
    cities, counties = units_of(stage, "city"), units_of(stage, "county")
    province_group = group_of(PROVINCE, "city-work")
    office = member_of(stage, province_group, PROVINCE)

    # help speaks of this roster's units, not of a test world's
    assert "例如：#核查 哈尔滨市" in stage.reply(province_group, office, "#帮助 核查")
    said = [x for x in stage.say(province_group, office, NOTICE) if x.by_bot]
    assert "T1" in said[0].text and "139 个群" in said[0].text
    assert "#确认 T1" in said[0].text  # a notice to so many groups waits for its issuer
    stage.say(province_group, office, "#确认")

    for city in cities:  # the cities answer in the province's group
        assert "已记录" in stage.reply(
            province_group, member_of(stage, province_group, city), "收到"
        )
    half = len(counties) // 2
    for county in counties[:half]:  # half of the counties in their city's group
        where = group_of(county[:4] + "00", "county-work")
        assert "已记录" in stage.reply(where, member_of(stage, where, county), "收到 T1")
    # the others in their own 关工工作群: the county office answers for the county itself
    own = group_of(counties[half], "county-base")
    reply = stage.reply(own, member_of(stage, own, counties[half]), "收到")
    assert "已记录" in reply, reply
    for county in counties[half + 1 :]:
        where = group_of(county, "county-base")
        stage.reply(where, member_of(stage, where, county), "收到 T1")

    progress = stage.reply(province_group, office, "#进度 T1")
    assert f"市：群 {len(cities)}/{len(cities)}" in progress, progress
    assert f"回执 {len(counties)}/{len(counties)}" in progress
    assert "未回执" not in progress

    final = [x.text for x in stage.say(province_group, office, "<快进 17:30>") if x.by_bot]
    assert not any("未回执" in t and "县" in t for t in final), final
    summary = stage.reply(province_group, office, "#汇总 通知")
    everyone = len(cities) + len(counties)
    assert "回执已齐" in summary and f"回执 {everyone}/{everyone} 个单位" in summary, summary
