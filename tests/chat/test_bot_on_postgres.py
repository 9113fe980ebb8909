"""The bot on PostgreSQL: the join review round trip, the audit log, #建群/#确认/#核查, #登记 and
#汇总, the relay, as on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.chat.summary import SummaryOptions
from bot.rehearsal.stage import Stage
from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.chat.conftest import (
    BUILD_DAY,
    K1_GROUP,
    K1_OFFICE,
    K2_GROUP,
    K2_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    TEACHER,
)


def load(engine: Engine, bp: Blueprint, folder: Path, **world: int) -> None:
    """Import ``worlds.province(**world)`` (again)."""
    folder.mkdir(exist_ok=True)
    units, persons = worlds.write_roster(folder, *worlds.province(**world))
    # worlds number persons across the whole province, so most get new keys: allowed here
    import_roster(engine, read_roster(units, persons, bp), bp, allow_mass_removal=True)


@pytest.mark.postgres
def test_join_review_and_permissions_on_postgres(pg_engine, bp, tmp_path):
    load(pg_engine, bp, tmp_path)
    with Stage(pg_engine, bp) as stage:
        stage.provision()
        assert "待管理员审核" in stage.reply(K1_GROUP, "wxid_pg", "<加入>")
        assert "不在你所在单位的管辖范围内" in stage.reply(K2_GROUP, K2_OFFICE, "#核查 K1")
        assert stage.reply(K1_GROUP, K1_OFFICE, "#拒绝 1") == "已拒绝 wxid_pg 入群，已移出本群。"
    with pg_engine.connect() as conn:
        actions = [e.action for e in audit_log.entries(conn)]
    assert actions[:4] == ["command.reject", "join.reject", "command.denied", "join.hold"]


@pytest.mark.postgres
def test_register_and_summary_on_postgres(pg_engine, bp, tmp_path):
    load(pg_engine, bp, tmp_path)
    with Stage(pg_engine, bp, summaries=SummaryOptions(export_dir=tmp_path)) as stage:
        stage.provision()
        assert stage.reply(K1_GROUP, K1_OFFICE, "#登记 公众号 乙1县少先队").startswith("已登记")
        said = [line for line in stage.say(K1_GROUP, K1_OFFICE, "#汇总 媒体 csv") if line.by_bot]
        assert "公众号 1" in said[0].text
        assert "乙1县少先队" in Path(said[1].file).read_text(encoding="utf-8-sig")


@pytest.mark.postgres
def test_the_relay_in_chat_on_postgres(pg_engine, bp, tmp_path):
    units, persons = worlds.write_roster(tmp_path, *worlds.province())
    import_roster(pg_engine, read_roster(units, persons, bp), bp)
    with Stage(pg_engine, bp, summaries=SummaryOptions(export_dir=tmp_path), start=BUILD_DAY) as st:
        st.provision()
        said = [
            x for x in st.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 截止 17:00 报送") if x.by_bot
        ]
        assert len(said) == 6 and said[0].text.startswith("通知 T1 已受理，将发往 5 个群")
        assert st.reply(K1_GROUP, TEACHER, "收到") == "已记录 乙1县第1小学 收到通知 T1。"
        assert "送达 1/1 个群，回执 1/3 个单位" in st.reply(K1_GROUP, K1_OFFICE, "#进度")
        reminders = [x for x in st.say(K1_GROUP, K1_OFFICE, "<快进 15:00>") if x.by_bot]
        assert len(reminders) == 5
        assert "回执 1/10 个单位" in st.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#汇总 通知")


def test_plan_confirm_and_audit_on_postgres(pg_engine, bp, tmp_path):
    load(pg_engine, bp, tmp_path)
    with Stage(pg_engine, bp) as stage:
        stage.provision()
        load(pg_engine, bp, tmp_path / "grown", schools=3)
        assert "邀请 3 人" in stage.reply(K1_GROUP, K1_OFFICE, "#建群")
        said = [line.text for line in stage.say(K1_GROUP, K1_OFFICE, "#确认") if line.by_bot]
        assert said[-1].startswith("乙1县的建群计划已执行完毕：完成 3 步。")
        assert stage.reply(K1_GROUP, K1_OFFICE, "#核查").startswith("【核查】乙1县：共 11 个问题")
