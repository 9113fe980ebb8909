"""Rehearsing adoption on the console: ``<建群 微信号 …>`` builds a room by hand with the bot in
it; once adopted it is a matrix group like any other: audited, reached by notices, its 收到
counted. A console on a database with no built groups (and an office without 微信号) runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.console import play
from bot.rehearsal.stage import Stage, StageError
from matrix.blueprint import Blueprint
from matrix.provisioning.adopt import adopt, read_members
from matrix.tables import GROUP, PERSON

ROOM = "乙1县少先队大队辅导员群"
OFFICE = "wxK1n008"
BUILD = "<建群 wxK1S1n012 wx_stranger>"


@pytest.fixture
def stage(province_db: Engine, bp: Blueprint) -> Iterator[Stage]:
    with Stage(province_db, bp, accounts=["solo-bot"]) as s:
        yield s


def adopt_room(stage: Stage, room_id: str) -> None:
    members = asyncio.run(stage.accounts[0].list_members(room_id))
    with stage.engine.begin() as conn:
        done = adopt(conn, stage.bp, room_id, "K1", None, None, "test")
        read_members(conn, done.group_id, members, bots=set(stage.bot.accounts))


def test_a_room_built_by_hand_holds_its_owner_the_members_and_the_bot(stage):
    said = play(stage, ROOM, OFFICE, BUILD)
    assert [(x.group, x.sender, x.text, x.by_bot) for x in said][:1] == [
        (ROOM, OFFICE, BUILD, False)
    ]
    room = stage.world.find_room(ROOM)
    assert room is not None and room.owner_id == OFFICE
    assert set(room.members) == {OFFICE, "wxK1S1n012", "wx_stranger", "solo-bot"}
    assert room.admins == set()  # the bot is neither owner nor admin
    with pytest.raises(StageError, match="已有名为"):
        play(stage, ROOM, OFFICE, BUILD)


def test_an_adopted_room_is_audited_reached_by_a_notice_and_its_receipts_count(stage):
    play(stage, ROOM, OFFICE, BUILD)
    room = stage.world.find_room(ROOM)
    assert room is not None
    adopt_room(stage, room.room_id)
    stage.run(stage.bot.relay.start())
    audit = stage.reply(ROOM, OFFICE, "#核查")
    assert audit.startswith("【核查】乙1县")
    assert "名册外人员 1 个：联系人 wx_stranger" in audit  # the stranger
    assert "未入群 6 个" in audit  # the second office staff and the schools not in the room
    lines = stage.say(ROOM, OFFICE, "#通知 截止 17:00 请报送建队情况")
    texts = [x.text for x in lines if x.by_bot]
    assert texts[0].startswith("通知 T1 已受理，将发往 1 个群")
    assert any(t.startswith("【通知 T1】乙1县") for t in texts)
    assert stage.reply(ROOM, "wxK1S1n012", "收到") == "已记录 乙1县第1小学 收到通知 T1。"


def test_a_console_with_no_built_groups_and_no_office_wechat_runs(
    province_db: Engine, monkeypatch, tmp_path: Path
):
    with province_db.begin() as conn:  # the province office has no 微信号: no starter room
        conn.execute(update(PERSON).where(PERSON.c.wechat_id.like("wxPn%")).values(wechat_id=None))
        assert conn.execute(select(GROUP.c.id)).first() is None
    monkeypatch.setenv("QUNMATRIX_ACCOUNTS", '[{"id": "solo-bot"}]')
    monkeypatch.setenv("QUNMATRIX_LOG_LEVEL", "ERROR")
    path = tmp_path / "s.tsv"
    path.write_text(f"{ROOM}\t{OFFICE}\t{BUILD}\n{ROOM}\twx_stranger\t大家好\n", encoding="utf-8")
    url = province_db.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--db", url, "console", "--script", str(path)])
    assert result.exit_code == 0, result.output
    assert "<建群 微信号 …>" in result.stderr
    # invited into a room it does not know, the bot introduces itself once, then stays quiet
    [intro] = result.stdout.splitlines()
    assert intro.startswith(f"{ROOM}\tsolo-bot\t我是群矩阵助手")
