"""Files and 群公告 through the real ``wechaty.Wechaty`` over the in-process puppet: a member's
file reaches the bot as the port's ``IncomingFile`` (``Message.to_file_box``, saved under the
adapter's folder), the bot's file lands in the room with its content (``FileBox``), and the
群公告 is set through ``Room.announce`` where the account owns the room, refused elsewhere."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.platforms.inprocess_puppet import InProcessPuppet
from bot.platforms.simulated import ManualClock, SimulatedWeChat
from bot.platforms.wechaty_adapter import Backoff, WechatyPlatform
from matrix.platform import IncomingMessage, NotSupported
from matrix.relay.options import AttachmentOptions

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


def hearing(bot: WechatyPlatform) -> asyncio.Queue[IncomingMessage]:
    """Every message the bot hears, in a queue."""
    heard: asyncio.Queue[IncomingMessage] = asyncio.Queue()

    async def hear(msg: IncomingMessage) -> None:
        await heard.put(msg)

    bot.on_message(hear)
    return heard


def test_a_members_file_reaches_the_bot_saved_in_its_folder(errors, tmp_path):
    world, room, _ = make_world()
    sent = tmp_path / "phone" / "会议通知.pdf"
    sent.parent.mkdir()
    sent.write_bytes(b"%PDF-1.4 notice" * 100)

    async def scenario() -> None:
        async with platform(world, errors, tmp_path / "incoming").running(login_timeout=10) as bot:
            heard = hearing(bot)
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


def test_qunmatrix_run_sends_a_members_file_with_the_notice(province_db, bp, errors, tmp_path):
    from bot.cli.app import Context
    from bot.config import Settings
    from bot.service.process import dispatcher, serve
    from matrix.relay import RelayOptions
    from tests.worlds import ACCOUNT, COUNTY_OFFICE, provisioned_world, room_of

    world = provisioned_world(province_db, bp)
    room = room_of(world, "乙1县少先队大队辅导员群")
    store = AttachmentOptions(dir=str(tmp_path / "store"))
    settings = Settings(
        db=province_db.url.render_as_string(hide_password=False),
        relay=RelayOptions(attachments=store),
    )
    sent = tmp_path / "phone" / "会议议程.docx"
    sent.parent.mkdir()
    sent.write_bytes(b"PK agenda" * 200)

    async def bot_said(since: int, count: int) -> list[Any]:
        async def wait() -> list[Any]:
            while True:
                said = [m for m in world.messages(room, since=since) if m.contact_id == ACCOUNT]
                if len(said) >= count:
                    return said
                await asyncio.sleep(0.01)

        return await asyncio.wait_for(wait(), timeout=10)

    async def scenario() -> None:
        platform = WechatyPlatform(
            lambda: InProcessPuppet(world, ACCOUNT, on_error=errors.append),
            send_interval=0,
            on_error=errors.append,
            files_dir=str(tmp_path / "incoming"),
        )
        bot = dispatcher(Context(settings), platform)
        running = asyncio.create_task(serve(platform, bot))
        try:
            await platform.wait_logged_in(timeout=10)
            await platform.drained()
            await world.send_file(room, COUNTY_OFFICE, str(sent))
            await platform.drained()
            mark = len(world.messages())
            await world.say(room, COUNTY_OFFICE, "#通知 请查收会议议程 无需回执 附件")
            plan, copy, file = await bot_said(mark, 3)
            assert "附件 1 个（会议议程.docx）随通知发到每个群" in plan.text
            assert copy.text.startswith("【通知 T1】乙1县\n请查收会议议程")
            assert file.text == "[文件] 会议议程.docx"
            assert Path(file.file).read_bytes() == sent.read_bytes()
        finally:
            await platform.stop()
            await asyncio.wait_for(running, timeout=10)

    asyncio.run(scenario())


def test_files_members_sent_long_ago_are_swept_from_the_folder(errors, tmp_path):
    import os

    from bot.platforms.wechaty_adapter import FILES_KEEP_SECONDS

    world, room, _ = make_world()
    incoming = tmp_path / "incoming"
    old = incoming / "m-old"
    old.mkdir(parents=True)
    (old / "旧文件.pdf").write_bytes(b"old")
    stale = old.stat().st_mtime - FILES_KEEP_SECONDS - 60
    os.utime(old, (stale, stale))
    sent = tmp_path / "新文件.pdf"
    sent.write_bytes(b"new")

    async def scenario() -> None:
        async with platform(world, errors, incoming).running(login_timeout=10) as bot:
            heard = hearing(bot)
            await world.send_file(room, "wx_office", str(sent))
            msg = await asyncio.wait_for(heard.get(), timeout=10)
            assert msg.file is not None and Path(msg.file.path).is_file()
            assert not old.exists()

    asyncio.run(scenario())
