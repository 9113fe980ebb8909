"""Over the real wire: the bot talks gRPC to a Node puppet service hosting a mock WeChat.

python-wechaty 0.10.7 → grpclib → wechaty-puppet-service PuppetServer → wechaty-puppet-mock, all
on 127.0.0.1, on both service lines (the ``line`` fixture): 0.25 + mock 0.28, and 1.19 + mock
1.18. Needs Node.js and ``npm ci --prefix tests/wire`` and ``npm ci --prefix tests/wire/v1``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.platforms.wechaty_adapter import Backoff, WechatyPlatform
from matrix.platform import (
    AddOutcome,
    IncomingMessage,
    NotSupported,
    PlatformError,
    RoomEvent,
    RoomEventKind,
)
from tests.wire.mock_service import (
    LINES,
    TOKEN,
    BotProcess,
    MockService,
    bot_sent,
    copy_confirmed,
    start_service,
)
from tests.worlds import (
    ACCOUNT,
    COUNTY_OFFICE,
    SCHOOL_COUNSELOR,
    mock_world,
    provisioned_world,
    room_of,
)

pytestmark = pytest.mark.wire

BOT = "qm_bot"
ROOM = "county@chatroom"
WORLD: dict[str, Any] = {
    "self": {"id": BOT, "name": "群矩阵助手"},
    "contacts": [
        {"id": "wx_office", "name": "县少工委办公室"},
        {"id": "wx_t1", "name": "赵老师"},
        {"id": "wx_t2", "name": "钱老师"},
        {"id": "wx_new", "name": "孙老师"},
    ],
    "rooms": [
        {
            "id": ROOM,
            "topic": "示范县少先队大队辅导员群",
            "members": [BOT, "wx_office", "wx_t1", "wx_t2"],
            "owner": BOT,
        }
    ],
}


@pytest.fixture(params=sorted(LINES))
def line(request: pytest.FixtureRequest) -> str:
    """The Node puppet-service line under test."""
    return str(request.param)


@pytest.fixture
def service(tmp_path: Path, line: str) -> Iterator[MockService]:
    svc = start_service(WORLD, tmp_path, line=line)
    yield svc
    svc.stop()


def platform_for(svc: MockService, errors: list[BaseException]) -> WechatyPlatform:
    return WechatyPlatform.for_service(
        svc.endpoint,
        TOKEN,
        send_interval=0,
        backoff=Backoff(initial=0.2, maximum=1.0),
        on_error=errors.append,
    )


async def next_item(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), timeout=15)


def test_a_message_in_a_mock_group_reaches_the_bot_and_its_reply_comes_back(service, errors):

    async def conversation() -> None:
        platform = platform_for(service, errors)
        heard: asyncio.Queue[IncomingMessage] = asyncio.Queue()

        async def reply(msg: IncomingMessage) -> None:
            await platform.send_text(msg.room_id, f"收到：{msg.text}", (msg.contact_id,))
            await heard.put(msg)

        platform.on_message(reply)
        async with platform.running():
            assert platform.account_id == BOT
            # WeChat writes a mention into the text: "@name" and U+2005
            await service.say(ROOM, "wx_office", "@群矩阵助手\u2005#帮助", mentions=(BOT,))
            msg = await next_item(heard)
            assert (msg.room_id, msg.contact_id, msg.text) == (ROOM, "wx_office", "#帮助")
            assert msg.sender_name == "县少工委办公室"
            assert msg.mentions == (BOT,)
            sent = await service.sent()
            assert [(s["room"], s["text"], s["mentions"]) for s in sent] == [
                (ROOM, "@县少工委办公室 收到：#帮助", ["wx_office"])
            ]
            # the service echoed the reply back; the bot must not hear itself
            await service.say(ROOM, "wx_t1", "收到")
            assert (await next_item(heard)).contact_id == "wx_t1"

    asyncio.run(conversation())


def test_provisioning_through_the_adapter_changes_the_mock_group(service, errors, tmp_path):

    async def provision() -> None:
        platform = platform_for(service, errors)
        async with platform.running():
            rooms = await platform.list_rooms()
            assert [(r.room_id, r.topic, r.member_count) for r in rooms] == [
                (ROOM, "示范县少先队大队辅导员群", 4)
            ]

            assert await platform.add_member(ROOM, "wx_new") is AddOutcome.ADDED
            await platform.remove_member(ROOM, "wx_t2")
            assert (await service.room(ROOM))["members"] == [BOT, "wx_office", "wx_t1", "wx_new"]

            if service.line == "0.x":
                await platform.set_topic(ROOM, "示范县少先队大队辅导员一群")
                assert (await service.room(ROOM))["topic"] == "示范县少先队大队辅导员一群"
                rooms = await platform.list_rooms()
                assert rooms[0].topic == "示范县少先队大队辅导员一群"
            else:  # the 1.x service ignores the call: a person is asked to do it
                with pytest.raises(NotSupported, match="请群主在手机微信里把群名改为"):
                    await platform.set_topic(ROOM, "示范县少先队大队辅导员一群")

            members = await platform.list_members(ROOM)
            assert [(m.contact_id, m.name, m.is_owner) for m in members] == [
                (BOT, "群矩阵助手", True),
                ("wx_office", "县少工委办公室", False),
                ("wx_t1", "赵老师", False),
                ("wx_new", "孙老师", False),
            ]

            new_room = await platform.create_room("示范县校长群", ["wx_t1", "wx_t2"])
            created = await service.room(new_room)
            assert (created["topic"], created["members"]) == (
                "示范县校长群",
                [BOT, "wx_t1", "wx_t2"],
            )

            with pytest.raises(NotSupported, match="群主"):
                await platform.set_admin(ROOM, "wx_office")

            table = tmp_path / "建群情况汇总表.xlsx"
            table.write_bytes(b"PK fake xlsx")
            file_id = await platform.send_file(ROOM, str(table))
            assert (await service.sent())[-1] == {
                "id": file_id,
                "room": ROOM,
                "mentions": [],
                "type": 1,
                "filename": "建群情况汇总表.xlsx",
            }

    asyncio.run(provision())


def test_joins_leaves_and_topic_changes_reach_the_bot(service, errors):

    async def watch() -> None:
        platform = platform_for(service, errors)
        events: asyncio.Queue[RoomEvent] = asyncio.Queue()
        platform.on_room_event(events.put)
        async with platform.running():
            await service.join(ROOM, "wx_new", inviter="wx_t1")
            joined = await next_item(events)
            assert (joined.kind, joined.contact_ids, joined.inviter_id) == (
                RoomEventKind.JOIN,
                ("wx_new",),
                "wx_t1",
            )
            await service.leave(ROOM, "wx_t2")
            left = await next_item(events)
            assert (left.kind, left.contact_ids) == (RoomEventKind.LEAVE, ("wx_t2",))
            await service.change_topic(ROOM, "改了名的群", changer="wx_t1")
            renamed = await next_item(events)
            assert (renamed.kind, renamed.topic, renamed.contact_ids) == (
                RoomEventKind.TOPIC,
                "改了名的群",
                ("wx_t1",),
            )
            # the cached room is not stale after the change
            assert (await platform.list_rooms())[0].topic == "改了名的群"
            assert "wx_t2" not in {m.contact_id for m in await platform.list_members(ROOM)}

    asyncio.run(watch())


def test_the_bot_reconnects_after_the_service_restarts(service, tmp_path, errors):

    async def outage() -> None:
        platform = platform_for(service, errors)
        heard: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        platform.on_message(heard.put)
        restarted: MockService | None = None
        try:
            async with platform.running():
                assert platform.connections == 1
                service.crash()
                while platform.connected:
                    await asyncio.sleep(0.05)
                with pytest.raises(PlatformError, match="连接已断开") as lost:
                    await platform.send_text(ROOM, "没有连接时")
                assert lost.value.retryable
                restarted = start_service(
                    WORLD, tmp_path, grpc_port=service.grpc_port, line=service.line
                )
                await asyncio.wait_for(platform.wait_logged_in(), timeout=20)
                assert platform.connections == 2
                await restarted.say(ROOM, "wx_t1", "断线后还在吗")
                assert (await next_item(heard)).text == "断线后还在吗"
                await platform.send_text(ROOM, "在")
                assert [s["text"] for s in await restarted.sent()] == ["在"]
        finally:
            if restarted is not None:
                restarted.stop()

    asyncio.run(outage())


def test_qunmatrix_run_answers_an_admin_and_removes_a_rejected_joiner_over_grpc(
    province_db, bp, tmp_path, line
):
    world = provisioned_world(province_db, bp)
    world.add_contact("wx_stranger", "路人甲")
    room = room_of(world, "乙1县少先队大队辅导员群")
    svc = start_service(mock_world(world), tmp_path, line=line)
    bot = BotProcess.run(province_db, svc, ACCOUNT, tmp_path)

    async def conversation() -> None:
        await svc.say(room, COUNTY_OFFICE, "#帮助")
        office_help = await bot_sent(svc, room, 0)
        assert office_help.startswith("K1office_staff，你在本群可以使用：")
        assert "#建群（provision）" in office_help

        await svc.join(room, "wx_stranger", inviter=SCHOOL_COUNSELOR)
        held = await bot_sent(svc, room, 1)
        assert "以下入群人员待管理员审核：\n  1号 路人甲（不在名册中）" in held

        await svc.say(room, COUNTY_OFFICE, "#拒绝 1")
        assert await bot_sent(svc, room, 2) == "已拒绝 路人甲 入群，已移出本群。"
        assert "wx_stranger" not in (await svc.room(room))["members"]

        # the relay runs inside `qunmatrix run`: the copy goes out, the service's echo confirms it
        await svc.say(room, COUNTY_OFFICE, "#通知 明天上午9点开会 无需回执")
        assert (await bot_sent(svc, room, 3)).startswith("通知 T1 已受理，将发往 1 个群")
        assert (await bot_sent(svc, room, 4)).startswith("【通知 T1】乙1县\n明天上午9点开会")
        await copy_confirmed(province_db)

    try:
        bot.wait_for("微信账号已登录：群矩阵助手（qunmatrix-bot）")
        asyncio.run(conversation())
    finally:
        code = bot.stop()
        svc.stop()
    assert code == 0, bot.output()
    assert "ERROR" not in bot.output(), bot.output()
    assert not (tmp_path / ".wechaty").exists()
