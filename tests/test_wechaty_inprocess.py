"""The real ``wechaty.Wechaty`` class, end to end over the simulated WeChat (no network):
people talk in the world, the bot hears them through Wechaty, and what the bot does through
Wechaty lands back in the world."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.chat.dispatch import Bot
from bot.platforms.inprocess_puppet import InProcessPuppet
from bot.platforms.simulated import ManualClock, SimulatedWeChat
from bot.platforms.wechaty_adapter import Backoff, SessionTaken, WechatyPlatform
from bot.platforms.wechaty_compat import ContactPayload, EventLoginPayload
from bot.rehearsal.sim_build import populate
from matrix.platform import (
    AddOutcome,
    IncomingMessage,
    NotSupported,
    Presence,
    RateLimited,
    RoomEvent,
    RoomEventKind,
)
from matrix.provisioning.schedule import AccountQuota
from matrix.roster import import_roster, read_roster
from tests import worlds
from tests.worlds import (
    ACCOUNT,
    COUNTY_OFFICE,
    SCHOOL_COUNSELOR,
    provisioned_world,
    room_of,
)

BOT = "qm_bot"
PEOPLE = {"wx_office": "县少工委办公室", "wx_t1": "赵老师", "wx_t2": "钱老师", "wx_new": "孙老师"}


def make_world(*, burst: int = 50) -> tuple[SimulatedWeChat, str]:
    world = SimulatedWeChat(clock=ManualClock())
    world.account(BOT, "群矩阵助手", rate=1.0, burst=burst)
    for cid, name in PEOPLE.items():
        world.add_contact(cid, name)
    room = world.create_room(BOT, "示范县少先队大队辅导员群", ["wx_office", "wx_t1", "wx_t2"])
    return world, room


@asynccontextmanager
async def wechaty_bot(
    world: SimulatedWeChat, errors: list[BaseException], account: str = BOT
) -> AsyncIterator[WechatyPlatform]:
    """The account logged in through a real Wechaty over an in-process puppet; any exception
    swallowed inside Wechaty (the puppet's 'error') or in a callback lands in ``errors``."""
    platform = WechatyPlatform(
        lambda: InProcessPuppet(world, account, on_error=errors.append),
        send_interval=0,
        backoff=Backoff(initial=0.05),
        on_error=errors.append,
    )
    async with platform.running(login_timeout=10):
        yield platform


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), timeout=10)


def replying(
    platform: WechatyPlatform, answer: Callable[[IncomingMessage], str]
) -> asyncio.Queue[IncomingMessage]:
    """Make the bot answer every message; the returned queue yields each message once
    answered."""
    heard: asyncio.Queue[IncomingMessage] = asyncio.Queue()

    async def reply(msg: IncomingMessage) -> None:
        await platform.send_text(msg.room_id, answer(msg), (msg.contact_id,))
        await heard.put(msg)

    platform.on_message(reply)
    return heard


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_a_message_in_a_room_reaches_the_bot_and_the_reply_comes_back(errors):
    world, room = make_world()

    async def scenario() -> None:
        async with wechaty_bot(world, errors) as bot:
            heard = replying(bot, lambda m: f"收到：{m.text}")
            # WeChat writes a mention into the text: "@name" and U+2005
            await world.say(room, "wx_office", "@群矩阵助手\u2005#帮助", mentions=(BOT,))
            msg = await next_item(heard)
            assert (msg.contact_id, msg.sender_name, msg.text, msg.mentions) == (
                "wx_office",
                "县少工委办公室",
                "#帮助",
                (BOT,),
            )
            assert [(m.contact_id, m.text, m.mentions) for m in world.messages(room)] == [
                ("wx_office", "@群矩阵助手\u2005#帮助", (BOT,)),
                (BOT, "@县少工委办公室 收到：#帮助", ("wx_office",)),
            ]
            # the echo of the bot's own reply is not handed to it: the next thing it hears is
            # the next person
            await world.say(room, "wx_t1", "好的")
            assert (await next_item(heard)).contact_id == "wx_t1"

    run(scenario)


def test_room_changes_made_through_wechaty_land_in_the_world_and_come_back_as_events(errors):
    world, room = make_world()

    async def scenario() -> None:
        async with wechaty_bot(world, errors) as bot:
            events: asyncio.Queue[RoomEvent] = asyncio.Queue()
            bot.on_room_event(events.put)

            assert await bot.add_member(room, "wx_new") is AddOutcome.ADDED
            assert "wx_new" in world.room(room).members
            joined = await next_item(events)
            assert (joined.kind, joined.contact_ids, joined.inviter_id) == (
                RoomEventKind.JOIN,
                ("wx_new",),
                BOT,
            )

            await bot.remove_member(room, "wx_t2")
            assert "wx_t2" not in world.room(room).members
            assert (await next_item(events)).kind is RoomEventKind.LEAVE

            await bot.set_topic(room, "示范县少先队大队辅导员一群")
            assert world.room(room).topic == "示范县少先队大队辅导员一群"
            renamed = await next_item(events)
            assert (renamed.kind, renamed.topic, renamed.extra["old_topic"]) == (
                RoomEventKind.TOPIC,
                "示范县少先队大队辅导员一群",
                "示范县少先队大队辅导员群",
            )
            # Wechaty's own room cache would still say the old name and member list
            assert [(r.topic, r.member_count) for r in await bot.list_rooms()] == [
                ("示范县少先队大队辅导员一群", 4)
            ]
            assert [(m.contact_id, m.is_owner) for m in await bot.list_members(room)] == [
                (BOT, True),
                ("wx_office", False),
                ("wx_t1", False),
                ("wx_new", False),
            ]

            new_room = await bot.create_room("示范县校长群", ["wx_t1", "wx_t2"])
            assert world.room(new_room).topic == "示范县校长群"
            assert list(world.room(new_room).members) == [BOT, "wx_t1", "wx_t2"]

    run(scenario)


def test_what_people_do_in_a_room_reaches_the_bot_as_room_events(errors):
    world, room = make_world()

    async def scenario() -> None:
        async with wechaty_bot(world, errors) as bot:
            events: asyncio.Queue[RoomEvent] = asyncio.Queue()
            bot.on_room_event(events.put)
            await world.join(room, "wx_new", inviter_id="wx_t1")
            await world.leave(room, "wx_t2")
            await world.change_topic(room, "wx_t1", "改了名的群")
            seen = [await next_item(events) for _ in range(3)]
            assert [(e.kind, e.contact_ids) for e in seen] == [
                (RoomEventKind.JOIN, ("wx_new",)),
                (RoomEventKind.LEAVE, ("wx_t2",)),
                (RoomEventKind.TOPIC, ("wx_t1",)),
            ]
            assert seen[0].inviter_id == "wx_t1"
            assert seen[2].topic == "改了名的群"

    run(scenario)


def test_adding_to_a_room_above_40_members_only_sends_an_invitation(errors):
    world, _ = make_world()
    crowd = [f"wx_{n}" for n in range(45)]
    for cid in crowd:
        world.add_contact(cid)
    big = world.create_room(BOT, "大群", crowd)

    async def scenario() -> None:
        async with wechaty_bot(world, errors) as bot:
            assert await bot.add_member(big, "wx_new") is AddOutcome.INVITED
            assert "wx_new" not in world.room(big).members
            assert world.pending_invitations(big) == {"wx_new": BOT}

    run(scenario)


def test_sending_too_fast_is_refused_as_retryable_and_appointing_admins_is_not_supported(errors):
    world, room = make_world(burst=2)

    async def scenario() -> None:
        async with wechaty_bot(world, errors) as bot:
            await bot.send_text(room, "一")
            await bot.send_text(room, "二")
            with pytest.raises(RateLimited) as limited:
                await bot.send_text(room, "三")
            assert limited.value.retryable
            # Room.create hides the cause in its own error; the adapter digs it out
            with pytest.raises(RateLimited):
                await bot.create_room("新群", ["wx_t1", "wx_t2"])
            with pytest.raises(NotSupported, match="群主"):
                await bot.set_admin(room, "wx_office")

    run(scenario)


def test_a_failing_callback_is_reported_and_the_bot_keeps_listening(errors):
    world, room = make_world()

    async def scenario() -> None:
        async with wechaty_bot(world, errors) as bot:
            heard: asyncio.Queue[IncomingMessage] = asyncio.Queue()

            async def fragile(msg: IncomingMessage) -> None:
                await heard.put(msg)
                if msg.text == "炸":
                    raise RuntimeError("handler bug")

            bot.on_message(fragile)
            await world.say(room, "wx_t1", "炸")
            await world.say(room, "wx_t1", "还在吗")
            assert [(await next_item(heard)).text for _ in range(2)] == ["炸", "还在吗"]

    run(scenario)
    assert [str(e) for e in errors] == ["handler bug"]
    errors.clear()


def test_a_second_bot_in_the_same_process_hears_its_own_world(errors):
    # Wechaty keeps contact/room pools and seen message ids process-wide; every world numbers
    # its messages from 1, so without care the second bot silently hears nothing

    async def one_conversation() -> str:
        world, room = make_world()
        async with wechaty_bot(world, errors) as bot:
            heard = replying(bot, lambda m: "在")
            await world.say(room, "wx_t1", "有人吗")
            await next_item(heard)
        return world.messages(room)[-1].text

    async def scenario() -> None:
        assert await one_conversation() == "@赵老师 在"
        assert await one_conversation() == "@赵老师 在"

    run(scenario)


def test_two_accounts_in_one_room_each_hear_people_but_not_themselves(errors):
    world, room = make_world()
    world.account("qm_bot2", "群矩阵助手二号", rate=1.0, burst=50)
    world.room(room).members["qm_bot2"] = ""

    async def scenario() -> None:
        async with wechaty_bot(world, errors) as one, wechaty_bot(world, errors, "qm_bot2") as two:
            first = replying(one, lambda m: "一号收到")
            second: asyncio.Queue[IncomingMessage] = asyncio.Queue()
            two.on_message(second.put)
            await world.say(room, "wx_t1", "两位好")
            assert (await next_item(first)).text == "两位好"
            # bot two hears the person, then bot one's reply, never its own
            assert [(await next_item(second)).contact_id for _ in range(2)] == ["wx_t1", BOT]

    run(scenario)


def test_a_silent_connection_is_noticed_by_the_keepalive_probe_and_replaced(errors):
    world, room = make_world()
    puppets: list[InProcessPuppet] = []

    class HungPuppet(InProcessPuppet):
        async def ding(self, data: str | None = None) -> None:
            if len(puppets) == 1:  # the first connection stops answering
                await asyncio.Event().wait()

    def factory() -> InProcessPuppet:
        puppets.append(HungPuppet(world, BOT, on_error=errors.append))
        return puppets[-1]

    async def scenario() -> None:
        platform = WechatyPlatform(
            factory,
            send_interval=0,
            backoff=Backoff(initial=0.01),
            keepalive=0.01,
            on_error=errors.append,
        )
        async with platform.running(login_timeout=10):
            while platform.connections < 2:
                await asyncio.sleep(0.01)
            heard = replying(platform, lambda m: "在")
            await world.say(room, "wx_t1", "有人吗")
            await next_item(heard)
        assert world.messages(room)[-1].text == "@赵老师 在"

    run(scenario)
    assert len(puppets) == 2


async def bot_replies(world: SimulatedWeChat, room: str, since: int, count: int = 1) -> list[str]:
    """The next ``count`` messages the bot account sends in ``room`` after log entry ``since``."""

    async def wait() -> list[str]:
        while True:
            said = [m.text for m in world.messages(room, since=since) if m.contact_id == ACCOUNT]
            if len(said) >= count:
                return said
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(wait(), timeout=10)


def test_the_dispatcher_answers_commands_and_reviews_joiners_through_wechaty(
    province_db, bp, errors
):
    world = provisioned_world(province_db, bp)
    room = room_of(world, "乙1县少先队大队辅导员群")
    world.add_contact("wx_stranger", "路人甲")

    async def scenario() -> None:
        async with wechaty_bot(world, errors, ACCOUNT) as platform:
            dispatcher = Bot(province_db, bp)
            dispatcher.attach(platform)

            mark = len(world.messages())
            await world.say(room, COUNTY_OFFICE, "#帮助")
            (office_help,) = await bot_replies(world, room, mark)
            assert office_help.startswith("K1office_staff，你在本群可以使用：")
            assert "#建群（provision）" in office_help

            mark = len(world.messages())
            await world.say(room, SCHOOL_COUNSELOR, "#help")
            (member_help,) = await bot_replies(world, room, mark)
            assert member_help.startswith("K1S1大辅，你在本群可以使用：")
            assert "#建群" not in member_help

            mark = len(world.messages())
            await world.join(room, "wx_stranger", inviter_id=SCHOOL_COUNSELOR)
            (held,) = await bot_replies(world, room, mark)
            assert "以下入群人员待管理员审核：\n  1号 路人甲（不在名册中）" in held
            assert COUNTY_OFFICE in world.messages(room)[-1].mentions

            mark = len(world.messages())
            await world.say(room, COUNTY_OFFICE, "#拒绝 1")
            (rejected,) = await bot_replies(world, room, mark)
            assert rejected == "已拒绝 路人甲 入群，已移出本群。"
            assert "wx_stranger" not in world.room(room).members

    run(scenario)


def test_a_topic_change_the_service_ignores_is_not_reported_as_done(errors):
    # puppet services of the Node 1.x line answer a rename and do nothing
    world, room = make_world()

    class DeafPuppet(InProcessPuppet):
        async def room_topic(self, room_id: str, new_topic: str) -> None:
            return None

    async def scenario() -> None:
        platform = WechatyPlatform(
            lambda: DeafPuppet(world, BOT, on_error=errors.append),
            send_interval=0,
            on_error=errors.append,
        )
        async with platform.running(login_timeout=10):
            with pytest.raises(NotSupported, match="请群主在手机微信里把群名改为“新名字”"):
                await platform.set_topic(room, "新名字")
        assert world.room(room).topic == "示范县少先队大队辅导员群"

    run(scenario)


def test_qunmatrix_run_relays_a_notice_and_the_echo_confirms_the_copy(province_db, bp, errors):
    from sqlalchemy import select

    from bot.cli.app import Context
    from bot.config import Settings
    from bot.service.process import dispatcher, serve
    from matrix.models import Delivery

    world = provisioned_world(province_db, bp)
    room = room_of(world, "乙1县少先队大队辅导员群")
    context = Context(Settings(db=province_db.url.render_as_string(hide_password=False)))
    d = Delivery.__table__  # type: ignore[attr-defined]

    def copies() -> list[tuple[str, object]]:
        with province_db.connect() as conn:
            return [tuple(r) for r in conn.execute(select(d.c.state, d.c.confirmed_at))]

    async def scenario() -> None:
        platform = WechatyPlatform(
            lambda: InProcessPuppet(world, ACCOUNT, on_error=errors.append),
            send_interval=0,
            on_error=errors.append,
        )
        bot = dispatcher(context, platform)
        running = asyncio.create_task(serve(platform, bot))
        try:
            await platform.wait_logged_in(timeout=10)
            mark = len(world.messages())
            await world.say(room, COUNTY_OFFICE, "#通知 明天上午9点开会 无需回执")
            plan, copy = await bot_replies(world, room, mark, count=2)
            assert plan.startswith("通知 T1 已受理，将发往 1 个群（县级 1 个）")
            assert copy.startswith("【通知 T1】乙1县\n明天上午9点开会")

            async def confirmed() -> None:  # the echo is handled in turn, after the send
                while not copies() or copies()[0][1] is None:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(confirmed(), timeout=10)
            assert [state for state, _ in copies()] == ["sent"]
        finally:
            await platform.stop()
            await asyncio.wait_for(running, timeout=10)

    run(scenario)


def test_an_office_plans_and_confirms_and_the_bot_builds_through_wechaty(
    province_db, bp, errors, tmp_path
):
    """#建群 then #确认 over the real Wechaty class: the apply runs in the background on the
    real event loop, its invitations go through the puppet, and the result comes back."""
    world = provisioned_world(province_db, bp)
    units, persons = worlds.write_roster(tmp_path, *worlds.province(schools=3))
    # worlds number persons across the whole province, so most get new keys: allowed here
    import_roster(province_db, read_roster(units, persons, bp), bp, allow_mass_removal=True)
    populate(province_db, world)  # the new school's counselors have WeChat
    room = room_of(world, "乙1县少先队大队辅导员群")

    async def scenario() -> None:
        async with wechaty_bot(world, errors, ACCOUNT) as platform:
            fast = [AccountQuota(ACCOUNT, ops_per_second=100.0)]
            dispatcher = Bot(province_db, bp, quotas=fast)
            dispatcher.attach(platform)

            mark = len(world.messages())
            await world.say(room, COUNTY_OFFICE, "#建群")
            (plan,) = await bot_replies(world, room, mark)
            assert "· 乙1县少先队大队辅导员群：邀请 3 人，共 11 人" in plan

            mark = len(world.messages())
            await world.say(room, COUNTY_OFFICE, "#确认")
            said = await bot_replies(world, room, mark, count=5)  # started, 3 welcomes, result
            assert said[0].startswith("开始执行乙1县的建群计划，共 3 步")
            # the last welcome and the result race (the join event of the last invitation
            # comes back through Wechaty while the apply reports), so only their set is fixed
            assert sum(s.startswith("欢迎 ") for s in said[1:]) == 3
            assert (
                "@K1office_staff 乙1县的建群计划已执行完毕：完成 3 步。受邀的人接受邀请后即入群。"
                in said[1:]
            )
            assert {"wxK1S3n018", "wxK1S3n019", "wxK1S3n020"} <= set(world.room(room).members)

    run(scenario)


def test_qunmatrix_run_paces_the_account_as_its_accounts_entry_says(province_db, bp, errors):
    from bot.cli.app import Context
    from bot.config import AccountSettings, Settings
    from bot.service.process import dispatcher

    world = provisioned_world(province_db, bp)
    settings = Settings(
        db=province_db.url.render_as_string(hide_password=False),
        accounts=[
            AccountSettings(id="someone-else"),
            AccountSettings(id=ACCOUNT, ops_per_second=4),
        ],
    )
    platform = WechatyPlatform(
        lambda: InProcessPuppet(world, ACCOUNT, on_error=errors.append), on_error=errors.append
    )
    bot = dispatcher(Context(settings), platform)

    async def scenario() -> None:
        async with platform.running(login_timeout=10):
            while not bot.accounts:
                await asyncio.sleep(0.01)

    run(scenario)
    assert bot.accounts == {ACCOUNT} and platform.send_interval == 0.25
    assert [q.id for q in bot.account_quotas] == ["someone-else", ACCOUNT]


def test_sessions_taken_before_the_login_is_resolved_still_stop_a_second_process(errors):
    # Under load the service can end a taken session before Wechaty has looked up the logged-in
    # contact; such a session must count as taken, and its late login must not claim the account
    world, _ = make_world()

    class TakenPuppet(InProcessPuppet):
        async def start(self) -> None:
            self._running = True
            self._emitter.emit("login", EventLoginPayload(contact_id=self.account.account_id))
            await asyncio.sleep(0.02)  # the other client takes the session back at once
            self._running = False

        async def contact_payload(self, contact_id: str) -> ContactPayload:
            await asyncio.sleep(0.1)  # … before the contact lookup has answered
            return await super().contact_payload(contact_id)

    async def scenario() -> None:
        platform = WechatyPlatform(
            lambda: TakenPuppet(world, BOT, on_error=errors.append),
            send_interval=0,
            backoff=Backoff(initial=0.01, jitter=0),
            on_error=errors.append,
        )
        presences: list[Presence] = []

        async def seen(presence: Presence) -> None:
            presences.append(presence)

        platform.on_presence(seen)
        with pytest.raises(SessionTaken, match="另一个程序正在使用同一个 Wechaty 服务"):
            await asyncio.wait_for(platform.run(), timeout=10)
        await asyncio.sleep(0.2)  # the lookups still under way answer now
        assert platform.connections == 0
        assert Presence.ONLINE not in presences

    run(scenario)
