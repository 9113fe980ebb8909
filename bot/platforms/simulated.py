"""An in-process simulated WeChat: one world shared by several bot accounts, no network.

The demo, the console, the tests and the benchmarks run on it. It copies the WeChat behaviours
that matter to qunmatrix (see WECHATY_NOTES.md):

- a room holds at most ``max_room_size`` (500) members;
- adding someone to a room of more than ``invite_above`` (40) members only sends an invitation,
  which they must accept (``world.accept_invitation``); rooms of more than ``verify_above`` (100)
  members only take invitees who verified their identity;
- the owner may appoint at most ``max_admins`` (3) admins; only the owner or an admin may remove
  people; an owner can turn on invitation confirmation;
- each bot account is paced: more than ``burst`` operations (send, invite, create) faster than
  ``rate`` per second raise ``RateLimited`` with the wait, on an injectable clock;
- the bot's own messages come back to it with ``is_self=True``, as over a real puppet service;
- a contact may show a 微信号 (``wechat_id``) besides its contact id, as some puppets do.

Tests can also break it on purpose: ``world.fail("add_member", error, at=3)`` makes an account's
third ``add_member`` from now raise ``error`` (with ``after=True``, once the call took effect:
a process dying during the call). ``world.calls`` logs every operation the accounts made (an
operation the pacing refused was not made). ``await world.go_offline("bot1")`` is an outage of
that account's connection (every call raises ``Disconnected``, nothing said in its rooms reaches
it) until ``await world.go_online("bot1")``; ``await world.log_out("bot1")`` is the account
logged out on the phone. Each change reaches the account's ``on_presence`` callbacks.

Two kinds of API, kept apart on purpose:

``SimulatedWeChat`` (the world) is what *people* do and what tests inspect: ``add_contact``,
``create_room`` (someone else built a room), ``say``, ``join``, ``leave``, ``rename``,
``change_topic``, ``accept_invitation``, ``messages``, ``room``. These bypass pacing.

``SimulatedAccount`` (from ``world.account(contact_id)``) is one bot account and implements
``matrix.platform.Platform``; it is the only thing the bot talks to. ``on_message``,
``on_room_event`` and ``on_echo`` (the account's own messages only) subscribe async callbacks.
An account that joins a room (``join``, an accepted invitation) also hears ARRIVED itself.

Events are delivered in order by one queue: ``await world.say(...)`` returns once every callback
it caused (including replies and their echoes) has run, so a test can read the reply right away.

>>> import asyncio
>>> world = SimulatedWeChat(clock=ManualClock())
>>> bot = world.account("bot1", "群矩阵助手")
>>> seen = []
>>> async def heard(msg):
...     seen.append((msg.contact_id, msg.text, msg.is_self))
...     if not msg.is_self:
...         await bot.send_text(msg.room_id, "收到")
>>> bot.on_message(heard)
>>> for who in ("alice", "bob"):
...     _ = world.add_contact(who)
>>> room = world.create_room("bot1", "示范群", ["alice", "bob"])
>>> _ = asyncio.run(world.say(room, "alice", "你好"))
>>> seen
[('alice', '你好', False), ('bot1', '收到', True)]
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from matrix.platform import (
    AddOutcome,
    Disconnected,
    IncomingFile,
    IncomingMessage,
    Member,
    NotSupported,
    PlatformError,
    Presence,
    PresenceHandler,
    RateLimited,
    Room,
    RoomEvent,
    RoomEventKind,
)

Clock = Callable[[], float]
RECALL_SECONDS = 120.0  # WeChat lets the sender take a message back for two minutes
MessageHandler = Callable[[IncomingMessage], Awaitable[None]]
EventHandler = Callable[[RoomEvent], Awaitable[None]]

T = TypeVar("T")


class MovableClock(Protocol):
    """A clock that reads as seconds and moves when told: ``ManualClock``, or the relay's
    ``VirtualClock`` on a stage where notices have deadlines."""

    def __call__(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


class ManualClock:
    """A clock that only moves when told to, so pacing is testable without waiting.

    >>> clock = ManualClock(100.0)
    >>> clock.advance(2.5)
    >>> clock()
    102.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SimCalendar:
    """Dates on a manual clock, for what the bot reckons in days and hours (an account's daily
    quotas, a held joiner's timeout): the clock's zero is ``start``, by default 01:00 UTC today
    (09:00 in China), so that a day of simulated work rarely crosses midnight.

    >>> from datetime import UTC, datetime
    >>> cal = SimCalendar(ManualClock(), datetime(2026, 4, 1, 1, 0, tzinfo=UTC))
    >>> cal.clock.advance(3600)
    >>> cal.now().hour, cal.until_next_morning() / 3600
    (2, 23.0)
    """

    def __init__(self, clock: MovableClock, start: datetime | None = None) -> None:
        self.clock = clock
        today = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
        self.start = (start or today) - timedelta(seconds=clock())

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.clock())

    def until_next_morning(self) -> float:
        """Seconds from now until the same time of day as ``start``, tomorrow or later today."""
        now = self.now()
        morning = now.replace(
            hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0
        )
        if morning <= now:
            morning += timedelta(days=1)
        return (morning - now).total_seconds()

    def next_morning(self) -> None:
        """Move the clock on to the next morning."""
        self.clock.advance(self.until_next_morning())


@dataclass
class SimContact:
    contact_id: str
    name: str
    verified: bool = True  # identity verified (实名), needed to join rooms above verify_above
    wechat_id: str = ""  # the 微信号 the platform shows, when it is not the contact id


@dataclass
class _Fault:
    method: str
    at: int  # the n-th call of ``method`` overall, counted from the world's start
    error: BaseException
    after: bool  # raise once the call took effect


@dataclass
class SimRoom:
    """A room as the world knows it. ``members`` keeps join order; values are 群昵称."""

    room_id: str
    topic: str
    owner_id: str
    members: dict[str, str] = field(default_factory=dict)
    admins: set[str] = field(default_factory=set)
    invitations: dict[str, str] = field(default_factory=dict)  # invitee → inviter
    confirm_invites: bool = False  # 群聊邀请确认: only owner/admins add directly
    announcement: str = ""  # 群公告: set by the owner or an admin


@dataclass(frozen=True)
class SimMessage:
    """One message said in a room, as stored in the world's log."""

    message_id: str
    room_id: str
    contact_id: str
    text: str
    mentions: tuple[str, ...] = ()
    at: float = 0.0
    file: str = ""  # a sent file's path (send_file), empty for text
    recalled: bool = False  # taken back by its sender (撤回): it stays in the log, marked
    to: str = ""  # a private message (私聊): its one reader; ``room_id`` is then empty
    quoted: str = ""  # the message it quotes (引用)


class _Pacer:
    """A token bucket: ``burst`` operations at once, refilled at ``rate`` per second."""

    def __init__(self, clock: Clock, rate: float, burst: int) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self, what: str, account_id: str) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            wait = (1.0 - self.tokens) / self.rate
            raise RateLimited(f"{account_id} {what} too fast", retry_after=wait)
        self.tokens -= 1.0


class SimulatedWeChat:
    """The shared world: contacts, rooms, members, admins, topics and every message."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        max_room_size: int = 500,
        invite_above: int = 40,
        verify_above: int = 100,
        max_admins: int = 3,
        directory: Callable[[str], str | None] | None = None,
    ) -> None:
        """``directory`` says who else has WeChat: the name of a contact id the world has not
        met yet, or None (the stage looks people up on the roster)."""
        self.clock = clock
        self.directory = directory
        self.max_room_size = max_room_size
        self.invite_above = invite_above
        self.verify_above = verify_above
        self.max_admins = max_admins
        self.recall_seconds = RECALL_SECONDS
        self.contacts: dict[str, SimContact] = {}
        self.rooms: dict[str, SimRoom] = {}
        self.accounts: dict[str, SimulatedAccount] = {}
        self._messages: dict[str, SimMessage] = {}
        self._log: list[SimMessage] = []
        self._ids = itertools.count(1)
        self._queue: deque[tuple[Callable[[Any], Awaitable[None]], Any]] = deque()
        self._draining = False
        self.calls: list[tuple[str, ...]] = []  # every operation an account made: (method, *args)
        self._counts: Counter[str] = Counter()
        self._faults: list[_Fault] = []

    # --- who exists ---------------------------------------------------------------------------

    def add_contact(
        self, contact_id: str, name: str = "", *, verified: bool = True, wechat_id: str = ""
    ) -> SimContact:
        """Register a person (idempotent; a second call keeps the first name)."""
        found = self.contacts.get(contact_id)
        if found is None:
            found = self.contacts[contact_id] = SimContact(
                contact_id, name or contact_id, verified, wechat_id
            )
        return found

    # --- breaking it on purpose ---------------------------------------------------------------

    def fail(self, method: str, error: BaseException, *, at: int = 1, after: bool = False) -> None:
        """Make the ``at``-th call (from now) of an account's ``method`` raise ``error``; with
        ``after``, only once the call took effect."""
        self._faults.append(_Fault(method, self.count(method) + at, error, after))

    def count(self, method: str) -> int:
        """How many times the accounts called ``method`` so far."""
        return self._counts[method]

    def _operation(self, method: str, *args: str) -> _Fault | None:
        """Log one operation; raise a fault due before it, return one due after it."""
        self.calls.append((method, *args))
        self._counts[method] += 1
        n = self._counts[method]
        for fault in self._faults:
            if fault.method == method and fault.at == n:
                self._faults.remove(fault)
                if not fault.after:
                    raise fault.error
                return fault
        return None

    def account(
        self, contact_id: str, name: str = "", *, rate: float = 1.0, burst: int = 5
    ) -> SimulatedAccount:
        """The bot account ``contact_id`` (created on first use), paced at ``rate`` operations per
        second with bursts of ``burst``."""
        found = self.accounts.get(contact_id)
        if found is None:
            self.add_contact(contact_id, name or contact_id)
            found = self.accounts[contact_id] = SimulatedAccount(self, contact_id, rate, burst)
        return found

    async def go_offline(self, account_id: str) -> None:
        """The account's connection drops (the puppet service is down, the network is)."""
        await self.accounts[account_id]._set_presence(Presence.OFFLINE)

    async def go_online(self, account_id: str) -> None:
        """The account is connected and logged in again."""
        await self.accounts[account_id]._set_presence(Presence.ONLINE)

    async def log_out(self, account_id: str) -> None:
        """The account is logged out (on the phone, or WeChat kicked it): a person must log it
        in again."""
        await self.accounts[account_id]._set_presence(Presence.LOGGED_OUT)

    def rename(self, contact_id: str, name: str) -> None:
        """A person changes their WeChat name (anyone may pick any name)."""
        self._contact(contact_id).name = name

    def set_nickname(self, room_id: str, contact_id: str, nickname: str) -> None:
        """A member sets their 群昵称 in one room."""
        room = self.room(room_id)
        self._require_member(room, contact_id)
        room.members[contact_id] = nickname

    # --- rooms, as people change them ---------------------------------------------------------

    def room(self, room_id: str) -> SimRoom:
        try:
            return self.rooms[room_id]
        except KeyError:
            raise PlatformError(f"no room {room_id}") from None

    def find_room(self, topic: str) -> SimRoom | None:
        """The first room with this exact topic."""
        return next((r for r in self.rooms.values() if r.topic == topic), None)

    def create_room(
        self,
        owner_id: str,
        topic: str,
        member_ids: list[str] | tuple[str, ...],
        *,
        room_id: str = "",
    ) -> str:
        """A room built outside the bot (by a person, or a set-up step): no pacing, no events.
        ``room_id`` recreates a room under a known id (a console restarted over a database)."""
        ids = list(dict.fromkeys([owner_id, *member_ids]))
        for cid in ids:
            self._contact(cid)
        if len(ids) > self.max_room_size:
            raise PlatformError(f"a room holds at most {self.max_room_size} members")
        if room_id in self.rooms:
            raise PlatformError(f"room {room_id} exists")
        while not room_id or room_id in self.rooms:
            room_id = f"{next(self._ids)}@chatroom"
        room = SimRoom(room_id, topic, owner_id, dict.fromkeys(ids, ""))
        self.rooms[room_id] = room
        return room_id

    async def join(self, room_id: str, contact_id: str, inviter_id: str = "") -> None:
        """Someone joins (by QR code or a member's invitation) and every account in the room
        hears a JOIN event."""
        room = self.room(room_id)
        self._contact(contact_id)
        if contact_id in room.members:
            return
        if len(room.members) >= self.max_room_size:
            raise PlatformError(f"room {room_id} is full ({self.max_room_size})")
        room.members[contact_id] = ""
        room.invitations.pop(contact_id, None)
        await self._event(
            room, RoomEvent(RoomEventKind.JOIN, room_id, (contact_id,), inviter_id=inviter_id)
        )
        await self._arrived(room, (contact_id,), inviter_id)

    async def leave(self, room_id: str, contact_id: str) -> None:
        """Someone leaves on their own; the accounts still in the room hear a LEAVE event."""
        room = self.room(room_id)
        self._require_member(room, contact_id)
        self._drop(room, contact_id)
        await self._event(room, RoomEvent(RoomEventKind.LEAVE, room_id, (contact_id,)))

    async def change_topic(self, room_id: str, contact_id: str, topic: str) -> None:
        """A member renames the room."""
        room = self.room(room_id)
        self._require_member(room, contact_id)
        room.topic = topic
        await self._event(room, RoomEvent(RoomEventKind.TOPIC, room_id, (contact_id,), topic=topic))

    async def accept_invitations(self, room_id: str | None = None) -> int:
        """Everyone invited (to ``room_id``, or anywhere) accepts; each room hears one JOIN event
        for all of them, as WeChat announces a batch (“A 邀请 B、C 加入了群聊”). Invitees the
        room can no longer take (full, or not verified above ``verify_above``) stay invited.
        Returns how many joined."""
        joined = 0
        rooms = [self.room(room_id)] if room_id is not None else list(self.rooms.values())
        for room in rooms:
            batch: dict[str, list[str]] = {}
            for cid, inviter in list(room.invitations.items()):
                if len(room.members) >= self.max_room_size:
                    break
                if len(room.members) > self.verify_above and not self._contact(cid).verified:
                    continue
                del room.invitations[cid]
                if cid in room.members:
                    continue
                room.members[cid] = ""
                batch.setdefault(inviter, []).append(cid)
            for inviter, ids in batch.items():
                joined += len(ids)
                await self._event(
                    room,
                    RoomEvent(RoomEventKind.JOIN, room.room_id, tuple(ids), inviter_id=inviter),
                )
                await self._arrived(room, tuple(ids), inviter)
        return joined

    def pending_invitations(self, room_id: str) -> dict[str, str]:
        """Invitee → inviter for invitations not yet accepted."""
        return dict(self.room(room_id).invitations)

    async def accept_invitation(self, room_id: str, contact_id: str) -> None:
        """The invitee accepts: they join (subject to the size cap and identity check)."""
        room = self.room(room_id)
        inviter = room.invitations.get(contact_id)
        if inviter is None:
            raise PlatformError(f"{contact_id} has no invitation to {room_id}")
        if len(room.members) > self.verify_above and not self._contact(contact_id).verified:
            raise PlatformError(f"rooms above {self.verify_above} members need a verified identity")
        await self.join(room_id, contact_id, inviter_id=inviter)

    async def say(
        self,
        room_id: str,
        contact_id: str,
        text: str,
        mentions: tuple[str, ...] = (),
        *,
        quoted: str = "",
    ) -> str:
        """A member says ``text`` (quoting the message ``quoted``); returns the message id once
        every callback has run."""
        room = self.room(room_id)
        self._require_member(room, contact_id)
        return await self._post(room, contact_id, text, mentions, quoted=quoted)

    async def send_file(self, room_id: str, contact_id: str, path: str) -> str:
        """A member sends the file at ``path`` (a local file: the bot reads it from there, as
        the Wechaty adapter reads the file it saved)."""
        room = self.room(room_id)
        self._require_member(room, contact_id)
        return await self._post(room, contact_id, f"[文件] {_file_name(path)}", (), file=path)

    # --- reading the log ----------------------------------------------------------------------

    def message(self, message_id: str) -> SimMessage:
        try:
            return self._messages[message_id]
        except KeyError:
            raise PlatformError(f"no message {message_id}") from None

    def post_direct(self, sender: str, contact_id: str, text: str) -> str:
        """A private message into the log (no room hears it)."""
        mid = f"m{next(self._ids)}"
        msg = SimMessage(mid, "", sender, text, (), self.clock(), to=contact_id)
        self._messages[mid] = msg
        self._log.append(msg)
        return mid

    def mark_recalled(self, message_id: str) -> None:
        """The message was taken back: the log keeps it, marked ``recalled``."""
        msg = dataclasses.replace(self._messages[message_id], recalled=True)
        self._messages[message_id] = msg
        self._log = [msg if m.message_id == message_id else m for m in self._log]

    def messages(self, room_id: str | None = None, *, since: int = 0) -> list[SimMessage]:
        """The log in order, optionally one room's; ``since`` skips the first entries of the
        whole log (use ``len(world.messages())`` as a bookmark)."""
        return [m for m in self._log[since:] if room_id is None or m.room_id == room_id]

    # --- internals ----------------------------------------------------------------------------

    def _contact(self, contact_id: str) -> SimContact:
        found = self.contacts.get(contact_id)
        if found is None:
            name = self.directory(contact_id) if self.directory else None
            if name is None:
                raise PlatformError(f"no contact {contact_id}")
            found = self.add_contact(contact_id, name)
        return found

    @staticmethod
    def _require_member(room: SimRoom, contact_id: str) -> None:
        if contact_id not in room.members:
            raise PlatformError(f"{contact_id} is not in room {room.room_id}")

    @staticmethod
    def _drop(room: SimRoom, contact_id: str) -> None:
        del room.members[contact_id]
        room.admins.discard(contact_id)

    def _accounts_in(self, room: SimRoom) -> list[SimulatedAccount]:
        # an account that is away hears nothing of what is said meanwhile
        return [
            a
            for cid, a in self.accounts.items()
            if cid in room.members and a.presence is Presence.ONLINE
        ]

    async def _post(
        self,
        room: SimRoom,
        contact_id: str,
        text: str,
        mentions: tuple[str, ...],
        file: str = "",
        quoted: str = "",
    ) -> str:
        mid = f"m{next(self._ids)}"
        msg = SimMessage(
            mid, room.room_id, contact_id, text, tuple(mentions), self.clock(), file, quoted=quoted
        )
        self._messages[mid] = msg
        self._log.append(msg)
        name = self.contacts[contact_id].name
        sent = _incoming_file(file) if file else None
        for acc in self._accounts_in(room):
            incoming = IncomingMessage(
                mid,
                room.room_id,
                contact_id,
                text,
                name,
                msg.mentions,
                acc.account_id == contact_id,
                sent,
                quoted,
            )
            for handler in acc.message_handlers:
                self._queue.append((handler, incoming))
        await self._drain()
        return mid

    async def _event(self, room: SimRoom, event: RoomEvent, also: tuple[str, ...] = ()) -> None:
        for acc in self._accounts_in(room) + [self.accounts[a] for a in also]:
            for handler in acc.event_handlers:
                self._queue.append((handler, event))
        await self._drain()

    async def _arrived(self, room: SimRoom, joined: tuple[str, ...], inviter_id: str) -> None:
        """A bot account among ``joined`` hears that it was brought in itself (ARRIVED), as
        the Wechaty adapter reports a room-join whose joiner is the account."""
        for cid in joined:
            acc = self.accounts.get(cid)
            if acc is not None and acc.presence is Presence.ONLINE:
                event = RoomEvent(
                    RoomEventKind.ARRIVED, room.room_id, (cid,), inviter_id=inviter_id
                )
                for handler in acc.event_handlers:
                    self._queue.append((handler, event))
        await self._drain()

    async def handled(self, work: Awaitable[T]) -> T:
        """Await ``work``, a bot's handler called straight (not through ``say``), as the world
        runs its own callbacks: what it causes (a leave, an echo) is heard once it is done, as
        over a real connection, and never inside the call that caused it. Heard inside, the
        bot would wait on the room it is still busy with."""
        if self._draining:
            return await work
        self._draining = True
        try:
            result = await work
        finally:
            self._draining = False
        await self._drain()
        return result

    async def _drain(self) -> None:
        # one loop delivers everything in order; a callback that sends (and so queues an echo)
        # does not recurse into other callbacks
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue:
                handler, arg = self._queue.popleft()
                await handler(arg)
        finally:
            self._draining = False


class SimulatedAccount:
    """One bot account in the world; implements ``matrix.platform.Platform``."""

    def __init__(self, world: SimulatedWeChat, account_id: str, rate: float, burst: int) -> None:
        self.world = world
        self._account_id = account_id
        self.pacer = _Pacer(world.clock, rate, burst)
        self.message_handlers: list[MessageHandler] = []
        self.event_handlers: list[EventHandler] = []
        self.presence_handlers: list[PresenceHandler] = []
        self._presence = Presence.ONLINE

    @property
    def account_id(self) -> str:
        return self._account_id

    @property
    def presence(self) -> Presence:
        return self._presence

    def on_presence(self, handler: PresenceHandler) -> None:
        """Call ``handler`` with every change of ``presence``."""
        self.presence_handlers.append(handler)

    async def _set_presence(self, presence: Presence) -> None:
        if presence is self._presence:
            return
        self._presence = presence
        for handler in self.presence_handlers:
            self.world._queue.append((handler, presence))
        await self.world._drain()

    def _connected(self) -> None:
        if self._presence is not Presence.ONLINE:
            raise Disconnected()

    def on_message(self, handler: MessageHandler) -> None:
        """Call ``handler`` for every message in a room this account is in (its own too)."""
        self.message_handlers.append(handler)

    def on_room_event(self, handler: EventHandler) -> None:
        """Call ``handler`` for joins, leaves and topic changes in this account's rooms."""
        self.event_handlers.append(handler)

    def on_echo(self, handler: MessageHandler) -> None:
        """Call ``handler`` for this account's own messages as they come back (``is_self``), as
        the Wechaty adapter's ``on_echo`` does: the relay confirms its sends by them."""

        async def echo(msg: IncomingMessage) -> None:
            if msg.is_self:
                await handler(msg)

        self.message_handlers.append(echo)

    def _room_as_member(self, room_id: str) -> SimRoom:
        room = self.world.room(room_id)
        if self._account_id not in room.members:
            raise PlatformError(f"{self._account_id} is not in room {room_id}")
        return room

    def _may_manage(self, room: SimRoom) -> bool:
        return self._account_id == room.owner_id or self._account_id in room.admins

    async def list_rooms(self) -> list[Room]:
        self._connected()
        return [
            Room(r.room_id, r.topic, len(r.members))
            for r in self.world.rooms.values()
            if self._account_id in r.members
        ]

    async def list_members(self, room_id: str) -> list[Member]:
        self._connected()
        room = self._room_as_member(room_id)
        contacts = self.world.contacts
        return [
            Member(
                cid,
                contacts[cid].name,
                nick,
                cid in room.admins,
                cid == room.owner_id,
                contacts[cid].wechat_id,
            )
            for cid, nick in room.members.items()
        ]

    async def create_room(self, topic: str, contact_ids: list[str]) -> str:
        self._connected()
        self.pacer.take("create", self._account_id)
        late = self.world._operation("create_room", topic)
        room_id = self.world.create_room(self._account_id, topic, contact_ids)
        room = self.world.rooms[room_id]
        others = tuple(c for c in room.members if c != self._account_id)
        await self.world._event(
            room, RoomEvent(RoomEventKind.JOIN, room_id, others, inviter_id=self._account_id)
        )
        _raise(late)
        return room_id

    async def add_member(self, room_id: str, contact_id: str) -> AddOutcome:
        self._connected()
        room = self._room_as_member(room_id)
        self.world._contact(contact_id)
        if contact_id in room.members:
            return AddOutcome.ADDED
        if len(room.members) >= self.world.max_room_size:
            raise PlatformError(f"room {room_id} is full ({self.world.max_room_size})")
        self.pacer.take("invite", self._account_id)
        late = self.world._operation("add_member", room_id, contact_id)
        held = room.confirm_invites and not self._may_manage(room)
        if held or len(room.members) > self.world.invite_above:
            room.invitations[contact_id] = self._account_id
            _raise(late)
            return AddOutcome.INVITED
        await self.world.join(room_id, contact_id, inviter_id=self._account_id)
        _raise(late)
        return AddOutcome.ADDED

    async def remove_member(self, room_id: str, contact_id: str) -> None:
        self._connected()
        late = self.world._operation("remove_member", room_id, contact_id)
        room = self._room_as_member(room_id)
        if not self._may_manage(room):
            raise NotSupported(f"{self._account_id} is not owner or admin of {room_id}")
        if contact_id == room.owner_id:
            raise PlatformError("the owner cannot be removed")
        if contact_id in room.members:
            self.world._drop(room, contact_id)
            # the removed person's own account (if a bot) hears it too
            also = (contact_id,) if contact_id in self.world.accounts else ()
            event = RoomEvent(RoomEventKind.LEAVE, room_id, (contact_id,))
            await self.world._event(room, event, also)
        _raise(late)

    async def set_admin(self, room_id: str, contact_id: str) -> None:
        self._connected()
        late = self.world._operation("set_admin", room_id, contact_id)
        room = self._room_as_member(room_id)
        if self._account_id != room.owner_id:
            raise NotSupported(f"only the owner of {room_id} appoints admins")
        self.world._require_member(room, contact_id)
        if contact_id not in room.admins and contact_id != room.owner_id:
            if len(room.admins) >= self.world.max_admins:
                raise PlatformError(f"a room has at most {self.world.max_admins} admins")
            room.admins.add(contact_id)
        _raise(late)

    async def set_topic(self, room_id: str, topic: str) -> None:
        self._connected()
        late = self.world._operation("set_topic", room_id, topic)
        room = self._room_as_member(room_id)
        room.topic = topic
        await self.world._event(
            room, RoomEvent(RoomEventKind.TOPIC, room_id, (self._account_id,), topic=topic)
        )
        _raise(late)

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        self._connected()
        room = self._room_as_member(room_id)
        self.pacer.take("send", self._account_id)
        late = self.world._operation("send_text", room_id, text)
        message_id = await self.world._post(room, self._account_id, text, mentions)
        _raise(late)
        return message_id

    async def send_file(self, room_id: str, path: str) -> str:
        self._connected()
        room = self._room_as_member(room_id)
        self.pacer.take("send", self._account_id)
        late = self.world._operation("send_file", room_id, path)
        text = f"[文件] {_file_name(path)}"
        message_id = await self.world._post(room, self._account_id, text, (), file=path)
        _raise(late)
        return message_id

    async def set_announcement(self, room_id: str, text: str) -> None:
        """Like WeChat: the owner or an admin sets the 群公告."""
        self._connected()
        late = self.world._operation("set_announcement", room_id, text)
        room = self._room_as_member(room_id)
        if not self._may_manage(room):
            raise NotSupported(f"{self._account_id} is not owner or admin of {room_id}")
        room.announcement = text
        _raise(late)

    async def send_direct(self, contact_id: str, text: str) -> str:
        """Like WeChat's 私聊 from a group: only to someone who shares a room with the
        account."""
        self._connected()
        if not any(
            self._account_id in r.members and contact_id in r.members
            for r in self.world.rooms.values()
        ):
            raise PlatformError(f"{contact_id} shares no room with {self._account_id}")
        self.pacer.take("send", self._account_id)
        late = self.world._operation("send_direct", contact_id, text)
        message_id = self.world.post_direct(self._account_id, contact_id, text)
        _raise(late)
        return message_id

    async def recall(self, message_id: str) -> None:
        """Like WeChat: only the sender's own message, within ``recall_seconds`` of sending."""
        self._connected()
        late = self.world._operation("recall", message_id)
        msg = self.world.message(message_id)
        if msg.contact_id != self._account_id:
            raise PlatformError(f"message {message_id} was not sent by {self._account_id}")
        if self.world.clock() - msg.at > self.world.recall_seconds:
            raise NotSupported("消息发出已超过可撤回的时限")
        self.world.mark_recalled(message_id)
        _raise(late)


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _incoming_file(path: str) -> IncomingFile:
    """A sent file as the bot is handed it; a path that is gone (a test's made-up name) has
    size 0."""
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    return IncomingFile(_file_name(path), size, path)


def _raise(fault: _Fault | None) -> None:
    if fault is not None:
        raise fault.error
