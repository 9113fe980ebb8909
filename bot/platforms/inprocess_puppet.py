"""An in-process Wechaty puppet over the simulated WeChat: the real ``wechaty.Wechaty`` class,
driven end to end with no network and no WeChat account.

``InProcessPuppet(world, account_id)`` is a ``wechaty_puppet.Puppet`` whose contacts, rooms and
messages are those of ``bot.platforms.simulated.SimulatedWeChat`` as seen by one ``SimulatedAccount``.
What people do in the world (``world.say``, ``world.join`` …) reaches Wechaty as puppet events
carrying ids, exactly as over a puppet service; Wechaty then loads the payloads back through
this puppet. What the bot does through Wechaty (``room.say``, ``room.add`` …) goes through the
account, so the world's pacing, size cap and invitations apply.

Like the service puppet, ``start()`` logs in and then runs until ``stop()``.

Pitfalls this takes care of (see WECHATY_NOTES.md):

- Wechaty drops a message whose id it has seen before, in a process-wide set; every world
  numbers its messages from 1, so ids are prefixed with a per-puppet token.
- Exceptions in Wechaty's listeners are swallowed into the emitter's ``'error'`` event; this
  puppet keeps them in ``errors`` and calls ``on_error`` so tests can fail on them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.platforms.simulated import SimulatedAccount, SimulatedWeChat
from bot.platforms.wechaty_compat import (
    AsyncIOEventEmitter,
    ContactPayload,
    ContactType,
    EventLoginPayload,
    EventLogoutPayload,
    EventMessagePayload,
    EventRoomJoinPayload,
    EventRoomLeavePayload,
    EventRoomTopicPayload,
    FileBox,
    MessagePayload,
    MessageType,
    Puppet,
    PuppetOptions,
    RoomMemberPayload,
    RoomPayload,
    RoomQueryFilter,
)
from matrix.platform import IncomingMessage, PlatformError, RoomEvent, RoomEventKind


class InProcessPuppet(Puppet):
    """A Wechaty puppet for one bot account of a simulated WeChat world."""

    def __init__(
        self,
        world: SimulatedWeChat,
        account_id: str,
        *,
        name: str = "",
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__(PuppetOptions(), name="inprocess")
        self.world = world
        self.account: SimulatedAccount = world.account(account_id, name)
        self.errors: list[BaseException] = []
        self._on_error = on_error
        self._emitter = AsyncIOEventEmitter()
        self._emitter.on("error", self._record_error)
        self._prefix = uuid.uuid4().hex[:8] + ":"
        self._files = tempfile.TemporaryDirectory(prefix="qunmatrix-puppet-")
        self._topics = {rid: r.topic for rid, r in world.rooms.items()}
        self._running = False
        self._stopped = asyncio.Event()
        # the account keeps its subscribers for good; this puppet forwards only while running
        self.account.on_message(self._heard)
        self.account.on_room_event(self._saw)

    def _record_error(self, error: Any) -> None:
        if isinstance(error, BaseException):
            self.errors.append(error)
            if self._on_error:
                self._on_error(error)

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, then serve until ``stop()`` (as the service puppet's event stream does)."""
        self._stopped.clear()
        self._running = True
        self._emitter.emit("login", EventLoginPayload(contact_id=self.account.account_id))
        await self._stopped.wait()

    async def stop(self) -> None:
        if self._running:
            self._running = False
            self._emitter.emit(
                "logout", EventLogoutPayload(contact_id=self.account.account_id, data="stop")
            )
        self._stopped.set()

    def self_id(self) -> str:
        return self.account.account_id

    def on(self, event_name: str, caller: Callable[..., Any]) -> None:
        self._emitter.on(event_name, caller)

    def listener_count(self, event_name: str) -> int:
        return len(self._emitter.listeners(event_name))

    async def ding(self, data: str | None = None) -> None:
        return None

    # --- world → Wechaty ----------------------------------------------------------------------

    async def _heard(self, msg: IncomingMessage) -> None:
        if self._running:
            self._emitter.emit(
                "message", EventMessagePayload(message_id=self._prefix + msg.message_id)
            )

    async def _saw(self, event: RoomEvent) -> None:
        if not self._running:
            return
        now = time.time()
        old_topic = self._topics.get(event.room_id, "")
        self._topics[event.room_id] = self.world.room(event.room_id).topic
        if event.kind is RoomEventKind.JOIN:
            payload: Any = EventRoomJoinPayload(
                invited_ids=list(event.contact_ids),
                inviter_id=event.inviter_id or self.account.account_id,
                room_id=event.room_id,
                timestamp=now,
            )
            self._emitter.emit("room-join", payload)
        elif event.kind is RoomEventKind.LEAVE:
            payload = EventRoomLeavePayload(
                removed_ids=list(event.contact_ids),
                remover_id=event.extra.get("remover_id", event.contact_ids[0]),
                room_id=event.room_id,
                timestamp=now,
            )
            self._emitter.emit("room-leave", payload)
        elif event.kind is RoomEventKind.TOPIC:
            payload = EventRoomTopicPayload(
                changer_id=event.contact_ids[0] if event.contact_ids else "",
                new_topic=event.topic,
                old_topic=old_topic,
                room_id=event.room_id,
                timestamp=now,
            )
            self._emitter.emit("room-topic", payload)

    # --- payloads Wechaty loads ---------------------------------------------------------------

    async def contact_list(self) -> list[str]:
        return list(self.world.contacts)

    async def contact_payload(self, contact_id: str) -> ContactPayload:
        contact = self.world.contacts.get(contact_id)
        if contact is None:
            raise PlatformError(f"no contact {contact_id}")
        return ContactPayload(
            id=contact.contact_id,
            name=contact.name,
            type=ContactType.CONTACT_TYPE_PERSONAL,
            friend=True,
        )

    async def message_payload(self, message_id: str) -> MessagePayload:
        msg = self.world.message(message_id.removeprefix(self._prefix))
        return MessagePayload(
            id=message_id,
            text=msg.text,
            filename=msg.file.replace("\\", "/").rsplit("/", 1)[-1] if msg.file else "",
            timestamp=int(msg.at),
            type=MessageType.MESSAGE_TYPE_ATTACHMENT if msg.file else MessageType.MESSAGE_TYPE_TEXT,
            from_id=msg.contact_id,
            room_id=msg.room_id,
            to_id="",
            mention_ids=list(msg.mentions),
        )

    async def room_payload(self, room_id: str) -> RoomPayload:
        room = self.world.room(room_id)
        return RoomPayload(
            id=room.room_id,
            topic=room.topic,
            owner_id=room.owner_id,
            admin_ids=sorted(room.admins),
            member_ids=list(room.members),
        )

    async def room_members(self, room_id: str) -> list[str]:
        return list(self.world.room(room_id).members)

    async def room_member_payload(self, room_id: str, contact_id: str) -> RoomMemberPayload:
        room = self.world.room(room_id)
        if contact_id not in room.members:
            raise PlatformError(f"{contact_id} is not in room {room_id}")
        return RoomMemberPayload(
            id=contact_id,
            room_alias=room.members[contact_id],
            name=self.world.contacts[contact_id].name,
        )

    async def room_search(self, query: RoomQueryFilter | None = None) -> list[str]:
        return [r.room_id for r in await self.account.list_rooms()]

    async def room_list(self) -> list[str]:
        return await self.room_search()

    # --- what the bot does --------------------------------------------------------------------

    async def message_send_text(
        self, conversation_id: str, message: str, mention_ids: list[str] | None = None
    ) -> str:
        mid = await self.account.send_text(conversation_id, message, tuple(mention_ids or ()))
        return self._prefix + mid

    async def message_send_file(self, conversation_id: str, file: FileBox) -> str:
        # the world keeps the file as the room would show it: saved under its name
        folder = Path(self._files.name) / uuid.uuid4().hex[:8]
        folder.mkdir()
        path = folder / file.name
        await file.to_file(str(path))
        return self._prefix + await self.account.send_file(conversation_id, str(path))

    async def message_file(self, message_id: str) -> FileBox:
        msg = self.world.message(message_id.removeprefix(self._prefix))
        if not msg.file:
            raise PlatformError(f"message {message_id} carries no file")
        return FileBox.from_file(msg.file)

    async def room_announce(self, room_id: str, announcement: str | None = None) -> str:
        if announcement is None:
            return self.world.room(room_id).announcement
        await self.account.set_announcement(room_id, announcement)
        return announcement

    async def room_create(self, contact_ids: list[str], topic: str | None = None) -> str:
        return await self.account.create_room(topic or "", contact_ids)

    async def room_add(self, room_id: str, contact_id: str) -> None:
        await self.account.add_member(room_id, contact_id)

    async def room_delete(self, room_id: str, contact_id: str) -> None:
        await self.account.remove_member(room_id, contact_id)

    async def room_topic(self, room_id: str, new_topic: str) -> None:
        await self.account.set_topic(room_id, new_topic)
