"""#通知: who may send it, where it goes, what the issuer is told, and bad input.

The world (tests.worlds.province): 示范省 P → 甲市 C1 → 乙1县 K1 … 乙3县 K3 → two schools each.
Relay groups: P's 地市级团委少年部长群, C1's 县级少工委负责同志群, each county's 大队辅导员群.
The virtual clock starts at 09:00 on 24 November 2026, Beijing time.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine

from bot.render.templates import render
from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.models import Delivery, Notice
from matrix.relay import BadCommand, RelayOptions, issue_notice
from matrix.relay.drafts import parse_notice
from tests.worlds import MORNING, TZ, RelayWorld, count

NOTICE = "#通知 截止 17:00 请各地于今日报送辅导员名单"


def test_a_province_notice_reaches_every_relay_group_top_down(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    office = relay.contact("P", "office_staff")

    reply = relay.say(office, relay.room("P"), NOTICE)
    assert (
        "通知 T1 已受理，将发往 5 个群（省级 1 个，市级 1 个，县级 3 个），自上而下逐级发送"
        in reply
    )
    assert "由 2 个机器人账号分担，预计 3 秒内发完" in reply
    assert "截止 11月24日 17:00，请各单位回复“收到 T1”" in reply
    assert "将于 11月24日 15:00、11月24日 16:30 提醒未回执的单位" in reply

    relay.deliver()
    sent = [m for m in relay.bot_messages() if "【通知 T1】" in m.text]
    assert [m.room_id for m in sent] == [relay.room(u) for u in ("P", "C1", "K1", "K2", "K3")]
    assert sent[0].text == (
        "【通知 T1】示范省\n请各地于今日报送辅导员名单\n——\n截止：11月24日 17:00\n"
        "请各单位负责同志在本群回复“收到 T1”确认。"
    )
    # the work is spread over both accounts, each at its own pace
    assert {m.contact_id for m in sent} == {"bot1", "bot2"}
    assert max(m.at for m in sent) == 2.0


def test_without_a_deadline_the_notice_is_due_at_the_end_of_the_day_in_beijing(
    province_db: Engine, bp: Blueprint
):
    # 00:30 in Beijing is still the 23rd in UTC: "the same day" is the local one
    relay = RelayWorld(province_db, bp, start=datetime(2026, 11, 24, 0, 30, tzinfo=TZ))
    reply = relay.say(
        relay.contact("P", "office_staff"), relay.room("P"), "#通知 无需回执 周五开会"
    )
    assert "截止 11月24日 23:59（默认当天结束）。" in reply
    assert "收到" not in reply and "提醒" not in reply
    relay.deliver()
    assert relay.copies(relay.room("K1"), "T1")[0].endswith(
        "截止：11月24日 23:59\n本通知无需回执。"
    )


def test_a_county_office_reaches_only_its_own_schools(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    reply = relay.say(relay.contact("K1", "office_staff"), relay.room("K1"), NOTICE)
    assert "将发往 1 个群（县级 1 个）" in reply
    relay.deliver()
    assert relay.copies(relay.room("K1"), "T1")
    assert not relay.copies(relay.room("K2"), "T1") and not relay.copies(relay.room("C1"), "T1")


def test_a_county_office_cannot_send_to_another_county(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    k1_office = relay.contact("K1", "office_staff")
    relay.run_world(relay.world.join(relay.room("K2"), k1_office))

    reply = relay.say(k1_office, relay.room("K2"), NOTICE)
    assert reply == (
        "只有乙2县的办公室同志可以在本群下发通知。"
        "请在你所在单位牵头的工作群里发送，通知只能发往本单位下属的群"
    )
    assert count(province_db, Notice) == 0 and count(province_db, Delivery) == 0


def test_members_who_are_not_the_office_cannot_send(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    counselor = relay.contact("K1S1", "brigade_counselor")
    assert "只有乙1县的办公室同志可以在本群下发通知" in relay.say(
        counselor, relay.room("K1"), NOTICE
    )
    relay.world.add_contact("wxstranger1", "冒充的办公室")
    relay.run_world(relay.world.join(relay.room("K1"), "wxstranger1"))
    assert "你不在名册中，不能下发通知" in relay.say("wxstranger1", relay.room("K1"), NOTICE)
    assert count(province_db, Notice) == 0


def test_a_room_outside_the_matrix_is_refused(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    office = relay.contact("P", "office_staff")
    other = relay.world.create_room("bot1", "闲聊群", [office])
    assert "本群不在群矩阵中" in relay.say(office, other, NOTICE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#通知", "通知没有正文。请这样发送：#通知 截止 17:00 正文内容"),
        ("#通知 截止 17:00", "通知没有正文"),
        ("#通知 截止 25:00 开会", "时间 25:00 不存在"),
        ("#通知 截止 8:00 开会", "截止时间 11月24日 08:00 已经过去。请写一个将来的时间"),
        ("#通知 截止 2月30日 9:00 开会", "日期 2月30日 不存在"),
        ("#通知 截止 开会", "截止后面缺少时间"),
        ("#通知 截止明晚 开会", "看不懂截止时间"),
    ],
)
def test_bad_notices_say_what_is_wrong_and_write_nothing(
    province_db: Engine, bp: Blueprint, text: str, message: str
):
    relay = RelayWorld(province_db, bp)
    assert message in relay.say(relay.contact("P", "office_staff"), relay.room("P"), text)
    assert count(province_db, Notice) == 0


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("截止 17:00 正文", "11-24 17:00"),
        ("截止17点 正文", "11-24 17:00"),
        ("截止：17点半 正文", "11-24 17:30"),
        ("截止 17点15分 正文", "11-24 17:15"),
        ("截止 明天 9:00 正文", "11-25 09:00"),
        ("截止 明天 正文", "11-25 23:59"),
        ("截止 11月30日 12:00 正文", "11-30 12:00"),
        ("截止 24:00 正文", "11-24 23:59"),
        ("需回执 截止 １８：００ 正文", "11-24 18:00"),
    ],
)
def test_deadline_forms(text: str, due: str):
    draft = parse_notice(text, MORNING)
    assert (draft.body, draft.deadline.strftime("%m-%d %H:%M")) == ("正文", due)
    assert draft.deadline.tzinfo == TZ


def test_a_deadline_inside_the_body_is_left_alone():
    draft = parse_notice("请于截止 17:00 前报送", MORNING)
    assert draft.body == "请于截止 17:00 前报送" and not draft.deadline_given


def test_the_issuer_is_warned_when_the_accounts_cannot_make_the_deadline(
    province_db: Engine, bp: Blueprint
):
    slow = RelayOptions(rate=0.001, jitter=0.0)  # one message every 1000 s
    relay = RelayWorld(province_db, bp, options=slow)
    reply = relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#通知 截止 9:30 开会")
    assert "预计 11月24日 09:50 前发完" in reply
    assert "⚠ 按各账号的限速，预计发完时已过截止时间。建议增加机器人账号，或放宽截止时间。" in reply


def test_the_issuer_is_told_about_groups_no_account_can_reach_and_groups_not_built(
    province_db: Engine, bp: Blueprint
):
    relay = RelayWorld(province_db, bp, without_bots=["K3"], unbuilt=["K2"])
    reply = relay.say(relay.contact("P", "office_staff"), relay.room("P"), NOTICE)
    assert "将发往 4 个群" in reply
    assert "⚠ 其中 1 个群里没有机器人账号，暂时发不出去。" in reply
    assert "另有 1 个应建的接力群尚未建成，收不到本通知。" in reply
    relay.deliver()
    assert relay.copies(relay.room("K1"), "T1") and not relay.copies(relay.room("K3"), "T1")


def test_with_no_account_in_any_group_the_issuer_is_told_to_add_one(
    province_db: Engine, bp: Blueprint
):
    relay = RelayWorld(province_db, bp, without_bots=["P", "C1", "K1", "K2", "K3"])
    plan = issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), "开会")
    reply = render("relay/notice_plan.j2", plan=plan)
    assert "将发往 5 个群" in reply
    assert "⚠ 这些群里目前都没有机器人账号，通知暂时发不出去：请先把机器人拉进群。" in reply


def test_every_notice_is_in_the_audit_log(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    office = relay.contact("P", "office_staff")
    relay.say(office, relay.room("P"), NOTICE)
    with province_db.connect() as conn:
        (entry,) = audit_log.entries(conn, action="relay.notice")
    assert (entry.actor, entry.unit_code) == (office, "P")
    assert '"notice": "T1"' in entry.detail and '"groups": 5' in entry.detail


def test_a_bad_deadline_is_a_bad_command():
    with pytest.raises(BadCommand):
        parse_notice("截止 99:99 x", MORNING)


@pytest.mark.parametrize(
    ("text", "body", "due", "ack"),
    [
        (
            "请于今天17:00前报送建群情况 截止 17:00",
            "请于今天17:00前报送建群情况",
            "11-24 17:00",
            True,
        ),
        ("周五开会，截止明天9点。", "周五开会", "11-25 09:00", True),
        ("周五开会（截止 18:30）", "周五开会", "11-24 18:30", True),
        ("周五开会 无需回执", "周五开会", "11-24 23:59", False),
        (
            "周五开会，请按时参加。截止 17:00 无需回执",
            "周五开会，请按时参加。",
            "11-24 17:00",
            False,
        ),
        ("本周截止", "本周截止", "11-24 23:59", True),
    ],
)
def test_options_may_also_close_the_text(text: str, body: str, due: str, ack: bool):
    draft = parse_notice(text, MORNING)
    assert (draft.body, draft.deadline.strftime("%m-%d %H:%M"), draft.require_ack) == (
        body,
        due,
        ack,
    )
