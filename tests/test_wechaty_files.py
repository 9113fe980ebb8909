"""Files and 群公告 through the real ``wechaty.Wechaty`` over the in-process puppet: a member's
file reaches the bot as the port's ``IncomingFile`` (``Message.to_file_box``, saved under the
adapter's folder), the bot's file lands in the room with its content (``FileBox``), and the
群公告 is set through ``Room.announce`` where the account owns the room, refused elsewhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.platforms.inprocess_puppet import InProcessPuppet
from bot.platforms.simulated import ManualClock, SimulatedWeChat
from bot.platforms.wechaty_adapter import Backoff, WechatyPlatform
from matrix.platform import IncomingMessage, NotSupported

BOT = "qm_bot"


def make_world() -> tuple[SimulatedWeChat, str, str]:
    world = SimulatedWeChat(clock=ManualClock())
    world.account(BOT, "群矩阵助手", rate=1.0, burst=50)
    for cid, name in {"wx_office": "县少工委办公室", "wx_t1": "赵老师"}.items():
        world.add_contact(cid, name)
    owned = world.create_room(BOT, "示范县少先队大队辅导员群", ["wx_office", "wx_t1"])
    other = world.create_room("wx_office", "县少工委工作群", [BOT, "wx_t1"])
    return world, owned, other


def platform(world: SimulatedWeChat, errors: list[BaseException], files: Path) -> WechatyPlatform:
    return WechatyPlatform(
        lambda: InProcessPuppet(world, BOT, on_error=errors.append),
        send_interval=0,
        backoff=Backoff(initial=0.05),
        on_error=errors.append,
        files_dir=str(files),
    )


def test_a_members_file_reaches_the_bot_saved_in_its_folder(errors, tmp_path):
    world, room, _ = make_world()
    sent = tmp_path / "phone" / "会议通知.pdf"
    sent.parent.mkdir()
    sent.write_bytes(b"%PDF-1.4 notice" * 100)

    async def scenario() -> None:
        async with platform(world, errors, tmp_path / "incoming").running(login_timeout=10) as bot:
            heard: asyncio.Queue[IncomingMessage] = asyncio.Queue()

            async def hear(msg: IncomingMessage) -> None:
                await heard.put(msg)

            bot.on_message(hear)
            await world.send_file(room, "wx_office", str(sent))
            msg = await asyncio.wait_for(heard.get(), timeout=10)
            assert (msg.contact_id, msg.text) == ("wx_office", "[文件] 会议通知.pdf")
            assert msg.file is not None
            assert (msg.file.name, msg.file.size) == ("会议通知.pdf", sent.stat().st_size)
            saved = Path(msg.file.path)
            assert saved.is_relative_to(tmp_path / "incoming")
            assert saved.read_bytes() == sent.read_bytes()

    asyncio.run(scenario())


def test_the_bots_file_lands_in_the_room_with_its_content(errors, tmp_path):
    world, room, _ = make_world()
    copy = tmp_path / "store" / "名单.xlsx"
    copy.parent.mkdir()
    copy.write_bytes(b"PK\x03\x04 list" * 50)

    async def scenario() -> None:
        async with platform(world, errors, tmp_path / "incoming").running(login_timeout=10) as bot:
            await bot.send_file(room, str(copy))
            [said] = [m for m in world.messages(room) if m.contact_id == BOT]
            assert said.text == "[文件] 名单.xlsx"
            assert Path(said.file).read_bytes() == copy.read_bytes()

    asyncio.run(scenario())


def test_the_announcement_is_set_where_the_account_owns_the_room_only(errors, tmp_path):
    world, owned, other = make_world()

    async def scenario() -> None:
        async with platform(world, errors, tmp_path / "incoming").running(login_timeout=10) as bot:
            await bot.set_announcement(owned, "【通知 T1】示范县\n周五前报送")
            assert world.room(owned).announcement == "【通知 T1】示范县\n周五前报送"
            with pytest.raises(NotSupported, match="不是该群群主"):
                await bot.set_announcement(other, "不该设上")
            assert world.room(other).announcement == ""

    asyncio.run(scenario())
