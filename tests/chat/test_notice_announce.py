"""#通知 … 公告 in conversation: the notice also becomes the 群公告 of every target group the bot
owns; the issuer is told at once which groups it does not own, and later which ones the
platform refused. Audit-logged. The world (conftest.py): 示范省 P → 甲市 C1 → 乙1–3县 K1–K3."""

from __future__ import annotations

from sqlalchemy import update

from matrix.platform import NotSupported
from matrix.tables import GROUP
from tests.chat.conftest import K2_GROUP, PROVINCE_GROUP, PROVINCE_OFFICE, audit
from tests.chat.test_notice_files import RELAY_GROUPS, bot_lines


def announcements(stage) -> dict[str, str]:
    return {r.topic: r.announcement for r in stage.world.rooms.values() if r.topic in RELAY_GROUPS}


def test_a_notice_with_announce_sets_every_owned_groups_announcement(stage):
    reply, *copies = bot_lines(
        stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 周五前报送建群情况 公告")
    )
    assert "同时设为各群的群公告。" in reply.text
    assert len(copies) == 5 and all(c.text.startswith("【通知 T1】") for c in copies)
    assert all(copy.text.count("周五前报送建群情况") == 1 for copy in copies)
    assert announcements(stage) == dict.fromkeys(
        RELAY_GROUPS, "【通知 T1】示范省\n周五前报送建群情况"
    )
    [logged] = audit(stage, "relay.announce")
    assert (logged["actor"], logged["notice"], logged["groups"]) == (PROVINCE_OFFICE, "T1", 5)


def test_without_the_option_no_announcement_is_set(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 周五前报送建群情况")
    assert set(announcements(stage).values()) == {""}
    assert audit(stage, "relay.announce") == []


def test_the_issuer_is_told_at_once_which_groups_the_bot_does_not_own(stage):
    with stage.engine.begin() as conn:  # K2's group was built by hand and adopted (认领)
        conn.execute(
            update(GROUP)
            .where(GROUP.c.name == "乙2县少先队大队辅导员群")
            .values(owner_account=None)
        )
    reply = bot_lines(stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 公告"))[0].text
    assert (
        "同时设为各群的群公告；机器人不是群主的 1 个群无法设置：乙2县少先队大队辅导员群，"
        "请其群主手动设置。"
    ) in reply
    assert announcements(stage)["乙2县少先队大队辅导员群"] == ""
    assert announcements(stage)["乙1县少先队大队辅导员群"] != ""
    [logged] = audit(stage, "relay.announce")
    assert logged["not_owned"] == ["乙2县少先队大队辅导员群"]


def test_where_the_platform_cannot_the_issuing_group_is_told(stage):
    k2 = stage.room_of(K2_GROUP)
    stage.world.rooms[k2].owner_id = "someone-else"  # the owner handed the group over
    lines = stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 公告")
    told = [line for line in bot_lines(lines) if line.group == "示范省地市级团委少年部长群"]
    [alert] = [line.text for line in told if line.text.startswith("【提醒】")]
    assert alert.startswith("【提醒】通知 T1 未能设为“乙2县少先队大队辅导员群”的群公告")
    assert "通知本身已照常发出" in alert
    assert any(line.group == "乙2县少先队大队辅导员群" for line in bot_lines(lines))


def test_a_platform_without_announcements_is_reported_the_same_way(stage):
    stage.world.fail("set_announcement", NotSupported("not supported"), at=1)
    lines = stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 请查收 公告")
    alerts = [line.text for line in bot_lines(lines) if line.text.startswith("【提醒】")]
    assert len(alerts) == 1 and "群公告" in alerts[0]
    assert sum(1 for v in announcements(stage).values() if v) == 4


def test_a_withdrawn_notice_sets_no_announcement_not_yet_set(stage):
    from matrix.relay import issue_notice

    env = stage.bot.relay.env
    issue_notice(env, stage.room_of(PROVINCE_GROUP), PROVINCE_OFFICE, "请查收 公告")
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#撤回 T1 发错了")
    assert set(announcements(stage).values()) == {""}
