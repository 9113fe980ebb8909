"""The simulated WeChat copies the WeChat behaviours listed in WECHATY_NOTES.md."""

from __future__ import annotations

import asyncio

import pytest

from bot.platforms.simulated import ManualClock, SimulatedWeChat
from matrix.platform import (
    AddOutcome,
    IncomingMessage,
    NotSupported,
    Platform,
    PlatformError,
    RateLimited,
    RoomEvent,
    RoomEventKind,
)


def run(coro):
    return asyncio.run(coro)


def make_world(people: int = 3, **kwargs):
    world = SimulatedWeChat(clock=ManualClock(), **kwargs)
    for i in range(people):
        world.add_contact(f"p{i}", f"人{i}")
    return world


def test_an_account_is_a_platform():
    world = make_world()
    assert isinstance(world.account("bot"), Platform)


def test_messages_reach_every_account_in_the_room_and_echo_as_self():
    world = make_world()
    a, b = world.account("botA"), world.account("botB")
    heard: dict[str, list[IncomingMessage]] = {"botA": [], "botB": []}

    def listener(name: str):
        async def on(msg: IncomingMessage) -> None:
            heard[name].append(msg)

        return on

    a.on_message(listener("botA"))
    b.on_message(listener("botB"))
    room = world.create_room("botA", "群", ["botB", "p0", "p1"])
    run(world.say(room, "p0", "#帮助"))
    run(a.send_text(room, "好的"))
    assert [(m.contact_id, m.text, m.is_self) for m in heard["botA"]] == [
        ("p0", "#帮助", False),
        ("botA", "好的", True),
    ]
    assert [(m.contact_id, m.is_self) for m in heard["botB"]] == [("p0", False), ("botA", False)]
    assert heard["botA"][0].sender_name == "人0"


def test_strangers_cannot_speak_in_a_room_they_are_not_in():
    world = make_world()
    room = world.create_room("p0", "群", ["p1"])
    with pytest.raises(PlatformError):
        run(world.say(room, "p2", "hi"))


def test_adding_to_a_small_room_adds_and_announces_a_join():
    world = make_world(people=5)
    bot = world.account("bot")
    events: list[RoomEvent] = []

    async def on(event: RoomEvent) -> None:
        events.append(event)

    bot.on_room_event(on)
    room = world.create_room("bot", "群", ["p0", "p1"])
    assert run(bot.add_member(room, "p2")) is AddOutcome.ADDED
    assert events == [RoomEvent(RoomEventKind.JOIN, room, ("p2",), inviter_id="bot")]


def test_rooms_above_forty_only_invite_until_the_invitation_is_accepted():
    world = make_world(people=45)
    bot = world.account("bot", rate=100, burst=100)
    room = world.create_room("bot", "大群", [f"p{i}" for i in range(40)])  # 41 with the bot
    assert run(bot.add_member(room, "p41")) is AddOutcome.INVITED
    assert "p41" not in world.room(room).members
    assert world.pending_invitations(room) == {"p41": "bot"}
    run(world.accept_invitation(room, "p41"))
    assert "p41" in world.room(room).members
    assert world.pending_invitations(room) == {}


def test_rooms_above_one_hundred_need_a_verified_invitee():
    world = make_world(people=101)
    world.add_contact("anon", verified=False)
    bot = world.account("bot", rate=100, burst=100)
    room = world.create_room("bot", "大群", [f"p{i}" for i in range(101)])
    assert run(bot.add_member(room, "anon")) is AddOutcome.INVITED
    with pytest.raises(PlatformError, match="verified"):
        run(world.accept_invitation(room, "anon"))


def test_a_room_holds_at_most_the_cap():
    world = make_world(people=6, max_room_size=5)
    bot = world.account("bot")
    with pytest.raises(PlatformError):
        world.create_room("bot", "群", [f"p{i}" for i in range(5)])
    room = world.create_room("bot", "群", [f"p{i}" for i in range(4)])
    with pytest.raises(PlatformError, match="full") as caught:
        run(bot.add_member(room, "p5"))
    assert not caught.value.retryable
    with pytest.raises(PlatformError, match="full"):
        run(world.join(room, "p5"))


def test_only_the_owner_appoints_at_most_three_admins():
    world = make_world(people=5)
    owner, other = world.account("bot"), world.account("bot2")
    room = world.create_room("bot", "群", ["bot2", "p0", "p1", "p2", "p3"])
    for p in ("p0", "p1", "p2"):
        run(owner.set_admin(room, p))
    with pytest.raises(PlatformError, match="at most 3"):
        run(owner.set_admin(room, "p3"))
    with pytest.raises(NotSupported):
        run(other.set_admin(room, "p3"))
    members = {m.contact_id: m for m in run(owner.list_members(room))}
    assert members["bot"].is_owner and members["p0"].is_admin and not members["p3"].is_admin


def test_only_owner_or_admin_removes_and_the_removal_is_heard():
    world = make_world()
    owner, other = world.account("bot"), world.account("bot2")
    room = world.create_room("bot", "群", ["bot2", "p0", "p1"])
    with pytest.raises(PlatformError, match="owner or admin"):
        run(other.remove_member(room, "p0"))
    events: list[RoomEvent] = []

    async def on(event: RoomEvent) -> None:
        events.append(event)

    other.on_room_event(on)
    run(owner.remove_member(room, "p0"))
    assert "p0" not in world.room(room).members
    assert events == [RoomEvent(RoomEventKind.LEAVE, room, ("p0",))]


def test_invitation_confirmation_holds_adds_by_plain_members():
    world = make_world()
    world.account("owner")
    helper = world.account("helper")
    room = world.create_room("owner", "群", ["helper", "p0"])
    world.room(room).confirm_invites = True
    assert run(helper.add_member(room, "p1")) is AddOutcome.INVITED


def test_sending_too_fast_is_rate_limited_until_the_clock_moves():
    clock = ManualClock()
    world = SimulatedWeChat(clock=clock)
    world.add_contact("p0")
    bot = world.account("bot", rate=1.0, burst=2)
    room = world.create_room("bot", "群", ["p0"])
    run(bot.send_text(room, "一"))
    run(bot.send_text(room, "二"))
    with pytest.raises(RateLimited) as caught:
        run(bot.send_text(room, "三"))
    assert caught.value.retryable and caught.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    run(bot.send_text(room, "三"))
    assert [m.text for m in world.messages(room)] == ["一", "二", "三"]


def test_pacing_is_per_account():
    world = make_world()
    a = world.account("a", rate=1.0, burst=1)
    b = world.account("b", rate=1.0, burst=1)
    room = world.create_room("a", "群", ["b", "p0"])
    run(a.send_text(room, "1"))
    run(b.send_text(room, "2"))
    with pytest.raises(RateLimited):
        run(a.send_text(room, "3"))


def test_joins_leaves_and_topic_changes_are_events():
    world = make_world()
    bot = world.account("bot")
    events: list[RoomEvent] = []

    async def on(event: RoomEvent) -> None:
        events.append(event)

    bot.on_room_event(on)
    room = world.create_room("bot", "群", ["p0"])
    run(world.join(room, "p1", inviter_id="p0"))
    run(world.change_topic(room, "p0", "新群名"))
    run(world.leave(room, "p1"))
    assert [e.kind for e in events] == [
        RoomEventKind.JOIN,
        RoomEventKind.TOPIC,
        RoomEventKind.LEAVE,
    ]
    assert events[0].inviter_id == "p0" and events[1].topic == "新群名"
    assert run(bot.list_rooms())[0].topic == "新群名"


def test_a_reply_sent_from_a_callback_is_delivered_after_it_not_inside_it():
    world = make_world()
    bot = world.account("bot")
    order: list[str] = []

    async def on(msg: IncomingMessage) -> None:
        order.append(f"start {msg.text}")
        if not msg.is_self:
            await bot.send_text(msg.room_id, "回复")
        order.append(f"end {msg.text}")

    bot.on_message(on)
    room = world.create_room("bot", "群", ["p0"])
    run(world.say(room, "p0", "问"))
    assert order == ["start 问", "end 问", "start 回复", "end 回复"]


def test_renaming_changes_the_display_name_not_the_id():
    world = make_world()
    bot = world.account("bot")
    room = world.create_room("bot", "群", ["p0"])
    world.rename("p0", "管理员")
    world.set_nickname(room, "p0", "省少工委-管理员")
    member = next(m for m in run(bot.list_members(room)) if m.contact_id == "p0")
    assert (member.name, member.nickname) == ("管理员", "省少工委-管理员")


def test_files_are_logged_with_their_path():
    world = make_world()
    bot = world.account("bot")
    room = world.create_room("bot", "群", ["p0"])
    mid = run(bot.send_file(room, "/tmp/汇总表.xlsx"))
    assert world.message(mid).file == "/tmp/汇总表.xlsx"
    assert world.message(mid).text == "[文件] 汇总表.xlsx"
