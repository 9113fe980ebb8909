"""The build-status summary (附件2) against the hand-built world in ``tests.worlds``."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import insert, update

from bot.rehearsal.stage import Stage
from matrix.blueprint import BUILTIN_DIR, parse_blueprint
from matrix.errors import UnknownUnit
from matrix.models import utcnow
from matrix.roster import import_roster, read_roster
from matrix.sample import generate
from matrix.scope import AmbiguousUnit
from matrix.summary import OutOfScope, build_status
from matrix.tables import GROUP, UNIT
from tests.worlds import EXPECTED, build_groups

MAY_1 = date(2026, 5, 1)


@pytest.fixture
def world(province_db):
    build_groups(province_db)
    return province_db


def test_counts_per_level_match_the_hand_built_world(world, bp):
    status = build_status(world, bp, requester="P", as_of=MAY_1)
    assert [lv.level for lv in status.levels] == ["province", "city", "county"]
    for lv in status.levels:
        want = EXPECTED[lv.level]
        got = {
            "units": lv.units,
            "expected": lv.expected_groups,
            "built": lv.built_groups,
            "ext": lv.extension_groups,
            "members": lv.members,
            "want": lv.expected_members,
        }
        assert got == want, lv.level


def test_coverage_counts_only_expected_persons_who_joined(world, bp):
    province, city, county = build_status(world, bp, requester="P", as_of=MAY_1).levels
    # 7 contacts in the province's groups, but of the 3 expected only 2 joined: a stranger and
    # the extension group's members do not raise coverage
    assert province.members == 7
    assert (province.joined_members, province.expected_members) == (2, 3)
    assert province.group_coverage == 1.0
    assert city.member_coverage == pytest.approx(6 / 8)
    assert county.group_coverage == pytest.approx(2 / 4)
    assert county.member_coverage == pytest.approx(8 / 24)  # K3's 8 forecast


def test_the_form_totals_include_extension_groups(world, bp):
    own = build_status(world, bp, requester="P", as_of=MAY_1).own
    assert own.groups == 2  # 省级建群数: main group and the committee group


def test_own_groups_list_composition_members_and_what_is_missing(world, bp):
    groups = build_status(world, bp, requester="P", as_of=MAY_1).groups
    main, committee = groups
    assert main.name == "示范省地市级团委少年部长群"
    assert main.composition == "本级办公室同志、各下级单位少年部长"
    assert (main.members, main.expected, main.missing) == (3, 3, 1)
    assert committee.optional and committee.built and committee.members == 4
    assert committee.missing is None


def test_a_county_sees_its_shards(world, bp):
    status = build_status(world, bp, requester="K1", as_of=MAY_1)
    assert [lv.level for lv in status.levels] == ["county"]
    assert [(g.shard, g.shards, g.members, g.missing) for g in status.groups] == [
        (1, 2, 4, 1),
        (2, 2, 4, 0),
    ]
    assert status.unbuilt == []


def test_a_group_still_to_build_is_listed_under_its_template_name(world, bp):
    status = build_status(world, bp, requester="K3", as_of=MAY_1)
    (line,) = status.groups
    assert line.name == "乙3县少先队大队辅导员群"
    assert not line.built and line.shards == 0


def test_units_that_have_not_built_are_listed_with_their_parent(world, bp):
    status = build_status(world, bp, requester="P", as_of=MAY_1, deadline=date(2026, 4, 15))
    assert [(u.code, u.parent_name, u.missing) for u in status.unbuilt] == [
        ("K2", "甲市", ["中小学少先队大队辅导员群"]),
        ("K3", "甲市", ["中小学少先队大队辅导员群"]),
    ]
    assert status.overdue
    assert not build_status(world, bp, requester="P", as_of=date(2026, 4, 15)).overdue


def test_an_unbuilt_shard_makes_the_unit_unfinished(world, bp):
    with world.begin() as conn:
        conn.execute(
            update(GROUP).where(GROUP.c.unit_code == "K1", GROUP.c.shard == 2).values(room_id=None)
        )
    status = build_status(world, bp, requester="C1", as_of=MAY_1)
    assert [u.code for u in status.unbuilt] == ["K1", "K2", "K3"]
    county = status.levels[1]
    assert (county.built_groups, county.expected_groups) == (1, 4)


def test_removed_units_are_not_counted(world, bp):
    with world.begin() as conn:
        conn.execute(update(UNIT).where(UNIT.c.code == "K3").values(removed_at=utcnow()))
    county = build_status(world, bp, requester="P", as_of=MAY_1).levels[2]
    assert (county.units, county.expected_groups) == (2, 3)


def test_before_provisioning_expected_members_are_unknown(province_db, bp):
    with province_db.begin() as conn:
        conn.execute(
            insert(GROUP).values(
                unit_code="C1", kind="county-league-leaders", shard=0, name="甲市群", room_id="r1"
            )
        )
    city = build_status(province_db, bp, requester="P", as_of=MAY_1).levels[1]
    assert city.expected_members is None and city.member_coverage is None
    assert city.group_coverage == 1.0


def test_a_subtree_prefix_does_not_match_a_sibling_with_a_longer_code(world, bp, tmp_path):
    # "/P/C1/" must not take in "/P/C10/": the path filter is a prefix of whole segments
    with world.begin() as conn:
        conn.execute(
            insert(UNIT).values(
                code="C10", name="丙市", level="city", depth=2, parent_code="P", path="/P/C10/"
            )
        )
    city = build_status(world, bp, requester="C1", as_of=MAY_1).own
    assert city.units == 1
    province = build_status(world, bp, requester="P", as_of=MAY_1)
    assert province.levels[1].units == 2
    assert "C10" in [u.code for u in province.unbuilt]


def test_a_higher_office_may_ask_about_any_unit_under_it(world, bp):
    status = build_status(world, bp, requester="P", target="K1", as_of=MAY_1)
    assert status.unit.code == "K1"
    by_name = build_status(world, bp, requester="C1", target="乙2县", as_of=MAY_1)
    assert by_name.unit.code == "K2"


def test_a_unit_may_not_see_its_parent_or_a_sibling(world, bp):
    with pytest.raises(OutOfScope) as err:
        build_status(world, bp, requester="K1", target="C1", as_of=MAY_1)
    assert "乙1县只能查看本单位及下级单位的汇总" in str(err.value)
    with pytest.raises(OutOfScope):
        build_status(world, bp, requester="K1", target="K2", as_of=MAY_1)
    with pytest.raises(UnknownUnit):
        build_status(world, bp, requester="K1", target="乙2县", as_of=MAY_1)


def test_a_name_shared_by_two_units_asks_for_a_code(world, bp):
    with world.begin() as conn:
        conn.execute(update(UNIT).where(UNIT.c.code == "K2").values(name="乙1县"))
    with pytest.raises(AmbiguousUnit, match="K1、K2"):
        build_status(world, bp, requester="P", target="乙1县", as_of=MAY_1)


@pytest.mark.postgres
def test_postgresql_gives_the_same_numbers(pg_engine, bp, tmp_path):
    from matrix.roster import import_roster, read_roster
    from tests import worlds

    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    import_roster(pg_engine, read_roster(units, persons, bp), bp)
    build_groups(pg_engine)
    status = build_status(pg_engine, bp, requester="P", as_of=MAY_1)
    assert {
        lv.level: (lv.expected_groups, lv.built_groups, lv.members) for lv in status.levels
    } == {level: (v["expected"], v["built"], v["members"]) for level, v in EXPECTED.items()}
    assert [lv.joined_members for lv in status.levels] == [2, 6, 8]
    assert [u.code for u in status.unbuilt] == ["K2", "K3"]


def test_before_building_shards_and_members_are_forecast_and_do_not_jump(engine, tmp_path):
    """A county whose counselors need several groups: before anything is built the summary
    already counts every shard and every expected member, the same numbers as after."""
    text = (BUILTIN_DIR / "young_pioneers.toml").read_text(encoding="utf-8")
    small = parse_blueprint(text.replace("max_group_size = 500", "max_group_size = 100"))
    units, persons = generate("county", tmp_path / "s", seed=3)
    import_roster(engine, read_roster(units, persons, small), small)

    def county() -> tuple[int, int | None]:
        lv = build_status(engine, small, requester="230102", as_of=MAY_1).own
        return lv.expected_groups, lv.expected_members

    before = county()
    assert before[0] >= 3 and before[1] and before[1] > 200  # three shards, every counselor
    with Stage(engine, small) as stage:
        stage.provision()
    assert county() == before
