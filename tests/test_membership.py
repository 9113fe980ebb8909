"""Expected membership: who the selectors put in each group, per unit, with quotas."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from matrix.blueprint import BUILTIN_DIR, parse_blueprint
from matrix.errors import UnknownUnit
from matrix.models import Group, utcnow
from tests import worlds
from tests.worlds import load, looked, person_id


def target(survey, unit, kind):
    return next(t for t in survey.targets if t.unit == unit and t.kind == kind)


def test_the_county_group_holds_its_office_and_every_schools_counselors(province_db, bp):
    t = target(looked(province_db, bp), "K1", "county-counselors")
    ids = {
        wx: person_id(province_db, wx)
        for wx in ("wxK1n008", "wxK1n009", "wxK1S1n012", "wxK1S2n017")
    }
    assert t.members[:2] == [ids["wxK1n008"], ids["wxK1n009"]]  # the office first
    assert len(t.members) == 2 + 2 * 3
    assert ids["wxK1S1n012"] in t.members and ids["wxK1S2n017"] in t.members
    assert t.admins == [ids["wxK1n008"], ids["wxK1n009"]]
    assert t.responsible == ids["wxK1n008"]
    assert (t.shard, t.name, t.required, t.built) == (0, "乙1县少先队大队辅导员群", True, False)


def test_the_city_group_takes_each_countys_league_staff_and_chief_counselor(province_db, bp):
    t = target(looked(province_db, bp), "C1", "county-league-leaders")
    assert len(t.members) == 2 + 3 * 2


def test_quota_takes_at_most_the_maximum_and_reports_a_shortfall(engine, bp, tmp_path):
    units, persons = worlds.province(counties=1, schools=2, cores=4)
    persons = [
        p for p in persons if not (p[0] == "K1S2" and p[1].endswith(("中辅1", "中辅2", "中辅3")))
    ]
    load(engine, bp, tmp_path, units, persons)
    s = looked(engine, bp)
    t = target(s, "K1", "county-counselors")
    assert len(t.members) == 2 + (1 + 3) + (1 + 1)  # K1S1: 3 of its 4 cores; K1S2: its only one
    assert [(x.unit, x.role, x.have, x.need) for x in s.shortfalls] == [
        ("K1S2", "core_squadron_counselor", 1, 2)
    ]


def test_an_extension_group_is_expected_once_it_exists(province_db, bp):
    assert "county-committee" not in {t.kind for t in looked(province_db, bp).targets}
    with province_db.begin() as conn:
        conn.execute(
            insert(Group.__table__),  # type: ignore[attr-defined]
            [
                {
                    "unit_code": "K1",
                    "kind": "county-committee",
                    "shard": 0,
                    "name": "x",
                    "created_at": utcnow(),
                }
            ],
        )
    t = target(looked(province_db, bp), "K1", "county-committee")
    assert not t.required and len(t.members) == 2  # the office; the world has no 委员


def test_a_county_scope_sees_the_same_as_the_whole_roster(province_db, bp):
    whole = {(t.unit, t.kind): t.members for t in looked(province_db, bp).targets}
    county = looked(province_db, bp, "K2")
    assert [(t.unit, t.kind) for t in county.targets] == [("K2", "county-counselors")]
    assert county.targets[0].members == whole[("K2", "county-counselors")]


def test_an_unknown_scope_is_a_clear_error(province_db, bp):
    with pytest.raises(UnknownUnit, match="找不到单位代码 X9"):
        looked(province_db, bp, "X9")


def test_parent_and_descendants_selectors(engine, tmp_path):
    text = (BUILTIN_DIR / "young_pioneers.toml").read_text(encoding="utf-8")
    text += """
[[group]]
key = "county-teachers"
led_by = "county"
label = "名师群"
name = "{unit.name}名师群{shard}"
members = ["office_staff@parent", "famous_teacher@descendants"]
admins = ["office_staff@self"]
"""
    bp = parse_blueprint(text)
    units, persons = worlds.province(counties=1, schools=2)
    persons += [("K1S2", "名师甲", "famous_teacher", "13900001111", "wxteacher1")]
    load(engine, bp, tmp_path, units, persons)
    t = target(looked(engine, bp), "K1", "county-teachers")
    city_office = [person_id(engine, "wxC1n004"), person_id(engine, "wxC1n005")]
    assert set(t.members) == {*t.admins, *city_office, person_id(engine, "wxteacher1")}
