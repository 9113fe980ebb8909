"""Disconnected is not failed: while an account's platform is away its copies wait (no attempt
spent, no 补发) and go out at once when it is back; only a call cut short leaves a 补发."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from matrix.blueprint import Blueprint
from matrix.platform import Disconnected, PlatformError
from matrix.relay import RelayOptions, issue_notice
from matrix.tables import DELIVERY
from tests.worlds import RelayWorld, Wrapping

# three tries 5 s and 10 s apart: the whole schedule is over in 15 s
SHORT_RETRIES = RelayOptions(rate=1.0, jitter=0.0, retry_base_seconds=5, max_attempts=3)


def notice(relay: RelayWorld) -> None:
    issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), "请报送名单")


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(DELIVERY).where(DELIVERY.c.kind == "notice").order_by(DELIVERY.c.id)
            )
        )


def outage(relay: RelayWorld, *, online: bool) -> None:
    for bot in relay.bots:
        change = relay.world.go_online if online else relay.world.go_offline
        relay.run_world(change(bot.account_id))


def later(relay: RelayWorld, seconds: float) -> Any:
    return relay.clock.now() + timedelta(seconds=seconds)


def test_an_outage_longer_than_the_retry_schedule_loses_no_copy_and_marks_none_resend(
    province_db: Engine, bp: Blueprint
):
    relay = RelayWorld(province_db, bp, options=SHORT_RETRIES)
    outage(relay, online=False)
    notice(relay)
    relay.deliver(until=later(relay, 300))  # twenty times the whole retry schedule
    assert relay.bot_messages() == []
    assert [(r.state, r.attempts, r.resend) for r in rows(province_db)] == [
        ("pending", 0, False)
    ] * 5

    back = relay.world.clock()
    outage(relay, online=True)
    relay.deliver()
    copies = [m for m in relay.bot_messages() if "【通知 T1】" in m.text]
    assert sorted(m.room_id for m in copies) == sorted(relay.rooms.values())
    assert not any("补发" in m.text for m in copies)
    assert max(m.at for m in copies) - back <= 3.0  # at once, at the accounts' pace
    assert all((r.state, r.attempts) == ("sent", 1) for r in rows(province_db))


def test_a_copy_backing_off_goes_out_at_once_on_reconnect(province_db: Engine, bp: Blueprint):
    options = RelayOptions(rate=1.0, jitter=0.0, retry_base_seconds=600)
    cut: dict[str, bool] = {"armed": True}

    class DropsOnce(Wrapping):
        """An account whose first send to K1 errors (the call started: fate unknown)."""

        async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
            if room_id == relay.room("K1") and cut["armed"]:
                cut["armed"] = False
                raise PlatformError("发送消息失败：与微信服务的连接中断", retryable=True)
            return str(await self.inner.send_text(room_id, text, mentions))

    relay = RelayWorld(province_db, bp, options=options, wrap=DropsOnce)
    notice(relay)
    relay.deliver(until=later(relay, 30))
    assert relay.copies(relay.room("K1"), "T1") == []  # waiting out its 600 s backoff
    outage(relay, online=False)
    relay.deliver(until=later(relay, 60))
    back = relay.world.clock()
    outage(relay, online=True)
    relay.deliver(until=later(relay, 5))
    [copy] = [m for m in relay.bot_messages(relay.room("K1")) if "【通知 T1】" in m.text]
    assert copy.at - back <= 2.0
    # that call had started when it failed, so the copy may have arrived: it says 补发
    assert copy.text.startswith("【补发】")


def test_a_send_cut_by_the_outage_is_the_only_resend(province_db: Engine, bp: Blueprint):
    sends = {"n": 0}

    class CutOnSecond(Wrapping):
        """The connection drops during the second send: the call errors, the account is away."""

        async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
            sends["n"] += 1
            if sends["n"] == 2:
                for bot in relay.bots:
                    await relay.world.go_offline(bot.account_id)
                raise PlatformError("发送消息失败：与微信服务的连接中断", retryable=True)
            return str(await self.inner.send_text(room_id, text, mentions))

    relay = RelayWorld(province_db, bp, options=SHORT_RETRIES, wrap=CutOnSecond)
    notice(relay)
    relay.deliver(until=later(relay, 120))
    assert len(relay.bot_messages()) == 1
    outage(relay, online=True)
    relay.deliver()
    copies = [m for m in relay.bot_messages() if "【通知 T1】" in m.text]
    assert sorted(m.room_id for m in copies) == sorted(relay.rooms.values())  # one each
    assert [m.text.startswith("【补发】") for m in copies].count(True) == 1
    assert sorted(r.attempts for r in rows(province_db)) == [1, 1, 1, 1, 2]


def test_an_account_whose_calls_say_disconnected_before_its_presence_does_waits(
    province_db: Engine, bp: Blueprint
):
    class Lagging(Wrapping):
        """The platform's presence still says online, but every call finds it disconnected
        (the adapter has not noticed yet)."""

        down = True

        async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
            if Lagging.down:
                raise Disconnected()
            return str(await self.inner.send_text(room_id, text, mentions))

    relay = RelayWorld(province_db, bp, options=SHORT_RETRIES, wrap=Lagging)
    notice(relay)
    relay.deliver(until=later(relay, 120))
    assert [(r.state, r.attempts, r.resend) for r in rows(province_db)] == [
        ("pending", 0, False)
    ] * 5
    Lagging.down = False
    relay.deliver(until=later(relay, 30))
    assert all(r.state == "sent" and not r.resend for r in rows(province_db))


def test_the_simulated_world_refuses_calls_while_an_account_is_away():
    from bot.platforms.simulated import ManualClock, SimulatedWeChat
    from matrix.platform import Presence

    world = SimulatedWeChat(clock=ManualClock())
    bot = world.account("bot1")
    seen: list[Presence] = []

    async def note(p: Presence) -> None:
        seen.append(p)

    bot.on_presence(note)
    for who in ("alice", "bob"):
        world.add_contact(who)
    room = world.create_room("bot1", "示范群", ["alice", "bob"])

    async def story() -> None:
        await world.go_offline("bot1")
        try:
            await bot.send_text(room, "在吗")
        except Disconnected as exc:
            assert exc.retryable
        else:
            raise AssertionError("a send while offline must raise Disconnected")
        await world.log_out("bot1")
        await world.go_online("bot1")
        await bot.send_text(room, "在")

    asyncio.run(story())
    assert seen == [Presence.OFFLINE, Presence.LOGGED_OUT, Presence.ONLINE]
    assert [m.text for m in world.messages(room)] == ["在"]
