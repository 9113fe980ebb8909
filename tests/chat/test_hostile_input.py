"""Numbers and control characters from chat, on SQLite and on PostgreSQL (the dialects fail
differently: SQLite on 2**63, PostgreSQL on 2**31 and on a NUL byte). Every answer is a
Chinese usage error or the command done, never an internal error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.chat.summary import SummaryOptions
from bot.rehearsal.stage import Stage
from matrix.blueprint import Blueprint
from matrix.models import JoinRequest, MediaAccount, Notice, Report
from matrix.roster import import_roster, read_roster
from matrix.tables import table_of
from tests import worlds
from tests.chat.conftest import BUILD_DAY, K1_GROUP, K1_OFFICE, TEACHER


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, bp: Blueprint, tmp_path: Path) -> Engine:
    engine: Engine = request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    import_roster(engine, read_roster(units, persons, bp), bp)
    return engine


@pytest.fixture
def on(db: Engine, bp: Blueprint, tmp_path: Path) -> Iterator[Stage]:
    exports = SummaryOptions(export_dir=tmp_path / "exports")
    with Stage(db, bp, accounts=("bot-1",), summaries=exports, start=BUILD_DAY) as s:
        s.provision()
        yield s


def three_held(stage: Stage) -> None:
    for who in ("wxid_a", "wxid_b", "wxid_c"):
        stage.say(K1_GROUP, who, "<加入>")


def statuses(stage: Stage) -> list[str]:
    with stage.engine.connect() as conn:
        t = table_of(JoinRequest)
        return list(conn.execute(select(t.c.status).order_by(t.c.id)).scalars())


@pytest.mark.parametrize("typed", ["99999999999999999999999", "2147483648", "9223372036854775808"])
def test_a_number_too_big_for_the_database_is_a_usage_error(on: Stage, typed: str):
    three_held(on)
    reply = on.reply(K1_GROUP, K1_OFFICE, f"#同意 {typed}")
    assert reply.startswith(f"“{typed}”不是有效的编号，应为数字编号，如 3。")
    assert "用法：#同意 <编号> [人员]" in reply
    assert statuses(on) == ["held"] * 3


@pytest.mark.parametrize("typed", ["٣", "३", "𝟑", "³", "Ⅲ"])
def test_digits_of_other_scripts_do_not_name_request_3(on: Stage, typed: str):
    three_held(on)
    reply = on.reply(K1_GROUP, K1_OFFICE, f"#拒绝 {typed}")
    assert f"“{typed}”不是有效的编号" in reply
    assert statuses(on) == ["held"] * 3


def test_full_width_digits_are_read_as_the_number_they_show(on: Stage):
    three_held(on)
    assert on.reply(K1_GROUP, K1_OFFICE, "#拒绝 ３").startswith("已拒绝 wxid_c 入群")


@pytest.mark.parametrize("typed", ["T99999999999", "T٣", "R2147483648"])
def test_notice_and_report_codes_are_bounded_and_ascii(on: Stage, typed: str):
    command = "#进度" if typed.startswith("T") else "#转报"
    reply = on.reply(K1_GROUP, K1_OFFICE, f"{command} {typed}")
    assert "不是有效的" in reply and "抱歉" not in reply


def test_nul_and_control_characters_are_stripped_from_a_notice(on: Stage):
    said = on.say(K1_GROUP, K1_OFFICE, "#通知 明天\x00上午\x1b开会\r\n请准时")
    assert said[1].text.startswith("通知 T1 已受理")
    with on.engine.connect() as conn:
        assert conn.execute(select(table_of(Notice).c.body)).scalar() == "明天上午开会\n请准时"


def test_nul_is_stripped_from_a_report_and_a_registration(on: Stage):
    said = [x.text for x in on.say(K1_GROUP, TEACHER, "#上报 已完成\x00建队") if x.by_bot]
    assert said[0].startswith("已上报") and said[1].endswith(
        "已完成建队\n——\n如需继续上报，请发送“#转报 R1”。"
    )
    reply = on.reply(K1_GROUP, K1_OFFICE, "#登记 公众号 乙1县\x00少先队")
    assert reply.startswith("已登记：乙1县 公众号：乙1县少先队")
    with on.engine.connect() as conn:
        assert conn.execute(select(table_of(Report).c.body)).scalar() == "已完成建队"
        names = conn.execute(select(table_of(MediaAccount).c.value)).scalars().all()
    assert names == ["乙1县少先队"]


def test_a_command_name_broken_by_a_nul_still_reads(on: Stage):
    assert on.reply(K1_GROUP, TEACHER, "#帮\x00助").startswith("K1S1大辅，你在本群可以使用：")


def test_a_joiner_whose_name_holds_a_nul_is_held(on: Stage):
    on.world.add_contact("wxid_nul", "坏\x00名字")
    [notice] = on.replies(K1_GROUP, "wxid_nul", "<加入>")
    assert "1号 坏名字（不在名册中）" in notice


def test_a_joiner_with_an_endless_name_is_held_under_its_beginning(on: Stage):
    on.world.add_contact("wxid_long", "长" * 300)
    [notice] = on.replies(K1_GROUP, "wxid_long", "<加入>")
    assert "1号 " + "长" * 64 + "（不在名册中）" in notice
