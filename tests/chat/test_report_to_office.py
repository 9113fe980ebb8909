"""#上报 reaches the office only: in the office's own group if one is built (every member from
the unit itself: 乙1县少工委委员群), otherwise each of its staff privately (私聊); never the
shared group every school reads. The sender is told where it went; #转报 follows the same rule
one level up. The world (conftest.py): the counties lead only their counselor group, which
all their schools read; their office staff are wxK1n008 and wxK1n009."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from bot.rehearsal.stage import Stage
from matrix.tables import CONTACT_BINDING, GROUP, PERSON, REPORT
from tests.chat.conftest import (
    CITY_GROUP,
    CITY_OFFICE,
    K1_GROUP,
    K1_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    TEACHER,
    audit,
    bot_lines,
)

K1_STAFF = ["wxK1n008", "wxK1n009"]
COMMITTEE = "乙1县少工委委员群"


def build_committee_group(stage: Stage) -> None:
    """乙1县's own group (optional in the blueprint), built by hand with the bot in it."""
    room = stage.world.create_room("bot-1", COMMITTEE, K1_STAFF)
    with stage.engine.begin() as conn:
        conn.execute(
            insert(GROUP).values(
                unit_code="K1", kind="county-committee", shard=0, name=COMMITTEE, room_id=room
            )
        )
    stage.run(stage.bot.relay.start())  # the account registers the room it is in


def test_a_report_goes_privately_to_the_office_staff_not_into_the_shared_group(stage):
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 截止 17:00 请报送建队情况")
    lines = bot_lines(stage.say(K1_GROUP, TEACHER, "#上报 我校已完成建队仪式"))
    receipt, *sent = lines
    assert receipt.group == "乙1县少先队大队辅导员群"
    assert receipt.text == (
        "已上报乙1县办公室（已私信 2 位办公室同志，不发到各校都在的群），编号 R1（关于通知 T1）。"
    )
    assert [line.group for line in sent] == [f"私聊:{c}" for c in K1_STAFF]
    assert all(line.text.startswith("【上报 R1】\n来自：乙1县第1小学 K1S1大辅") for line in sent)
    # nothing of it in the group the schools read, but the receipt
    shared = [m for m in stage.world.messages(stage.room_of(K1_GROUP)) if "我校已完成" in m.text]
    assert shared == [
        next(m for m in stage.world.messages() if m.text.endswith("我校已完成建队仪式"))
    ]
    assert audit(stage, "relay.report")[0]["via"] == "private"


def test_a_report_goes_to_the_offices_own_group_where_one_is_built(stage):
    build_committee_group(stage)
    receipt, sent = bot_lines(stage.say(K1_GROUP, TEACHER, "#上报 我校已完成建队仪式"))
    assert receipt.text == f"已上报乙1县，发到“{COMMITTEE}”，编号 R1。"
    assert sent.group == COMMITTEE and sent.text.startswith("【上报 R1】")


def test_forwarding_follows_the_same_rule_and_still_works(stage):
    stage.say(K1_GROUP, TEACHER, "#上报 我校已完成建队仪式")
    lines = bot_lines(stage.say(K1_GROUP, K1_OFFICE, "#转报 R1"))
    assert lines[0].text == (
        "已将上报 R1（乙1县第1小学 K1S1大辅）转报甲市办公室（已私信 2 位办公室同志，不发到各校都在的群）。"
    )
    assert [line.group for line in lines[1:]] == ["私聊:wxC1n004", "私聊:wxC1n005"]
    assert lines[1].text.startswith("【上报 R1】乙1县转报")
    lines = bot_lines(stage.say(CITY_GROUP, CITY_OFFICE, "#转报 R1"))
    assert [line.group for line in lines[1:]] == ["私聊:wxPn001", "私聊:wxPn002"]
    assert "已是本矩阵的最高一级" in stage.reply(PROVINCE_GROUP, PROVINCE_OFFICE, "#转报 R1")


def test_an_office_the_bot_cannot_reach_refuses_the_report_and_keeps_nothing(stage):
    with stage.engine.begin() as conn:  # 乙1县's staff have no 微信号 and no binding any more
        conn.execute(PERSON.update().where(PERSON.c.wechat_id.in_(K1_STAFF)).values(wechat_id=None))
        conn.execute(
            CONTACT_BINDING.update()
            .where(CONTACT_BINDING.c.contact_id.in_(K1_STAFF))
            .values(revoked_at=func.now(), revoked_by="test")
        )
    reply = stage.reply(K1_GROUP, TEACHER, "#上报 我校已完成建队仪式")
    assert reply == (
        "乙1县还没有自己的工作群，办公室同志也没有登记微信号，上报无处可送。"
        "请管理员为办公室同志登记微信号，或建立本单位的工作群。"
    )
    with stage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(REPORT)).scalar_one() == 0
