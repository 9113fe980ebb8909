"""The delivery engine on the wall clock, as ``qunmatrix run`` drives it. Its database work runs
off the event loop, so a claim waiting on a lock never freezes the chat; on PostgreSQL the
accounts' steps overlap (SQLite has one writer and keeps turns), and an error in one account's
step stops the loop only once the others have recorded theirs."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from matrix.blueprint import Blueprint
from matrix.platform import Presence
from matrix.relay import (
    DeliveryWorker,
    RelayEnv,
    RelayOptions,
    VirtualClock,
    delivery,
    drive,
    issue_notice,
)
from matrix.relay.accounts import serving_rates
from matrix.relay.handover import hand_over
from matrix.roster import import_roster, read_roster
from matrix.tables import DELIVERY
from tests import worlds
from tests.worlds import MORNING, RelayWorld

ACCOUNTS = ("bot1", "bot2", "bot3")
START = VirtualClock(MORNING)()  # the virtual clock's reading at MORNING


class SlowSends(worlds.Wrapping):
    """An account whose every send takes 50 ms on the platform."""

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        await asyncio.sleep(0.05)
        return str(await self.inner.send_text(room_id, text, mentions))


def province_on_the_wall_clock(
    engine: Engine, bp: Blueprint, tmp_path: Path, slow: frozenset[str] = frozenset()
) -> RelayWorld:
    """A province of six counties with three accounts in every group, sending unpaced in
    batches of two so that each account takes several steps; the ``slow`` ones send slowly."""
    units, persons = worlds.write_roster(tmp_path, *worlds.province(counties=6, cores=1))
    import_roster(engine, read_roster(units, persons, bp), bp)
    options = RelayOptions(rate=0.0, claim_batch=2)

    def wrap(account: Any) -> Any:
        return SlowSends(account) if account.account_id in slow else account

    return RelayWorld(engine, bp, accounts=ACCOUNTS, options=options, wall_clock=True, wrap=wrap)


def copies_per_room(relay: RelayWorld) -> dict[str, int]:
    bots = set(ACCOUNTS)
    return {
        room: sum(
            1
            for m in relay.world.messages(room)
            if m.contact_id in bots and "【通知 T1】" in m.text
        )
        for room in relay.rooms.values()
    }


def serving(engine: Engine) -> dict[str, float]:
    """The accounts in service, as the planner reads them."""
    with engine.connect() as conn:
        return serving_rates(conn)


def steps_at_once(workers: list[DeliveryWorker]) -> list[int]:
    """Counts, in the list returned, how many workers are inside a step at the most."""
    inside, most = [0], [0]
    for worker in workers:
        step = worker.run_once

        async def counted(step=step):  # type: ignore[no-untyped-def]
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            try:
                return await step()
            finally:
                inside[0] -= 1

        worker.run_once = counted  # type: ignore[method-assign]
    return most


def test_accounts_on_postgresql_step_side_by_side_and_send_each_copy_once(
    any_engine: Engine, bp: Blueprint, tmp_path: Path
):
    relay = province_on_the_wall_clock(any_engine, bp, tmp_path)
    issue_notice(
        relay.env, relay.room("P"), relay.contact("P", "office_staff"), "截止 明天 17:00 开会"
    )
    most = steps_at_once(relay.workers)
    relay.deliver()
    assert set(copies_per_room(relay).values()) == {1}
    side_by_side = any_engine.dialect.name == "postgresql"
    assert (most[0] > 1) == side_by_side


class Boom(Exception):
    pass


def test_an_error_in_one_step_waits_for_the_others_to_record_theirs(
    pg_engine: Engine, bp: Blueprint, tmp_path: Path
):
    # bot1 records its first batch while bot2 and bot3 are still sending theirs
    relay = province_on_the_wall_clock(pg_engine, bp, tmp_path, slow=frozenset({"bot2", "bot3"}))
    failed: list[str] = []

    def once(point: str) -> None:
        if point == "flushed" and not failed:
            failed.append(point)
            raise Boom(point)

    relay.restart(faults=once)
    issue_notice(
        relay.env, relay.room("P"), relay.contact("P", "office_staff"), "截止 明天 17:00 开会"
    )
    with pytest.raises(Boom):
        relay.deliver()
    with pg_engine.connect() as conn:
        on_the_way = conn.execute(
            select(func.count()).select_from(DELIVERY).where(DELIVERY.c.state == "sending")
        ).scalar_one()
        recorded = conn.execute(
            select(func.count()).select_from(DELIVERY).where(DELIVERY.c.state == "sent")
        ).scalar_one()
    sent = sum(copies_per_room(relay).values())
    assert on_the_way == 0  # no sibling was cut off between its sends and its write
    assert recorded == sent > 0
    relay.restart()
    relay.deliver()  # the loop goes on where it stopped, sending nothing twice
    assert set(copies_per_room(relay).values()) == {1}


def test_a_claim_waiting_on_a_lock_leaves_the_event_loop_free(
    engine: Engine, bp: Blueprint, tmp_path: Path
):
    relay = province_on_the_wall_clock(engine, bp, tmp_path)
    issue_notice(
        relay.env, relay.room("P"), relay.contact("P", "office_staff"), "截止 明天 17:00 开会"
    )
    holder = engine.raw_connection()  # another process's write transaction, SQLite's one writer
    holder.driver_connection.execute("BEGIN IMMEDIATE")
    ticks: list[int] = []

    async def chat_goes_on() -> None:
        for tick in range(5):  # were the loop frozen in the claim, no tick would come
            await asyncio.sleep(0.01)
            ticks.append(tick)
        holder.commit()

    async def both() -> None:
        await asyncio.gather(drive(relay.env, relay.workers), chat_goes_on())

    try:
        worlds.run(both())
    finally:
        holder.close()
    assert ticks == [0, 1, 2, 3, 4]
    assert set(copies_per_room(relay).values()) == {1}


def test_an_account_lost_and_back_during_a_lock_leaves_the_loop_free_and_ends_serving(
    engine: Engine, bp: Blueprint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # a log-out and the log-in after it, each heard while another process holds the write
    # lock: the hand-over and the return wait in threads, and land in the order they came
    # even when the hand-over (national: thousands of rows) takes longer than the return
    relay = province_on_the_wall_clock(engine, bp, tmp_path)

    def slow_hand_over(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.1)
        return hand_over(*args, **kwargs)

    monkeypatch.setattr(delivery, "hand_over", slow_hand_over)
    worker = relay.workers[0]
    holder = engine.raw_connection()
    holder.driver_connection.execute("BEGIN IMMEDIATE")
    ticks: list[int] = []

    async def chat_goes_on() -> None:
        for tick in range(5):
            await asyncio.sleep(0.01)
            ticks.append(tick)
        holder.commit()

    account = relay.bots[0]
    heard: list[Any] = []
    worker.on_lost.append(heard.append)

    async def back_in() -> None:
        await asyncio.sleep(0.02)  # while the hand-over is still under way
        account._presence = Presence.ONLINE
        await worker.presence_changed(Presence.ONLINE)

    async def all_at_once() -> None:
        account._presence = Presence.LOGGED_OUT
        await asyncio.gather(
            worker.presence_changed(Presence.LOGGED_OUT), back_in(), chat_goes_on()
        )

    try:
        worlds.run(all_at_once())
    finally:
        holder.close()
    assert ticks == [0, 1, 2, 3, 4]
    assert [h.reason for h in heard] == ["logged_out"]  # it was handed over, then came back
    assert worker.lost is None
    assert worker.account in serving(engine)
    issue_notice(
        relay.env, relay.room("P"), relay.contact("P", "office_staff"), "截止 明天 17:00 开会"
    )
    relay.deliver()
    assert set(copies_per_room(relay).values()) == {1}


def test_an_account_back_online_before_its_turn_is_not_handed_over(
    engine: Engine, bp: Blueprint, tmp_path: Path
):
    relay = province_on_the_wall_clock(engine, bp, tmp_path)
    worker, account = relay.workers[0], relay.bots[0]
    heard: list[Any] = []
    worker.on_lost.append(heard.append)

    async def scenario() -> None:
        turn = worker._turn()
        await turn.acquire()  # a registration of the account is under way
        account._presence = Presence.LOGGED_OUT
        losing = asyncio.ensure_future(worker.presence_changed(Presence.LOGGED_OUT))
        await asyncio.sleep(0.01)
        account._presence = Presence.ONLINE  # logged in again before the hand-over's turn
        turn.release()
        await losing
        assert heard == [] and worker.lost is None
        assert worker.account in serving(engine)
        # a second hand-over asked for while the first is under way tells nobody twice
        account._presence = Presence.LOGGED_OUT
        await asyncio.gather(worker._lose("logged_out"), worker._lose("logged_out"))

    worlds.run(scenario())
    assert [h.reason for h in heard] == ["logged_out"]  # told once


def test_a_registration_after_a_log_out_leaves_the_account_out_of_service(
    engine: Engine, bp: Blueprint, tmp_path: Path
):
    # a login's registration that comes in after the log-out was heard (its rooms were being
    # listed meanwhile) must not put the logged-out account back into service
    relay = province_on_the_wall_clock(engine, bp, tmp_path)
    worker, account = relay.workers[0], relay.bots[0]

    rooms = list(relay.rooms.values())
    account._presence = Presence.LOGGED_OUT
    worlds.run(worker.presence_changed(Presence.LOGGED_OUT))
    worlds.run(worker.register(rooms))
    assert worker.account not in serving(engine)
    account._presence = Presence.ONLINE
    worlds.run(worker.register(rooms))
    assert worker.account in serving(engine)  # a login while online does


def test_an_account_new_to_the_relay_that_logs_out_as_it_registers_is_out_of_service(
    engine: Engine, bp: Blueprint, tmp_path: Path
):
    relay = province_on_the_wall_clock(engine, bp, tmp_path)
    account = relay.world.account("bot9", "群矩阵助手9")  # one the relay has never recorded
    newcomer = DeliveryWorker(relay.env, account, worlds.compose)
    account._presence = Presence.LOGGED_OUT
    worlds.run(newcomer.presence_changed(Presence.LOGGED_OUT))  # nothing to hand over yet
    worlds.run(newcomer.register(list(relay.rooms.values())))
    assert "bot9" not in serving(engine)


def test_a_hand_over_the_account_escaped_by_coming_back_asks_to_look_again(
    engine: Engine, bp: Blueprint, tmp_path: Path
):
    relay = province_on_the_wall_clock(engine, bp, tmp_path)
    worker, account = relay.workers[0], relay.bots[0]

    async def scenario() -> tuple[bool, float | None]:
        turn = worker._turn()
        await turn.acquire()
        account._presence = Presence.LOGGED_OUT
        step = asyncio.ensure_future(worker.run_once())
        await asyncio.sleep(0.01)
        account._presence = Presence.ONLINE
        turn.release()
        return await step

    # not "work done, nothing left": that would have the loop run this worker again at once,
    # forever on a virtual clock
    assert worlds.run(scenario()) == (False, 0.0)
    assert worker.lost is None


class Steps:
    """A worker whose every step takes ``takes`` seconds of the clock and asks to run again
    ``every`` seconds after it ends."""

    pace_bound, away = True, False

    def __init__(self, clock: VirtualClock, takes: float, every: float) -> None:
        self.clock, self.takes, self.every = clock, takes, every
        self.at: list[float] = []

    async def run_once(self) -> tuple[bool, float | None]:
        self.at.append(self.clock() - START)
        self.clock.advance(self.takes)
        return True, self.every


def test_a_worker_waits_from_the_end_of_its_own_step_not_of_the_round(
    engine: Engine, bp: Blueprint
):
    clock = VirtualClock(MORNING)
    env = RelayEnv(engine, bp, RelayOptions(), worlds.TZ, clock)
    quick, slow = Steps(clock, 0.0, 0.2), Steps(clock, 1.0, 1.0)
    worlds.run(drive(env, [quick, slow], until=MORNING + timedelta(seconds=1.3)))  # type: ignore[list-item]
    assert quick.at[:3] == pytest.approx([0.0, 1.0, 1.2])  # due at 0.2: runs once slow is done
    assert slow.at == pytest.approx([0.0])
