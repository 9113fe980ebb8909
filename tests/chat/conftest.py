"""The stage every conversation test plays on: ``worlds.province()`` with its groups planned and
built in the simulated WeChat by one bot account. Who is who in that world:"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from bot.chat.summary import SummaryOptions
from bot.rehearsal.stage import Line, Stage
from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.roster import import_roster, read_roster
from tests import worlds

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
# the stage starts the day before: Stage.provision() builds the groups within the accounts'
# daily quotas (one day for these small worlds) and leaves the clock on the next morning
BUILD_DAY = MORNING - timedelta(days=1)
# K1S2's brigade counselor has no 微信号 on the roster in ``newcomer_stage``: the bot could not
# invite them, and they come in by QR code with a WeChat the bot does not know
NEWCOMER_NAME = "K1S2大辅"
NEWCOMER_PHONE = "13900000015"
NEWCOMER = "wxid_newcomer"


@pytest.fixture
def stage(province_db: Engine, bp: Blueprint, tmp_path: Path) -> Iterator[Stage]:
    exports = SummaryOptions(export_dir=tmp_path / "exports")
    with Stage(province_db, bp, accounts=("bot-1",), summaries=exports, start=BUILD_DAY) as s:
        s.provision()
        yield s


def newcomer_roster(folder: Path) -> tuple[Path, Path]:
    """``worlds.province()`` with the newcomer's 微信号 left blank."""
    units, persons = worlds.province()
    persons = [(*p[:4], "") if p[1] == NEWCOMER_NAME else p for p in persons]
    folder.mkdir(parents=True, exist_ok=True)
    return worlds.write_roster(folder, units, persons)


@pytest.fixture
def newcomer_stage(engine: Engine, bp: Blueprint, tmp_path: Path) -> Iterator[Stage]:
    import_roster(engine, read_roster(*newcomer_roster(tmp_path / "roster"), bp), bp)
    with Stage(engine, bp, accounts=("bot-1",)) as s:
        s.provision()
        yield s


def bot_lines(lines: list[Line]) -> list[Line]:
    """What the bot said among the lines of a step."""
    return [line for line in lines if line.by_bot]


def audit(stage: Stage, action: str) -> list[dict]:
    """The audit log's ``action`` entries: actor, unit and detail in one dict each."""
    with stage.engine.connect() as conn:
        return [
            {"actor": e.actor, "unit": e.unit_code, **json.loads(e.detail)}
            for e in audit_log.entries(conn, action=action)
        ]
