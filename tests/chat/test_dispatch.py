"""The dispatcher's contract: ignore itself, answer once, never leak a traceback, pace replies."""

from __future__ import annotations

import asyncio

from loguru import logger

from bot.chat.context import Call, Reply
from bot.rehearsal.stage import Stage
from matrix.platform import PlatformError
from matrix.provisioning.schedule import AccountQuota
from tests.chat.conftest import K1_GROUP, K1_OFFICE, TEACHER


def test_an_internal_error_gets_an_apology_with_a_reference_and_is_logged(stage: Stage):
    async def broken(call: Call) -> Reply:
        raise RuntimeError("database on fire: secret=hunter2")

    stage.bot.executors["audit"] = broken
    logged: list[str] = []
    sink = logger.add(logged.append, level="ERROR")
    try:
        reply = stage.reply(K1_GROUP, K1_OFFICE, "#核查")
    finally:
        logger.remove(sink)
    assert reply.startswith("抱歉，处理出错了（编号 ")
    assert "Traceback" not in reply and "hunter2" not in reply and "RuntimeError" not in reply
    ref = reply.split("编号 ")[1][:8]
    assert any(ref in line and "#核查" in line and "RuntimeError" in line for line in logged)
    assert stage.bot.stats.errors == 1


def test_a_failing_template_is_an_internal_error_too(stage: Stage):
    async def bad_reply(call: Call) -> Reply:
        return Reply("approved.j2", {})  # missing fields: StrictUndefined fails the render

    stage.bot.executors["audit"] = bad_reply
    assert stage.reply(K1_GROUP, K1_OFFICE, "#核查").startswith("抱歉，处理出错了")


def test_the_bot_ignores_its_own_messages(stage: Stage):
    room = stage.room_of(K1_GROUP)
    account = stage.accounts[0]
    mark = len(stage.world.messages())
    stage.run(account.send_text(room, "#帮助"))
    stage.settle()
    assert [m.text for m in stage.world.messages(since=mark)] == ["#帮助"]
    assert stage.bot.stats.messages == 0


def test_several_accounts_in_one_room_answer_once_and_ignore_each_other(province_db, bp):
    with Stage(province_db, bp, accounts=("bot-1", "bot-2")) as stage:
        stage.provision()
        room = stage.world.rooms[stage.room_of(K1_GROUP)]
        second = next(a for a in stage.accounts if a.account_id != room.owner_id)
        stage.run(stage.world.join(room.room_id, second.account_id))
        replies = stage.replies(K1_GROUP, K1_OFFICE, "#帮助")
        assert len(replies) == 1
        # the second account's own words reach the first as a contact's: still ignored
        stage.run(second.send_text(room.room_id, "#帮助"))
        stage.settle()
        assert stage.bot.stats.commands == 1


def test_replies_beyond_the_pacing_wait_their_turn_and_all_go_out_in_order(province_db, bp):
    slow = AccountQuota("bot-1", ops_per_second=0.5)
    with Stage(province_db, bp, accounts=(slow,), burst=2, step=0.0) as stage:
        stage.provision()
        room = stage.room_of(K1_GROUP)
        texts = [f"#帮助 {name}" for name in ("同意", "拒绝", "核查", "通知", "汇总")]
        for text in texts:
            stage.run(stage.world.say(room, K1_OFFICE, text))
        assert len(stage.bot.outbox) == 3  # two went out at once, three wait
        start = stage.clock()
        stage.settle()
        assert stage.clock() - start == 6.0  # one every two seconds
        answers = [m.text for m in stage.world.messages(room) if m.contact_id == "bot-1"]
        assert [a.split("：")[0] for a in answers] == [
            "命令 #同意（approve）",
            "命令 #拒绝（reject）",
            "命令 #核查（audit）",
            "命令 #通知（notice）",
            "命令 #汇总（summary）",
        ]
        assert stage.bot.stats.replies_sent == 5 and stage.bot.stats.replies_dropped == 0


def test_a_reply_that_cannot_be_delivered_is_counted_as_dropped(stage: Stage):
    account = stage.accounts[0]
    real_send = account.send_text

    async def failing(room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        raise PlatformError("room dissolved")

    account.send_text = failing  # type: ignore[method-assign]
    assert stage.replies(K1_GROUP, TEACHER, "#帮助") == []
    assert stage.bot.stats.replies_dropped == 1
    account.send_text = real_send  # type: ignore[method-assign]
    assert len(stage.replies(K1_GROUP, TEACHER, "#帮助")) == 1


def test_a_retryable_failure_is_tried_again(stage: Stage):
    account = stage.accounts[0]
    real_send = account.send_text
    failures = [PlatformError("connection reset", retryable=True)]

    async def flaky(room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        if failures:
            raise failures.pop()
        return await real_send(room_id, text, mentions)

    account.send_text = flaky  # type: ignore[method-assign]
    assert len(stage.replies(K1_GROUP, TEACHER, "#帮助")) == 1
    assert stage.bot.stats.replies_dropped == 0


def test_every_command_has_a_handler(stage: Stage):
    from bot.chat.registry import TABLE

    assert {c.key for c in TABLE} <= set(stage.bot.executors)


def test_the_bots_own_words_never_read_as_a_command(stage: Stage):
    # another bot process (one per account) hears them as a contact's: no ping-pong
    from bot.chat.registry import TABLE, parse
    from bot.config import LimitOptions

    # a burst on purpose, far above what people type: the flood limits would silence it
    stage.bot.gate.limiter.options = LimitOptions(per_contact=1000, per_group=1000)
    stage.replies(K1_GROUP, "wxid_someone", "<加入>")
    texts = [f"#帮助 {c.name}" for c in TABLE] + [c.example for c in TABLE]
    texts += ["#帮助", "#同意", "#确认 多余", "#不存在", "#拒绝 9"]
    for sender in (K1_OFFICE, TEACHER, "wxid_someone"):
        for text in texts:
            stage.say(K1_GROUP, sender, text)
    said = [m.text for m in stage.world.messages() if m.contact_id in stage.bot.accounts]
    assert len(said) > 2 * len(texts)
    assert [t for t in said if parse(t) is not None] == []


def test_keep_sending_delivers_paced_replies_as_they_fall_due(province_db, bp):
    """The real-mode task (not the stage's manual flush) sends queued replies as they fall due.
    The clock is a manual one the test moves, so the pacing cannot depend on the machine's load;
    the event loop and ``keep_sending``'s own waits are real."""
    from bot.chat.dispatch import Bot
    from bot.platforms.simulated import ManualClock, SimulatedWeChat

    async def scenario() -> list[tuple[str, float]]:
        clock = ManualClock()
        world = SimulatedWeChat(clock=clock)
        account = world.account("bot-1", rate=20.0, burst=1)
        bot = Bot(province_db, bp, clock=clock)
        bot.attach(account)
        delivered = asyncio.Event()

        async def heard(message) -> None:
            if message.contact_id == "bot-1":
                delivered.set()

        account.on_message(heard)
        for who in (K1_OFFICE, TEACHER):
            world.add_contact(who)
        bot_room = world.create_room("bot-1", "闲聊群", [K1_OFFICE, TEACHER])
        for _ in range(3):
            await world.say(bot_room, TEACHER, "#帮助")
        assert len(bot.outbox) == 2  # one sent at once (burst 1), two wait for the pacer
        stop = asyncio.Event()
        sender = asyncio.create_task(bot.keep_sending(stop))
        for waiting in (1, 0):
            delivered.clear()
            await asyncio.sleep(0)  # keep_sending flushes: nothing is due yet
            assert len(bot.outbox) == waiting + 1
            clock.advance(1 / 20)  # one reply falls due at 20 per second
            await asyncio.wait_for(delivered.wait(), timeout=30)  # a hang fails, not a race
            assert len(bot.outbox) == waiting
        stop.set()
        await sender
        return [(m.text, m.at) for m in world.messages(bot_room) if m.contact_id == "bot-1"]

    replies = asyncio.run(scenario())
    assert len(replies) == 3
    assert len({text for text, _ in replies}) == 1  # three answers to the same #帮助
    assert [at for _, at in replies] == [0.0, 0.05, 0.1]  # one each 1/20 s, none early


def test_a_flush_while_a_send_is_on_the_wire_does_not_send_it_twice():
    """Real adapters await the network inside send_text; the keep_sending task must not pick
    up the same head of the queue meanwhile."""
    from bot.chat.dispatch import Outbox, Stats

    sent: list[str] = []

    class SlowPlatform:
        account_id = "bot-slow"

        async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
            await asyncio.sleep(0.01)
            sent.append(text)
            return str(len(sent))

    async def scenario() -> None:
        outbox = Outbox(lambda: 0.0, Stats())
        platform = SlowPlatform()
        await asyncio.gather(
            outbox.send(platform, "room", "一"),  # type: ignore[arg-type]
            outbox.flush(),
            outbox.flush(),
        )
        await outbox.send(platform, "room", "二")  # type: ignore[arg-type]
        assert len(outbox) == 0

    asyncio.run(scenario())
    assert sent == ["一", "二"]
