"""#上报 goes to the office of the unit leading the group; #转报 passes it up one level at a time;
reports about a notice show in its #进度."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from matrix import audit_log
from matrix.blueprint import Blueprint
from tests.worlds import RelayWorld

RELAY_AND_OFFICE = [
    "city-youth-heads",
    "county-league-leaders",
    "county-counselors",
    "county-committee",
]


@pytest.fixture
def relay(province_db: Engine, bp: Blueprint) -> RelayWorld:
    """Counties have their office group (区县级少工委委员群) besides the relay groups."""
    return RelayWorld(province_db, bp, kinds=RELAY_AND_OFFICE)


def soon(relay: RelayWorld) -> None:
    relay.deliver(until=relay.clock.now() + timedelta(minutes=5))


def test_a_report_reaches_the_county_office_with_its_id(relay: RelayWorld):
    brigade = relay.contact("K1S1", "brigade_counselor")
    reply = relay.say(brigade, relay.room("K1"), "#上报 我校已完成辅导员名单报送")
    assert reply == "已上报乙1县，发到“乙1县少工委委员群”，编号 R1。"  # the office's own group
    soon(relay)
    (card,) = relay.bot_messages(relay.room("K1", kind="county-committee"))
    assert card.text == (
        "【上报 R1】\n"
        "来自：乙1县第1小学 K1S1大辅（乙1县少先队大队辅导员群）\n"
        "我校已完成辅导员名单报送\n"
        "——\n"
        "如需继续上报，请发送“#转报 R1”。"
    )
    with relay.engine.connect() as conn:
        (entry,) = audit_log.entries(conn, action="relay.report")
    assert entry.unit_code == "K1S1" and '"report": "R1"' in entry.detail


def test_offices_pass_a_report_up_one_level_at_a_time(relay: RelayWorld):
    relay.say(
        relay.contact("K1S1", "brigade_counselor"), relay.room("K1"), "#上报 校园安全隐患已整改"
    )
    k1_office = relay.contact("K1", "office_staff")
    committee = relay.room("K1", kind="county-committee")
    assert (
        relay.say(k1_office, committee, "#转报 R1")
        == "已将上报 R1（乙1县第1小学 K1S1大辅）转报甲市办公室（已私信 2 位办公室同志，不发到各校都在的群）。"
    )
    soon(relay)
    # 甲市 has no group of its own: its staff get it privately, not the group its counties read
    assert not [m for m in relay.bot_messages(relay.room("C1")) if "【上报 R1】" in m.text]
    card, _ = [m.text for m in relay.world.messages() if m.to and "【上报 R1】" in m.text]
    assert card.startswith("【上报 R1】乙1县转报\n来自：乙1县第1小学 K1S1大辅\n校园安全隐患已整改")

    # only the office now holding it may pass it on
    assert "上报 R1 现在在甲市，只有该单位办公室同志可以转报" in relay.say(
        k1_office, committee, "#转报 R1"
    )
    c1_office = relay.contact("C1", "office_staff")
    assert relay.say(c1_office, relay.room("C1"), "#转报 R1").endswith(
        "转报示范省办公室（已私信 2 位办公室同志，不发到各校都在的群）。"
    )
    p_office = relay.contact("P", "office_staff")
    assert (
        relay.say(p_office, relay.room("P"), "#转报 R1")
        == "示范省已是本矩阵的最高一级。无法再向上转报"
    )


def test_a_school_cannot_forward_and_bad_ids_are_explained(relay: RelayWorld):
    brigade = relay.contact("K1S1", "brigade_counselor")
    relay.say(brigade, relay.room("K1"), "#上报 情况说明")
    assert "只有该单位办公室同志可以转报" in relay.say(brigade, relay.room("K1"), "#转报 R1")
    assert relay.say(brigade, relay.room("K1"), "#转报 R7") == "没有编号为 R7 的上报。请核对编号"
    assert relay.say(brigade, relay.room("K1"), "#转报 一号").startswith("看不懂要转报的编号")
    assert relay.say(brigade, relay.room("K1"), "#上报").startswith("上报没有内容")


def test_reports_about_a_notice_are_listed_in_its_progress(relay: RelayWorld):
    relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#通知 截止 17:00 请报送名单")
    soon(relay)
    reply = relay.say(
        relay.contact("K2S1", "brigade_counselor"), relay.room("K2"), "#上报 已报送，共3人"
    )
    assert reply == "已上报乙2县，发到“乙2县少工委委员群”，编号 R1（关于通知 T1）。"
    explicit = relay.say(
        relay.contact("K3S1", "brigade_counselor"), relay.room("K3"), "#上报 T1 本校暂无"
    )
    assert explicit == "已上报乙3县，发到“乙3县少工委委员群”，编号 R2（关于通知 T1）。"
    progress = relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#进度 T1")
    assert progress.endswith(
        "上报 2 条：\n"
        "· R1 乙2县第1小学 K2S1大辅：已报送，共3人（现在乙2县）\n"
        "· R2 乙3县第1小学 K3S1大辅：本校暂无（现在乙3县）"
    )
    unknown = relay.say(relay.contact("K3S1", "brigade_counselor"), relay.room("K3"), "#上报 T8 x")
    assert unknown.startswith("本群没有收到过通知 T8")


def test_strangers_cannot_report(relay: RelayWorld):
    relay.world.add_contact("wxstranger1", "某校老师")
    relay.run_world(relay.world.join(relay.room("K1"), "wxstranger1"))
    assert relay.say("wxstranger1", relay.room("K1"), "#上报 你好").startswith(
        "你不在名册中，不能上报"
    )
