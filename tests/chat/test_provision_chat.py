"""#建群, #确认 and #核查 in conversation: an office plans its groups, confirms, the bot carries
the plan out through its account and reports; an interrupted apply is resumed; the audit is
read afresh from the rooms. People are named in conftest.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.rehearsal.stage import Stage
from matrix.platform import PlatformError
from matrix.provisioning.schedule import AccountQuota
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.chat.conftest import (
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    K2_GROUP,
    K2_OFFICE,
    STRANGER,
    TEACHER,
    audit,
)


def roster_grows(stage: Stage, folder: Path, **world: int) -> None:
    """The roster is imported again, larger: ``worlds.province(**world)``."""
    folder.mkdir(exist_ok=True)
    units, persons = worlds.write_roster(folder, *worlds.province(**world))
    # worlds number persons across the whole province, so most get new keys: allowed here
    bp = stage.bp
    import_roster(stage.engine, read_roster(units, persons, bp), bp, allow_mass_removal=True)


def nicknames_set(stage: Stage) -> None:
    """Everyone in the rooms does as the welcome asked: 群昵称 单位-姓名."""
    for room in stage.world.rooms.values():
        for cid in room.members:
            if cid not in stage.bot.accounts:
                room.members[cid] = f"单位-{stage.world.contacts[cid].name}"


# --- #建群 ------------------------------------------------------------------------------------


def test_a_built_matrix_needs_no_change(stage):
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#建群")
    assert reply == "【建群计划】乙1县\n所有群都已符合规则，无需调整。"
    assert "没有待确认的建群计划" in stage.reply(K1_GROUP, K1_OFFICE, "#确认")


def test_new_schools_on_the_roster_are_planned_confirmed_and_invited(stage, tmp_path):
    roster_grows(stage, tmp_path / "grown", schools=3)
    plan = stage.reply(K1_GROUP, K1_OFFICE, "#建群")
    assert plan == (
        "【建群计划】乙1县\n"
        "共 1 个群：邀请 3\n"
        "按账号配额需 1 天（已是最短）：bot-1 建群 0 个、操作 3 次\n"
        "· 乙1县少先队大队辅导员群：邀请 3 人，共 11 人\n"
        "发送 #确认 执行（1 小时内有效）。完整明细：qunmatrix plan --unit K1"
    )
    [entry] = audit(stage, "command.provision")
    assert entry["actor"] == K1_OFFICE and entry["steps"]["invite"] == 3

    said = stage.say(K1_GROUP, K1_OFFICE, "#确认")
    texts = [line.text for line in said if line.by_bot]
    assert texts[0] == "开始执行乙1县的建群计划，共 3 步，按账号限速进行，完成后在本群报告。"
    assert texts[-1] == "乙1县的建群计划已执行完毕：完成 3 步。受邀的人接受邀请后即入群。"
    assert said[-1].mentions == (K1_OFFICE,)
    for name in ("K1S3大辅", "K1S3中辅0", "K1S3中辅1"):  # each joined, and was welcomed
        assert f"欢迎 {name}入群！请把群昵称改为“单位-姓名”。" in texts
    room = stage.world.rooms[stage.room_of(K1_GROUP)]
    assert {"wxK1S3n018", "wxK1S3n019", "wxK1S3n020"} <= set(room.members)
    assert audit(stage, "command.confirm")[0]["steps"] == 3
    assert stage.reply(K1_GROUP, K1_OFFICE, "#建群").endswith("所有群都已符合规则，无需调整。")


def test_a_city_office_builds_the_group_of_a_new_county(stage, tmp_path):
    roster_grows(stage, tmp_path / "grown", counties=4)
    plan = stage.reply(CITY_GROUP, CITY_OFFICE, "#建群 乙4县")
    assert "· 乙4县少先队大队辅导员群：新建，设管理员 2 人，共 8 人" in plan
    said = [line.text for line in stage.say(CITY_GROUP, CITY_OFFICE, "#确认") if line.by_bot]
    assert said[-1] == "乙4县的建群计划已执行完毕：完成 3 步。受邀的人接受邀请后即入群。"
    room = stage.world.find_room("乙4县少先队大队辅导员群")
    assert room is not None and room.owner_id == "bot-1"
    assert room.admins == {"wxK4n038", "wxK4n039"} and len(room.members) == 9  # with the bot
    assert stage.reply("乙4县少先队大队辅导员群", "wxK4n038", "#帮助").startswith("K4office_staff")


def test_an_interrupted_apply_is_resumed_by_confirming_again(stage, tmp_path):
    roster_grows(stage, tmp_path / "grown", schools=5)  # three schools more: nine invitations
    stage.reply(K1_GROUP, K1_OFFICE, "#建群")
    stage.world.fail("add_member", PlatformError("与微信的连接断开", retryable=True), at=4)
    said = [line.text for line in stage.say(K1_GROUP, K1_OFFICE, "#确认") if line.by_bot]
    assert said[-1] == (
        "乙1县的建群计划执行中断：与微信的连接断开。已完成 3 步，还剩 6 步；"
        "恢复后发送 #确认 从中断处继续，已完成的步骤不会重复。"
    )
    said = [line.text for line in stage.say(K1_GROUP, K1_OFFICE, "#确认") if line.by_bot]
    assert said[0] == "继续执行乙1县的建群计划：还剩 6 步，已完成的步骤不会重复。完成后在本群报告。"
    assert said[-1] == "乙1县的建群计划已执行完毕：完成 6 步。受邀的人接受邀请后即入群。"
    invited = Counter(c for c in stage.world.calls if c[0] == "add_member")
    assert len(invited) == 9 and sorted(invited.values()) == [1] * 8 + [2]  # the failed one
    assert stage.reply(K1_GROUP, K1_OFFICE, "#建群").endswith("无需调整。")


def test_a_plan_over_rooms_an_unfinished_apply_still_works_on_waits_for_it(stage, tmp_path):
    roster_grows(stage, tmp_path / "grown", schools=3)
    stage.reply(K1_GROUP, K1_OFFICE, "#建群")
    stage.world.fail("add_member", PlatformError("与微信的连接断开", retryable=True))
    stage.say(K1_GROUP, K1_OFFICE, "#确认")  # interrupted: the county's run stays open
    stage.reply(CITY_GROUP, CITY_OFFICE, "#建群")
    reply = stage.reply(CITY_GROUP, CITY_OFFICE, "#确认")
    assert reply == (
        "乙1县的建群计划还没有执行完，与本计划涉及相同的群。"
        "请先在乙1县的群里发送 #确认 把它执行完，再重新发送 #建群。"
    )
    assert "执行完毕" in stage.replies(K1_GROUP, K1_OFFICE, "#确认")[-1]
    stage.reply(CITY_GROUP, CITY_OFFICE, "#建群")
    assert stage.replies(CITY_GROUP, CITY_OFFICE, "#确认")[0].startswith("开始执行甲市的建群计划")


def test_what_the_quotas_do_not_allow_today_waits_for_tomorrow(province_db, bp, tmp_path):
    slow = AccountQuota("bot-1", daily_group_creations=1)
    with Stage(province_db, bp, accounts=(slow,)) as stage:
        stage.provision()  # five groups, one a day: the clock is now the sixth morning
        roster_grows(stage, tmp_path / "grown", counties=5)
        assert "按账号配额需 2 天" in stage.reply(CITY_GROUP, CITY_OFFICE, "#建群")
        said = [line.text for line in stage.say(CITY_GROUP, CITY_OFFICE, "#确认") if line.by_bot]
        assert said[-1] == (
            "甲市的建群计划今天已完成 7 步，账号今天的配额已用完；还剩 3 步，请明天发送 #确认 继续。"
        )
        stage.advance(24 * 3600)
        said = [line.text for line in stage.say(CITY_GROUP, CITY_OFFICE, "#确认") if line.by_bot]
        assert said[-1].startswith("甲市的建群计划已执行完毕：完成 3 步。")
        assert stage.world.find_room("乙5县少先队大队辅导员群") is not None


def test_a_plan_is_confirmed_by_whom_it_was_shown_to_within_an_hour(stage, tmp_path):
    roster_grows(stage, tmp_path / "grown", schools=3)
    stage.reply(K1_GROUP, K1_OFFICE, "#建群")
    other_office = "wxK1n009"
    assert "没有待确认的建群计划" in stage.reply(K1_GROUP, other_office, "#确认")
    stage.advance(2 * 3600)
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#确认")
    assert reply == "没有待确认的建群计划。请先发送 #建群 查看计划（60 分钟内发送 #确认 执行）。"


@pytest.mark.parametrize(
    "group, who, text, says",
    [
        (K1_GROUP, TEACHER, "#建群", "只有单位办公室（群管理员）可以使用 #建群。"),
        (K1_GROUP, TEACHER, "#确认", "只有单位办公室（群管理员）可以使用 #确认。"),
        (K2_GROUP, K2_OFFICE, "#建群 乙1县", "乙1县（K1） 不在你所在单位的管辖范围内"),
        (K1_GROUP, K1_OFFICE, "#建群 火星县", "找不到单位“火星县”"),
        (K1_GROUP, STRANGER, "#确认", "你的微信还没有绑定名册"),
    ],
)
def test_who_may_plan_and_confirm(stage, group, who, text, says):
    if who == STRANGER:
        stage.say(group, STRANGER, "<加入>")
    assert says in stage.reply(group, who, text)


# --- #核查 ------------------------------------------------------------------------------------


def test_the_audit_reads_the_rooms_afresh_and_counts_findings_by_code(stage):
    first = stage.reply(K1_GROUP, K1_OFFICE, "#核查")
    assert first.startswith("【核查】乙1县：共 8 个问题\n提示·群昵称不规范 8 个：请")
    nicknames_set(stage)  # WeChat sends no event for a new 群昵称: only a fresh read sees it
    assert stage.reply(K1_GROUP, K1_OFFICE, "#核查") == "【核查】乙1县：没有发现问题。"
    stage.say(K1_GROUP, STRANGER, "<加入>")
    stage.world.set_nickname(stage.room_of(K1_GROUP), TEACHER, "老王")
    reply = stage.reply(K1_GROUP, K1_OFFICE, "#核查")
    assert reply == (
        "【核查】乙1县：共 2 个问题\n"
        "警告·名册外人员 1 个：联系人 wxid_stranger（群昵称「」）正在等待入群审核，请管理员批准或拒绝\n"
        "提示·群昵称不规范 1 个：请K1S1大辅把在「乙1县少先队大队辅导员群」的群昵称改为「单位-姓名」格式（现为「老王」）\n"
        "完整清单：#汇总 核查 xlsx"
    )
    [entry] = audit(stage, "command.audit")[:1]
    assert (entry["actor"], entry["unit"], entry["findings"]) == (K1_OFFICE, "K1", 2)


def test_a_city_office_audits_everything_under_it(stage, tmp_path):
    nicknames_set(stage)
    roster_grows(stage, tmp_path / "grown", counties=4)
    reply = stage.reply(CITY_GROUP, CITY_OFFICE, "#核查")
    assert reply.startswith(
        "【核查】甲市：共 3 个问题\n严重·未建群 1 个：请乙4县牵头建立「乙4县少先队大队辅导员群」"
    )
    assert "警告·未入群 2 个：请邀请K4league_staff加入「甲市县级少工委负责同志群」" in reply
    assert reply.endswith("完整清单：#汇总 核查 xlsx")
    named = stage.reply(CITY_GROUP, CITY_OFFICE, "#核查 乙2县")
    assert named == "【核查】乙2县：没有发现问题。"
