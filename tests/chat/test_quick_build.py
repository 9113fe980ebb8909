"""The stand-in builder (until issue 3's planner): groups, expected members, shards, rooms."""

from __future__ import annotations

from alembic import command
from sqlalchemy import func, inspect, select

from bot.quick_build import expected_groups
from bot.stage import Stage
from matrix.blueprint import BUILTIN_DIR, parse_blueprint
from matrix.db import _alembic_config, migrate
from matrix.models import Group, Membership
from matrix.roster import import_roster, read_roster
from matrix.tree import UnitTree
from tests import worlds


def test_groups_follow_the_blueprint_and_skip_groups_with_only_admins(province_db, bp):
    tree = UnitTree.load(province_db, bp.level_keys)
    planned = {(g.unit_code, g.kind): g for g in expected_groups(province_db, bp, tree)}
    county = planned[("K1", "county-counselors")]
    assert county.name == "乙1县少先队大队辅导员群" and county.shard == 0
    assert len(county.members) == 2 + 2 * 3 and len(county.admins) == 2
    assert ("K1", "county-committee") not in planned  # no committee members: nobody to lead


def test_a_group_over_the_cap_is_split_keeping_the_office_and_whole_schools(engine, tmp_path):
    text = (BUILTIN_DIR / "young_pioneers.toml").read_text(encoding="utf-8")
    bp = parse_blueprint(text.replace("max_group_size = 500", "max_group_size = 10"))
    units, persons = worlds.write_roster(tmp_path, *worlds.province(counties=1, schools=4))
    import_roster(engine, read_roster(units, persons, bp), bp)
    tree = UnitTree.load(engine, bp.level_keys)
    shards = [g for g in expected_groups(engine, bp, tree) if g.kind == "county-counselors"]
    assert [g.name for g in shards] == ["乙1县少先队大队辅导员一群", "乙1县少先队大队辅导员二群"]
    for g in shards:
        assert g.members[:2] == g.admins and len(g.members) <= 9  # one seat for the bot
    schools = [{m for m in g.members} - set(g.admins) for g in shards]
    assert not schools[0] & schools[1] and sum(len(s) for s in schools) == 12


def test_provisioning_writes_groups_and_is_idempotent(province_db, bp):
    with Stage(province_db, bp) as stage:
        first = stage.provision()
        again = stage.provision()
        assert first.rooms_created == first.groups and again.rooms_created == 0
        with province_db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Group)).scalar() == first.groups
            expected = conn.execute(
                select(func.count()).select_from(Membership).where(Membership.state == "expected")
            ).scalar()
        assert expected == sum(len(r.members) - 1 for r in stage.world.rooms.values())
        room = stage.world.rooms[stage.room_of("K1:county-counselors")]
        assert room.admins == {"wxK1n008", "wxK1n009"}


def test_migration_0004_goes_down_and_up(engine):
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert "held_joiner" not in inspect(engine).get_table_names()
    migrate(engine)
    assert "held_joiner" in inspect(engine).get_table_names()
