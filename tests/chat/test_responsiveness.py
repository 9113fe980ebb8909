"""The bot never freezes: while a province office's #建群 is still being planned (held on purpose
in its worker thread), a teacher's #帮助 in a county group is answered; within one group the
replies keep the order of the commands.

The accounts here hand messages to the bot concurrently, as the Wechaty adapter does (the
simulated WeChat itself delivers one at a time, which keeps the stage deterministic)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.chat import provision as provision_chat
from bot.chat.dispatch import Bot
from bot.rehearsal.stage import Stage
from matrix.platform import IncomingMessage
from tests.chat.conftest import (
    K1_GROUP,
    K1_OFFICE,
    K2_OFFICE,
    PROVINCE_GROUP,
    PROVINCE_OFFICE,
    TEACHER,
)
from tests.test_wechaty_inprocess import bot_replies, wechaty_bot
from tests.worlds import ACCOUNT, provisioned_world, room_of

HOLD = 10.0  # seconds a held plan waits at most: the test fails, it does not hang
_ids = itertools.count(1)


class HeldPlanning:
    """``build_plan`` that waits until released; ``started`` is set once a plan is underway."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.started.set()
        if not self.release.wait(HOLD):
            raise AssertionError("the held plan was never released")
        return self.real(*args, **kwargs)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldPlanning]:
    planning = HeldPlanning(provision_chat.build_plan)
    monkeypatch.setattr(provision_chat, "build_plan", planning)
    yield planning
    planning.release.set()


def said(stage: Stage, group: str, sender: str, text: str) -> IncomingMessage:
    """What the account hears when ``sender`` says ``text`` in ``group``."""
    stage.contact(sender)
    return IncomingMessage(
        f"t{next(_ids)}",
        stage.room_of(group),
        sender,
        text,
        stage.world.contacts[sender].name,
    )


def bot_lines(stage: Stage, group: str) -> list[str]:
    room = stage.room_of(group)
    return [m.text for m in stage.world.messages(room) if m.contact_id in stage.bot.accounts]


def test_a_teacher_gets_help_while_a_province_plan_is_still_being_made(
    stage: Stage, held: HeldPlanning
):
    bot, account = stage.bot, stage.accounts[0]

    async def scenario() -> None:
        plan = asyncio.create_task(
            bot.on_message(account, said(stage, PROVINCE_GROUP, PROVINCE_OFFICE, "#建群"))
        )
        assert await asyncio.to_thread(held.started.wait, HOLD)
        await asyncio.wait_for(
            bot.on_message(account, said(stage, K1_GROUP, TEACHER, "#帮助")), HOLD
        )
        (help_,) = bot_lines(stage, K1_GROUP)[-1:]
        assert help_.startswith("K1S1大辅，你在本群可以使用：")
        assert not plan.done()
        assert not any("【建群计划】" in line for line in bot_lines(stage, PROVINCE_GROUP))
        held.release.set()
        await asyncio.wait_for(plan, HOLD)

    stage.run(scenario())
    assert "【建群计划】" in bot_lines(stage, PROVINCE_GROUP)[-1]


def test_replies_in_one_group_keep_the_order_of_the_commands(stage: Stage, held: HeldPlanning):
    bot, account = stage.bot, stage.accounts[0]
    before = len(bot_lines(stage, K1_GROUP))

    async def scenario() -> None:
        plan = asyncio.create_task(
            bot.on_message(account, said(stage, K1_GROUP, K1_OFFICE, "#建群"))
        )
        help_ = asyncio.create_task(
            bot.on_message(account, said(stage, K1_GROUP, TEACHER, "#帮助"))
        )
        assert await asyncio.to_thread(held.started.wait, HOLD)
        # another group is served meanwhile; this one's #帮助 waits for the plan before it
        await asyncio.wait_for(
            bot.on_message(account, said(stage, PROVINCE_GROUP, PROVINCE_OFFICE, "#帮助")), HOLD
        )
        assert "你在本群可以使用" in bot_lines(stage, PROVINCE_GROUP)[-1]
        assert len(bot_lines(stage, K1_GROUP)) == before
        assert not help_.done()
        held.release.set()
        await asyncio.wait_for(asyncio.gather(plan, help_), HOLD)

    stage.run(scenario())
    plan_reply, help_reply = bot_lines(stage, K1_GROUP)[before:]
    assert "【建群计划】" in plan_reply
    assert help_reply.startswith("K1S1大辅，你在本群可以使用：")
    assert len(bot.turns) == 0  # no lock kept for a room at rest


def test_over_wechaty_one_account_answers_a_group_while_another_group_waits_for_its_plan(
    province_db, bp, errors, held: HeldPlanning
):
    world = provisioned_world(province_db, bp)
    k1, k2 = (room_of(world, f"乙{n}县少先队大队辅导员群") for n in (1, 2))

    async def scenario() -> None:
        async with wechaty_bot(world, errors, ACCOUNT) as platform:
            Bot(province_db, bp).attach(platform)
            mark = len(world.messages())
            await world.say(k2, K2_OFFICE, "#建群")
            assert await asyncio.to_thread(held.started.wait, HOLD)
            await world.say(k1, TEACHER, "#帮助")
            (help_,) = await bot_replies(world, k1, mark)
            assert help_.startswith("K1S1大辅，你在本群可以使用：")
            assert [m for m in world.messages(k2, since=mark) if m.contact_id == ACCOUNT] == []
            held.release.set()
            (plan,) = await bot_replies(world, k2, mark)
            assert plan.startswith("【建群计划】")

    asyncio.run(scenario())


def test_a_command_waiting_for_its_worker_holds_no_database_connection(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
):
    """A flood of relay commands from many groups (收到, #填, #进度) must not drain the pool:
    each waits for its worker thread, and a connection held meanwhile would make the next
    checkout on the event loop freeze the bot."""
    from bot.chat import relay as relay_chat

    progress = HeldPlanning(relay_chat.notice_progress)
    monkeypatch.setattr(relay_chat, "notice_progress", progress)
    stage.say(PROVINCE_GROUP, PROVINCE_OFFICE, "#通知 明天开会")
    bot, account = stage.bot, stage.accounts[0]
    pool = stage.engine.pool

    async def scenario() -> None:
        asked = asyncio.create_task(
            bot.on_message(account, said(stage, PROVINCE_GROUP, PROVINCE_OFFICE, "#进度 T1"))
        )
        assert await asyncio.to_thread(progress.started.wait, HOLD)
        held_by_the_loop = pool.checkedout()  # type: ignore[attr-defined]
        progress.release.set()
        await asyncio.wait_for(asked, HOLD)
        assert held_by_the_loop == 0

    stage.run(scenario())
    assert bot_lines(stage, PROVINCE_GROUP)[-1].startswith("通知 T1（示范省）进度")
