"""The delivery engine: pacing over several accounts, echo confirmation, retries with backoff,
hand-over between accounts, rate limits, and an account that is down."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import Engine, select

from bot.render.templates import render
from matrix.blueprint import Blueprint
from matrix.platform import PlatformError
from matrix.relay import RelayOptions, issue_notice, notice_progress, people
from matrix.relay.outbox import enqueue
from matrix.tables import DELIVERY, GROUP
from tests.worlds import RelayWorld, Wrapping


class Flaky:
    """A bot account whose sends to some rooms fail ``failures[room]`` times; with
    ``post_first`` the message does reach the room before the error (a dropped reply)."""

    def __init__(self, inner: Any, failures: dict[str, int], *, post_first: bool = False) -> None:
        self.inner = inner
        self.failures = failures
        self.post_first = post_first

    @property
    def account_id(self) -> str:
        return str(self.inner.account_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        if self.failures.get(room_id, 0) > 0:
            self.failures[room_id] -= 1
            if self.post_first:
                await self.inner.send_text(room_id, text, mentions)
            raise PlatformError("connection reset", retryable=True)
        return str(await self.inner.send_text(room_id, text, mentions))


def notice(relay: RelayWorld, text: str = "截止 17:00 请报送名单") -> None:
    issue_notice(relay.env, relay.room("P"), relay.contact("P", "office_staff"), text)


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(DELIVERY).where(DELIVERY.c.kind == "notice").order_by(DELIVERY.c.id)
            )
        )


def test_every_copy_is_confirmed_by_the_platforms_echo(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    notice(relay)
    relay.deliver()
    by_room = {m.room_id: m.message_id for m in relay.bot_messages() if "【通知 T1】" in m.text}
    with province_db.connect() as conn:
        room_of = dict(conn.execute(select(GROUP.c.id, GROUP.c.room_id)).all())
    assert len(by_room) == 5
    for row in rows(province_db):
        assert row.state == "sent" and row.confirmed_at is not None and row.claimed_by is None
        assert row.message_id == by_room[room_of[row.group_id]]


def test_each_account_keeps_its_pace(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp, options=RelayOptions(rate=0.5, jitter=0.2))
    notice(relay)
    relay.deliver()
    for bot in ("bot1", "bot2"):
        times = [m.at for m in relay.bot_messages() if m.contact_id == bot and "【通知" in m.text]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps and all(g >= 2 * 0.8 - 1e-9 for g in gaps)


def test_a_failing_group_is_retried_with_backoff_and_never_holds_up_the_rest(
    province_db: Engine, bp: Blueprint
):
    failures: dict[str, int] = {}
    relay = RelayWorld(province_db, bp, wrap=lambda acc: Flaky(acc, failures))
    failures[relay.room("K1")] = 2
    notice(relay)
    relay.deliver(until=relay.clock.now().replace(minute=1))
    others = [
        m for m in relay.bot_messages() if "【通知" in m.text and m.room_id != relay.room("K1")
    ]
    assert len(others) == 4 and max(m.at for m in others) <= 2.0
    (copy,) = [m for m in relay.bot_messages(relay.room("K1")) if "【通知" in m.text]
    # tries at 0 s, +5 s, +10 s; the error left its fate unknown, so the copy says 补发
    assert copy.at >= 15.0 and copy.text.startswith("【补发】【通知 T1】")
    assert [r.attempts for r in rows(province_db) if r.state == "sent"].count(3) == 1


def test_a_group_that_keeps_failing_is_given_up_and_shown_in_progress(
    province_db: Engine, bp: Blueprint
):
    failures: dict[str, int] = {}
    options = RelayOptions(rate=1.0, jitter=0.0, max_attempts=3)
    relay = RelayWorld(province_db, bp, options=options, wrap=lambda acc: Flaky(acc, failures))
    failures[relay.room("K2")] = 100
    notice(relay)
    relay.deliver(until=relay.clock.now().replace(minute=30))
    assert [r.state for r in rows(province_db)].count("failed") == 1
    text = render("relay/progress.j2", p=notice_progress(relay.env, 1), final=False)
    assert "送达 4/5 个群" in text and "· 县：群 2/3（失败 1）" in text
    assert "发送失败：乙2县少先队大队辅导员群（请检查机器人账号是否还在群内）" in text


def test_a_copy_that_went_out_before_an_error_is_not_sent_twice(province_db: Engine, bp: Blueprint):
    failures: dict[str, int] = {}
    relay = RelayWorld(province_db, bp, wrap=lambda acc: Flaky(acc, failures, post_first=True))
    failures[relay.room("K3")] = 1
    notice(relay)
    relay.deliver(until=relay.clock.now().replace(minute=10))
    assert len(relay.copies(relay.room("K3"), "T1")) == 1  # the echo confirmed it
    assert all(r.state == "sent" for r in rows(province_db))


class EchoAfterTheError(Wrapping):
    """A bot account whose first send to ``room`` reaches it but reports an error,
    and whose echo of it comes back only while the account's next copy is on its way (as over
    the network, where the echo and the next send overlap)."""

    def __init__(self, inner: Any, room: str, retryable: bool) -> None:
        super().__init__(inner)
        self.room = room
        self.retryable = retryable
        self.held = False

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        world = self.inner.world
        if self.held:  # the echo held back arrives now, before this send answers
            self.held = False
            world._draining = False
            await world._drain()
        if room_id != self.room or self.room == "":
            return str(await self.inner.send_text(room_id, text, mentions))
        self.room = ""
        world._draining = True  # the echo waits in the world's queue
        await self.inner.send_text(room_id, text, mentions)
        self.held = True
        raise PlatformError("connection reset", retryable=self.retryable)


@pytest.mark.parametrize("retryable", [True, False], ids=["retried", "handed-over"])
def test_an_echo_after_a_failed_send_marks_the_copy_sent_before_it_is_sent_again(
    province_db: Engine, bp: Blueprint, retryable: bool
):
    wrappers: list[EchoAfterTheError] = []

    def wrap(account: Any) -> EchoAfterTheError:
        wrappers.append(EchoAfterTheError(account, "", retryable))
        return wrappers[-1]

    relay = RelayWorld(
        province_db, bp, options=RelayOptions(rate=1.0, jitter=0.0, burst=5), wrap=wrap
    )
    first = relay.room("K1")
    for w in wrappers:
        w.room = first
    notice(relay)
    relay.deliver(until=relay.clock.now().replace(minute=10))
    assert not any(w.held for w in wrappers)  # the echo did arrive mid-batch
    assert len(relay.copies(first, "T1")) == 1  # not sent again: the room already has it
    assert all(r.state == "sent" and r.confirmed_at is not None for r in rows(province_db))


def test_an_account_that_left_a_group_hands_it_to_another(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    notice(relay)
    planned = {r.group_id: r.account_id for r in rows(province_db)}
    k2 = rows(province_db)[3]
    assert k2.account_id == "bot2"  # the plan deals the counties out alternately
    relay.run_world(relay.world.leave(relay.room("K2"), "bot2"))
    relay.deliver(until=relay.clock.now().replace(minute=5))
    (copy,) = relay.bot_messages(relay.room("K2"))
    assert copy.contact_id == "bot1" and not copy.text.startswith("【补发】")
    k2 = rows(province_db)[3]
    assert (k2.state, k2.account_id, k2.tried) == ("sent", "bot1", "bot2")
    assert planned[k2.group_id] == "bot2"


def test_a_group_no_account_can_send_to_fails_alone(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    notice(relay)
    for bot in ("bot1", "bot2"):
        relay.run_world(relay.world.leave(relay.room("K2"), bot))
    relay.deliver(until=relay.clock.now().replace(minute=5))
    assert sorted(r.state for r in rows(province_db)) == ["failed"] + ["sent"] * 4


@pytest.mark.parametrize("rate", [5.0, 0.0])
def test_rate_limits_are_waited_out_without_duplicates(
    province_db: Engine, bp: Blueprint, rate: float
):
    # the engine is told 5 messages a second (or no pace at all) but WeChat only takes one
    # every 2 seconds
    relay = RelayWorld(province_db, bp, options=RelayOptions(rate=rate, burst=3, jitter=0.0))
    for bot in relay.bots:
        bot.pacer.rate, bot.pacer.burst, bot.pacer.tokens = 0.5, 1.0, 1.0
    notice(relay)
    relay.deliver(until=relay.clock.now().replace(minute=5))
    copies = [m for m in relay.bot_messages() if "【通知 T1】" in m.text]
    assert sorted(m.room_id for m in copies) == sorted(relay.rooms.values())
    assert not any("补发" in m.text for m in copies)
    assert all(r.attempts == 1 for r in rows(province_db))


def test_an_account_that_is_down_has_its_share_taken_over(province_db: Engine, bp: Blueprint):
    options = RelayOptions(rate=1.0, jitter=0.0, steal_after_seconds=60)
    relay = RelayWorld(province_db, bp, options=options)
    notice(relay)
    relay.restart(accounts=["bot2"])  # bot1's process never comes up
    relay.deliver(until=relay.clock.now().replace(minute=10))
    copies = [m for m in relay.bot_messages() if "【通知 T1】" in m.text]
    assert len(copies) == 5 and {m.contact_id for m in copies} == {"bot2"}
    assert sorted(m.at for m in copies)[2] >= 60  # bot1's three waited out the grace period


def test_a_second_notice_is_estimated_behind_the_first(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp, options=RelayOptions(rate=0.01, jitter=0.0))
    office = relay.contact("P", "office_staff")
    first = issue_notice(relay.env, relay.room("P"), office, "开会")
    second = issue_notice(relay.env, relay.room("P"), office, "再开会")
    assert first.estimated_seconds == 300 and second.estimated_seconds == 500


def test_a_message_that_cannot_be_rendered_fails_alone(province_db: Engine, bp: Blueprint):
    relay = RelayWorld(province_db, bp)
    notice(relay)
    with province_db.begin() as conn:
        broken = people.group_for_room(conn, relay.room("K1"))
        enqueue(
            conn,
            relay.env,
            key="x",
            kind="flag",
            group=broken,
            template="relay/nope.j2",
            context={},
        )
    relay.deliver(until=relay.clock.now().replace(minute=5))
    with province_db.connect() as conn:
        states = dict(
            conn.execute(
                select(DELIVERY.c.kind, DELIVERY.c.state).where(DELIVERY.c.kind == "flag")
            ).all()
        )
    assert states == {"flag": "failed"}
    assert len([m for m in relay.bot_messages() if "【通知 T1】" in m.text]) == 5
