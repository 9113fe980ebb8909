"""The stage every conversation test plays on: ``worlds.province()`` with its groups built in
the simulated WeChat, one bot account. Who is who in that world:"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from bot.stage import Stage
from bot.summary_chat import SummaryOptions
from matrix import audit_log
from matrix.blueprint import Blueprint

K1_GROUP = "K1:county-counselors"  # 乙1县少先队大队辅导员群, led by county K1
K2_GROUP = "K2:county-counselors"
CITY_GROUP = "C1:county-league-leaders"  # 甲市县级少工委负责同志群
PROVINCE_GROUP = "P:city-youth-heads"
K1_OFFICE = "wxK1n008"  # K1 office staff: admin of the K1 groups
K2_OFFICE = "wxK2n018"
CITY_OFFICE = "wxC1n004"
PROVINCE_OFFICE = "wxPn001"
TEACHER = "wxK1S1n012"  # brigade counselor of school K1S1, member of the K1 group
TEACHER_PHONE = "13900000012"
STRANGER = "wxid_stranger"
MORNING = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # the stage's clock


@pytest.fixture
def stage(province_db: Engine, bp: Blueprint, tmp_path: Path) -> Iterator[Stage]:
    exports = SummaryOptions(export_dir=tmp_path / "exports")
    with Stage(province_db, bp, accounts=("bot-1",), summaries=exports, start=MORNING) as s:
        s.provision()
        yield s


def audit(stage: Stage, action: str) -> list[dict]:
    """The audit log's ``action`` entries: actor, unit and detail in one dict each."""
    with stage.engine.connect() as conn:
        return [
            {"actor": e.actor, "unit": e.unit_code, **json.loads(e.detail)}
            for e in audit_log.entries(conn, action=action)
        ]
