"""Reminders before the deadline and escalation at it, on the virtual clock; scheduled work
survives a restart and never runs twice."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from matrix.blueprint import Blueprint
from matrix.tables import RELAY_JOB
from tests.worlds import RelayWorld

NOTICE = "#通知 截止 17:00 请各地于今日报送辅导员名单"


def beijing(relay: RelayWorld, hour: int, minute: int = 0):  # type: ignore[no-untyped-def]
    return relay.clock.now().astimezone(relay.env.tz).replace(hour=hour, minute=minute, second=1)


@pytest.fixture
def relay(province_db: Engine, bp: Blueprint) -> RelayWorld:
    """T1 sent at 09:00, due 17:00; reminders at 15:00 and 16:30."""
    world = RelayWorld(province_db, bp)
    world.say(world.contact("P", "office_staff"), world.room("P"), NOTICE)
    world.deliver(until=beijing(world, 9, 10))
    world.say(world.contact("K1S1", "brigade_counselor"), world.room("K1"), "收到")
    world.say(world.contact("K1", "league_staff"), world.room("C1"), "收到")
    return world


def reminders(relay: RelayWorld, room: str) -> list[object]:
    return [m for m in relay.bot_messages(room) if "【提醒】" in m.text]


def test_nothing_is_sent_before_the_first_reminder_time(relay: RelayWorld):
    relay.deliver(until=beijing(relay, 14, 59))
    assert not any("【提醒】" in m.text for m in relay.bot_messages())


def test_reminders_name_the_laggards_and_mention_their_counselors(relay: RelayWorld):
    relay.deliver(until=beijing(relay, 15, 5))
    (k1,) = reminders(relay, relay.room("K1"))
    assert k1.text == (  # type: ignore[attr-defined]
        "【提醒】通知 T1（示范省）将于 11月24日 17:00 截止，还有约 2 小时。\n"
        "以下单位尚未回执：乙1县第2小学。\n"
        "请负责同志回复“收到 T1”。"
    )
    assert k1.mentions == (relay.contact("K1S2", "brigade_counselor"),)  # type: ignore[attr-defined]
    (c1,) = reminders(relay, relay.room("C1"))
    assert "以下单位尚未回执：乙2县、乙3县。" in c1.text  # type: ignore[attr-defined]
    assert c1.mentions == (  # type: ignore[attr-defined]
        relay.contact("K2", "league_staff"),
        relay.contact("K3", "league_staff"),
    )


def test_a_group_where_everyone_answered_is_not_reminded(relay: RelayWorld):
    relay.say(relay.contact("K1S2", "brigade_counselor"), relay.room("K1"), "收到")
    relay.deliver(until=beijing(relay, 16, 35))
    assert not reminders(relay, relay.room("K1"))
    assert len(reminders(relay, relay.room("K2"))) == 2  # 15:00 and 16:30
    assert "还有 30 分钟" in reminders(relay, relay.room("K2"))[1].text  # type: ignore[attr-defined]


def test_at_the_deadline_each_office_gets_its_laggards_and_the_issuer_the_whole_picture(
    relay: RelayWorld,
):
    relay.deliver(until=beijing(relay, 17, 5))
    (k2,) = [m.text for m in relay.bot_messages(relay.room("K2")) if "【截止通报】" in m.text]
    assert k2 == (
        "【截止通报】通知 T1（示范省）已于 11月24日 17:00 截止。\n"
        "乙2县下属仍有 2 个单位未回执（学校 2 个）：\n"
        "乙2县第1小学、乙2县第2小学\n"
        "请督促以上单位回复“收到 T1”。"
    )
    (c1,) = [m.text for m in relay.bot_messages(relay.room("C1")) if "【截止通报】" in m.text]
    assert "甲市下属仍有 7 个单位未回执（县 2 个，学校 5 个）" in c1
    (issuer,) = [m.text for m in relay.bot_messages(relay.room("P")) if "【截止通报】" in m.text]
    assert issuer.startswith(
        "【截止通报】通知 T1（示范省）进度\n截止 11月24日 17:00，统计于 11月24日 17:00"
    )
    assert "回执 2/10 个单位" in issuer and issuer.endswith("请各单位督促未回执单位尽快回复。")


def test_scheduled_work_survives_a_restart_and_runs_once(relay: RelayWorld):
    relay.deliver(until=beijing(relay, 15, 5))
    relay.restart()  # a new bot process
    relay.deliver(until=beijing(relay, 15, 30))
    relay.restart()
    relay.deliver()
    assert len(reminders(relay, relay.room("K2"))) == 2
    assert len([m for m in relay.bot_messages() if "【截止通报】" in m.text]) == 5
    with relay.engine.connect() as conn:
        assert conn.execute(select(RELAY_JOB.c.state)).scalars().all() == ["done"] * 3


def test_a_notice_without_receipts_schedules_nothing(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#通知 截止 17:00 无需回执 开会")
    relay.deliver()
    assert not any("【提醒】" in m.text or "【截止" in m.text for m in relay.bot_messages())
    with province_db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RELAY_JOB)).scalar_one() == 0


def test_a_sharded_group_reminds_each_school_in_its_own_shard(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp, shards={"K1": 2})
    relay.say(relay.contact("P", "office_staff"), relay.room("P"), NOTICE)
    relay.deliver(until=beijing(relay, 15, 5))
    one, two = relay.room("K1", 1), relay.room("K1", 2)
    assert relay.copies(one, "T1") and relay.copies(two, "T1")
    assert "以下单位尚未回执：乙1县第1小学。" in reminders(relay, one)[0].text  # type: ignore[attr-defined]
    assert "以下单位尚未回执：乙1县第2小学。" in reminders(relay, two)[0].text  # type: ignore[attr-defined]
