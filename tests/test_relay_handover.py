"""Losing a bot account, and nothing silent: an account that logs out, stays offline too long or
is restricted hands its copies to the other accounts in those groups; groups nobody else can
reach are told to the issuer with what to do; every loss and every copy given up is a WARNING,
a message to the issuing group and a line in #进度.

The world: 示范省 P → 甲市 C1 → 乙1–3县 K1–K3; bot1 and bot2 sit in all five relay groups, except
乙3县's, which only bot1 is in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from loguru import logger
from sqlalchemy import Engine, select

from matrix.blueprint import Blueprint
from matrix.platform import PlatformError
from matrix.relay import RelayOptions, issue_notice
from matrix.tables import DELIVERY, RELAY_ACCOUNT
from tests.worlds import RelayWorld, Wrapping

K3_GROUP = "乙3县少先队大队辅导员群"


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING", format="{message}")
    yield seen
    logger.remove(sink)


def world(engine: Engine, bp: Blueprint, **options: Any) -> RelayWorld:
    relay = RelayWorld(engine, bp, options=RelayOptions(rate=1.0, jitter=0.0, **options))
    relay.run_world(relay.world.leave(relay.room("K3"), "bot2"))
    relay.restart()  # the accounts register the rooms they are in now
    return relay


def notice(relay: RelayWorld) -> None:
    issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), "请报送名单")


def copies(relay: RelayWorld) -> dict[str, list[tuple[str, str]]]:
    """Per room, the T1 copies as (account, text)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for m in relay.bot_messages():
        if "【通知 T1】" in m.text:
            found.setdefault(m.room_id, []).append((m.contact_id, m.text))
    return found


def said(relay: RelayWorld, room: str, start: str) -> list[str]:
    return [m.text for m in relay.bot_messages(room) if m.text.startswith(start)]


def progress(relay: RelayWorld) -> str:
    """What the province office reads when it asks ``#进度 T1`` in its group."""
    return relay.say(relay.contact("P", "office_staff"), relay.room("P"), "#进度 T1")


def test_an_account_that_logs_out_hands_its_copies_over_at_once(
    province_db: Engine, bp: Blueprint, warnings: list[str]
):
    relay = world(province_db, bp)
    notice(relay)
    relay.run_world(relay.world.log_out("bot1"))
    relay.deliver(until=relay.clock.now() + timedelta(minutes=5))

    got = copies(relay)
    k3 = relay.room("K3")
    assert k3 not in got  # only bot1 is in 乙3县's group
    assert sorted(got) == sorted(r for r in relay.rooms.values() if r != k3)
    assert all([a for a, _ in c] == ["bot2"] for c in got.values())  # one copy each, by bot2
    assert not any("补发" in t for c in got.values() for _, t in c)  # nothing had been tried

    [issuer] = said(relay, relay.room("P"), "【提醒】机器人账号 bot1")
    assert issuer.startswith("【提醒】机器人账号 bot1 已退出登录。\n")
    assert f"通知 T1 有 1 个群没有其他机器人账号，暂时发不出：{K3_GROUP}。" in issuer
    assert "请尽快让账号 bot1 重新登录（运行 qunmatrix run 的电脑上扫码）" in issuer
    # the groups bot1 served that bot2 is in hear it from bot2
    for room in got:
        assert said(relay, room, "本群的机器人账号 bot1 已退出登录，本群的通知和提醒改由本账号发送")
    assert any("机器人账号 bot1 已停止服务（logged_out）" in w and K3_GROUP in w for w in warnings)

    text = progress(relay)
    assert "机器人账号停止服务：bot1（已退出登录）" in text
    assert f"无机器人账号可发：{K3_GROUP}（请让停止服务的账号重新登录" in text
    # planned elsewhere as well: a new notice leaves bot1 out
    with province_db.connect() as conn:
        assert conn.execute(
            select(RELAY_ACCOUNT.c.lost_reason).where(RELAY_ACCOUNT.c.account_id == "bot1")
        ).scalar() == ("logged_out")


def test_an_account_offline_too_long_hands_over_and_sends_the_rest_when_back(
    province_db: Engine, bp: Blueprint
):
    relay = world(province_db, bp, offline_handover_seconds=120)
    relay.run_world(relay.world.go_offline("bot1"))
    notice(relay)
    relay.deliver(until=relay.clock.now() + timedelta(seconds=60))
    assert all(a == "bot2" for c in copies(relay).values() for a, _ in c)
    before = {r for r, c in copies(relay).items()}
    relay.deliver(until=relay.clock.now() + timedelta(minutes=5))
    got = copies(relay)
    assert len(got) == 4 and len(before) < 4  # bot1's share went out only after the 120 s
    [issuer] = said(relay, relay.room("P"), "【提醒】机器人账号 bot1")
    assert issuer.startswith("【提醒】机器人账号 bot1 已掉线约 2 分钟。")
    assert "改由其他机器人账号发送" in issuer

    relay.run_world(relay.world.go_online("bot1"))
    relay.deliver(until=relay.clock.now() + timedelta(seconds=10))
    [(account, text)] = copies(relay)[relay.room("K3")]
    assert account == "bot1" and not text.startswith("【补发】")
    assert "无机器人账号可发" not in progress(relay)
    with province_db.connect() as conn:
        assert (
            conn.execute(
                select(RELAY_ACCOUNT.c.lost_at).where(RELAY_ACCOUNT.c.account_id == "bot1")
            ).scalar()
            is None
        )


def test_an_outage_shorter_than_the_hand_over_time_keeps_the_plan(
    province_db: Engine, bp: Blueprint
):
    relay = world(province_db, bp, offline_handover_seconds=600, steal_after_seconds=120)
    relay.run_world(relay.world.go_offline("bot1"))
    notice(relay)
    relay.deliver(until=relay.clock.now() + timedelta(seconds=60))
    relay.run_world(relay.world.go_online("bot1"))
    relay.deliver(until=relay.clock.now() + timedelta(seconds=10))
    with province_db.connect() as conn:
        senders = conn.execute(
            select(DELIVERY.c.account_id, DELIVERY.c.claimed_by, DELIVERY.c.state).where(
                DELIVERY.c.kind == "notice"
            )
        ).all()
    assert [s.state for s in senders] == ["sent"] * 5
    assert [a for c in copies(relay).values() for a, _ in c].count("bot1") == 3  # as planned
    assert said(relay, relay.room("P"), "【提醒】机器人账号") == []


class Restricted(Wrapping):
    """WeChat refuses every send of bot1, on a connection that is up."""

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        if self.inner.account_id == "bot1":
            raise PlatformError("发送消息失败：操作过于频繁", retryable=True)
        return str(await self.inner.send_text(room_id, text, mentions))


def test_a_restricted_account_hands_over_and_rests(province_db: Engine, bp: Blueprint):
    options = RelayOptions(rate=1.0, jitter=0.0, restricted_after_failures=3, retry_base_seconds=2)
    relay = RelayWorld(province_db, bp, options=options, wrap=Restricted)
    relay.run_world(relay.world.leave(relay.room("K3"), "bot2"))
    relay.restart()
    notice(relay)
    relay.deliver(until=relay.clock.now() + timedelta(minutes=5))
    got = copies(relay)
    assert len(got) == 4 and all(a == "bot2" for c in got.values() for a, _ in c)
    [issuer] = said(relay, relay.room("P"), "【提醒】机器人账号 bot1")
    assert "发送受限（连续发送失败，可能被微信限制）" in issuer
    assert "机器人账号停止服务：bot1（发送受限" in progress(relay)


def test_a_restricted_account_that_reconnects_during_its_rest_keeps_resting(
    province_db: Engine, bp: Blueprint
):
    options = RelayOptions(rate=1.0, jitter=0.0, restricted_after_failures=3, retry_base_seconds=2)
    relay = RelayWorld(province_db, bp, options=options, wrap=Restricted)
    notice(relay)
    relay.deliver(until=relay.clock.now() + timedelta(minutes=5))
    [bot1] = [w for w in relay.workers if w.account == "bot1"]
    assert bot1.lost == "restricted"
    relay.run_world(relay.world.go_offline("bot1"))
    relay.run_world(relay.world.go_online("bot1"))  # the connection dropped and came back
    assert bot1.lost == "restricted"
    with province_db.connect() as conn:
        reason = conn.execute(
            select(RELAY_ACCOUNT.c.lost_reason).where(RELAY_ACCOUNT.c.account_id == "bot1")
        ).scalar_one()
    assert reason == "restricted"


def test_a_copy_failed_for_good_is_told_to_the_issuer_and_logged(
    province_db: Engine, bp: Blueprint, warnings: list[str]
):
    relay = world(province_db, bp)
    relay.run_world(relay.world.leave(relay.room("K3"), "bot1"))  # nobody can reach 乙3县 now
    notice(relay)
    relay.deliver(until=relay.clock.now() + timedelta(minutes=5))
    [told] = said(relay, relay.room("P"), "【提醒】通知 T1")
    assert told.startswith(f"【提醒】通知 T1 未能发到“{K3_GROUP}”（已试 1 次：")
    assert "请检查机器人账号是否还在该群" in told
    assert any("消息未能送达，已放弃" in w and K3_GROUP in w for w in warnings)
    assert f"发送失败：{K3_GROUP}" in progress(relay)


def test_a_receipt_in_a_group_whose_copy_waits_still_counts(province_db: Engine, bp: Blueprint):
    relay = world(province_db, bp, offline_handover_seconds=3600)
    relay.run_world(relay.world.go_offline("bot1"))
    notice(relay)
    relay.deliver(until=relay.clock.now() + timedelta(seconds=30))
    k1 = relay.room("K1")
    assert k1 not in copies(relay)  # bot1's copy waits; bot2 is there and listens
    # 乙1县's school counselor heard of it from a colleague and answers in the county group
    teacher = relay.contact("K1S1", "brigade_counselor")
    reply = relay.say(teacher, k1, "收到")
    assert reply.startswith("已记录 乙1县第1小学 收到通知 T1。")
    assert reply.endswith("本群的通知还没发到（机器人账号离线或在排队），稍后会自动发到本群。")
