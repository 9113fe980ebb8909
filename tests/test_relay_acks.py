"""收到 and #进度: who counts as acknowledging, which notice, and what each office may see."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from matrix.blueprint import Blueprint
from matrix.relay import AckRequest, parse_ack
from tests.worlds import RelayWorld

NOTICE = "#通知 截止 17:00 请各地于今日报送辅导员名单"


@pytest.fixture
def relay(province_db: Engine, bp: Blueprint) -> RelayWorld:
    """The province has sent T1 and it has reached every group."""
    world = RelayWorld(province_db, bp)
    world.say(world.contact("P", "office_staff"), world.room("P"), NOTICE)
    world.deliver(until=world.clock.now().replace(minute=10))
    return world


@pytest.mark.parametrize(
    ("text", "request_"),
    [
        ("收到", AckRequest(None)),
        ("收到！", AckRequest(None)),
        ("收到 T12", AckRequest(12)),
        ("收到t3。", AckRequest(3)),
        ("收到 ７", AckRequest(7)),
        ("收到，马上办", None),
        ("已收到", None),
        ("收到 R3", None),
    ],
)
def test_what_counts_as_a_receipt(text: str, request_: AckRequest | None):
    assert parse_ack(text) == request_


def test_a_school_acknowledges_once_whoever_of_it_answers(relay: RelayWorld):
    brigade = relay.contact("K1S1", "brigade_counselor")
    core = relay.contact("K1S1", "core_squadron_counselor")
    assert relay.say(brigade, relay.room("K1"), "收到") == "已记录 乙1县第1小学 收到通知 T1。"
    assert (
        relay.say(core, relay.room("K1"), "收到 T1") == "乙1县第1小学 已回执过通知 T1，无需重复。"
    )


def test_a_county_acknowledges_in_its_citys_group(relay: RelayWorld):
    league = relay.contact("K2", "league_staff")
    assert relay.say(league, relay.room("C1"), "收到") == "已记录 乙2县 收到通知 T1。"
    progress = relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#进度 T1")
    assert "· 县：群 3/3，回执 1/3\n  未回执：乙1县、乙3县" in progress


def test_the_office_of_the_leading_unit_is_not_a_receipt(relay: RelayWorld):
    reply = relay.say(relay.contact("K1", "office_staff"), relay.room("K1"), "收到")
    assert reply == "只有乙1县下属单位的人员回复“收到”才计为回执。请由本单位在群里的负责同志回复"


def test_a_stranger_cannot_acknowledge(relay: RelayWorld):
    relay.world.add_contact("wxstranger1", "乙1县第1小学-王老师")  # the name proves nothing
    relay.run_world(relay.world.join(relay.room("K1"), "wxstranger1"))
    assert "你不在名册中，回执未记录" in relay.say("wxstranger1", relay.room("K1"), "收到")


def test_without_an_id_the_latest_notice_is_acknowledged(relay: RelayWorld):
    relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#通知 截止 18:00 第二件事")
    relay.deliver(until=relay.clock.now().replace(minute=20))
    brigade = relay.contact("K1S2", "brigade_counselor")
    assert relay.say(brigade, relay.room("K1"), "收到") == "已记录 乙1县第2小学 收到通知 T2。"
    assert relay.say(brigade, relay.room("K1"), "收到 T1") == "已记录 乙1县第2小学 收到通知 T1。"


def test_an_id_the_group_never_got_is_refused(relay: RelayWorld):
    brigade = relay.contact("K1S1", "brigade_counselor")
    reply = relay.say(brigade, relay.room("K1"), "收到 T9")
    assert reply == "本群没有收到过通知 T9。请核对通知编号，或直接回复“收到”确认最新一条通知"


def test_a_receipt_before_the_copy_arrives_counts_and_says_the_copy_is_coming(
    province_db: Engine, bp: Blueprint
):
    relay = RelayWorld(province_db, bp)
    relay.say(relay.contact("P", "office_staff"), relay.room("P"), NOTICE)  # not delivered yet
    reply = relay.say(relay.contact("K1S1", "brigade_counselor"), relay.room("K1"), "收到")
    # they heard of it elsewhere (a higher group, a colleague): their 收到 is their answer
    assert reply == (
        "已记录 乙1县第1小学 收到通知 T1。\n"
        "本群的通知还没发到（机器人账号离线或在排队），稍后会自动发到本群。"
    )


def test_before_any_notice_there_is_nothing_to_acknowledge(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    reply = relay.say(relay.contact("K1S1", "brigade_counselor"), relay.room("K1"), "收到")
    assert reply.startswith("本群还没有需要回执的通知")


def test_a_late_receipt_is_recorded_and_marked_late(relay: RelayWorld):
    relay.clock.advance_to(relay.clock.now().replace(hour=10))  # 18:00 in Beijing
    reply = relay.say(relay.contact("K3S2", "brigade_counselor"), relay.room("K3"), "收到")
    assert reply == "已记录 乙3县第2小学 收到通知 T1（已过截止时间）。"


def test_progress_per_level_names_the_missing_units(relay: RelayWorld):
    relay.say(relay.contact("C1", "youth_dept_head"), relay.room("P"), "收到")
    relay.say(relay.contact("K1S1", "brigade_counselor"), relay.room("K1"), "收到")
    assert relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#进度 T1") == (
        "通知 T1（示范省）进度\n"
        "截止 11月24日 17:00，统计于 11月24日 09:10\n"
        "送达 5/5 个群，回执 2/10 个单位\n"
        "· 省：群 1/1\n"
        "· 市：群 1/1，回执 1/1\n"
        "· 县：群 3/3，回执 0/3\n"
        "  未回执：乙1县、乙2县、乙3县\n"
        "· 学校：回执 1/6\n"
        "  未回执：乙1县第2小学、乙2县第1小学、乙2县第2小学、乙3县第1小学、乙3县第2小学"
    )


def test_a_county_office_sees_only_its_own_part(relay: RelayWorld):
    relay.say(relay.contact("K2S1", "brigade_counselor"), relay.room("K2"), "收到")
    reply = relay.say(relay.contact("K2", "office_staff"), relay.room("K2"), "#进度 T1")
    assert reply.startswith("通知 T1（示范省）进度：乙2县范围")
    assert "送达 1/1 个群，回执 1/3 个单位" in reply  # 乙2县 itself and its two schools
    assert "乙1县" not in reply


def test_progress_of_another_countys_notice_is_refused(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    relay.say(relay.contact("K1", "office_staff"), relay.room("K1"), NOTICE)
    reply = relay.say(relay.contact("K2", "office_staff"), relay.room("K2"), "#进度 T1")
    assert reply.startswith("你所在单位不在这条通知的下发范围内，不能查看进度")
    assert relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#进度 T1").startswith(
        "通知 T1（乙1县）进度"
    )


def test_progress_of_an_unknown_notice(relay: RelayWorld):
    reply = relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#进度 T99")
    assert reply == "没有编号为 T99 的通知。请核对通知编号（如 T12）"
