"""The planner and the auditor on PostgreSQL: subtree filters, raw reads, apply and resume, on
the simulated WeChat."""

from __future__ import annotations

import pytest

from tests import worlds
from tests.worlds import built, codes, findings, join, load, new_world, plan, room_of, sync

pytestmark = pytest.mark.postgres


def test_build_audit_and_plan_on_postgresql(pg_engine, bp, tmp_path):
    load(pg_engine, bp, tmp_path, *worlds.province())
    assert plan(pg_engine, bp, "K2").counts()["create"] == 1
    world = new_world()
    built(pg_engine, bp, world)
    assert findings(pg_engine, bp) == [] and plan(pg_engine, bp).empty
    join(world, room_of(world, "乙2县少先队大队辅导员群"), "wxid_stranger", nickname="单位-某")
    sync(pg_engine, world)
    assert codes(findings(pg_engine, bp, "K2")) == {"UNKNOWN_MEMBER"}
    assert findings(pg_engine, bp, "K1") == []
    [group] = [g for g in plan(pg_engine, bp, "C1").groups if g.removals]
    assert group.target.unit == "K2"
