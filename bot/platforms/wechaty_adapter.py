"""The Wechaty adapter: ``matrix.platform.Platform`` on a real ``wechaty.Wechaty`` bot.

One ``WechatyPlatform`` is one WeChat account behind a puppet: a puppet service over gRPC in
production (``WechatyPlatform.for_service``), the in-process puppet over the simulated WeChat in
tests. ``run()`` connects, logs in and serves until ``stop()``; when the connection drops it
builds a fresh bot and reconnects, waiting longer after each failure (exponential backoff with
jitter, reset by a successful login).

Presence (``matrix.platform.Presence``): OFFLINE until the first login and whenever the
connection is down, ONLINE once logged in, LOGGED_OUT when the service says the account itself
left (not when we stop); every change reaches ``on_presence`` callbacks, and while not ONLINE
every call raises ``Disconnected`` (nothing was tried). ``scan`` events (a QR code a person must
scan to log in) reach ``on_scan`` callbacks. Two clients on one puppet service take the session
from each other every few seconds; ``run()`` recognises that pattern (sessions ended by the
service shortly after each login, again and again) and stops with ``SessionTaken`` instead of
fighting: a newcomer after ``TAKEN_NEWCOMER`` such sessions, a process that had served steadily
before after ``TAKEN_INCUMBENT`` (by then the newcomer has usually given up).

Incoming texts in rooms and room events (join, leave, topic) reach the callbacks registered with
``on_message`` / ``on_room_event`` (the same API as ``bot.platforms.simulated.SimulatedAccount``) in
arrival order, each in a task of its own so that one slow command holds up no other. The account's own messages, which the service echoes back, go only to
``on_echo`` callbacks (the relay confirms its sends by them), with ``is_self`` set.

What python-wechaty 0.10.7 gets wrong and this works around:

- ``Room.topic()`` / ``Room.has()`` read a payload cached at first load; ``ready(force_sync=True)``
  returns early on a loaded room, so after a change they stay stale. We drop the cached payload
  before reading (``_fresh``).
- ``Wechaty.start()`` swallows connection errors, sleeps 60 s and restarts recursively; we drive
  the start-up steps ourselves and own the retry loop.
- ``Room.topic(new)`` logs and swallows failures; we turn a ``None`` result into an error, and
  read the topic back because puppet services of the Node 1.x line ignore the call silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger

from bot.platforms.wechaty_compat import (
    Contact,
    FileBox,
    GRPCError,
    Message,
    MessageType,
    Puppet,
    PuppetOptions,
    PuppetService,
    ScanStatus,
    StreamTerminatedError,
    Wechaty,
    WechatyError,
    WechatyPuppetError,
    new_bot,
)
from bot.platforms.wechaty_compat import Room as WechatyRoom
from matrix.errors import MatrixError
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
    Room,
    RoomEvent,
    RoomEventKind,
)

MessageHandler = Callable[[IncomingMessage], Awaitable[None]]
EventHandler = Callable[[RoomEvent], Awaitable[None]]
LoginHandler = Callable[[str], Awaitable[None]]
ScanHandler = Callable[[str, ScanStatus], Awaitable[None]]
Chore = Callable[[], Awaitable[Any]]
PuppetFactory = Callable[[], Puppet]

# gRPC statuses worth retrying later (grpclib.const.Status values)
_RETRYABLE_GRPC = {4, 8, 14}  # DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE
# A session the service ends this soon after its login was taken by another client
TAKEN_WITHIN = 10.0
TAKEN_NEWCOMER = 3  # such sessions in a row make a process that never served steadily stop
TAKEN_INCUMBENT = 8  # … and one that did


class WechatyConfigError(MatrixError):
    """The puppet service settings are missing or malformed."""


class SessionTaken(MatrixError):
    """Another client uses the same puppet service (or the same WeChat account)."""

    def __init__(self, endpoint: str, sessions: int) -> None:
        super().__init__(
            f"另一个程序正在使用同一个 Wechaty 服务{f'（{endpoint}）' if endpoint else ''}"
            f"或同一个微信账号：连续 {sessions} 次登录后几秒内就被挤下线，两边在互相抢登录",
            fix="同一个服务、同一个账号只能运行一个 qunmatrix run：请停掉另一个进程"
            "（或给它配置自己的服务和账号）后再启动本进程",
        )


@dataclass(frozen=True)
class Backoff:
    """How long to wait between reconnection attempts: ``initial`` seconds, times ``factor``
    after each failure, at most ``maximum``, each wait varied by ±``jitter``.

    >>> b = Backoff(initial=1, factor=2, maximum=5, jitter=0)
    >>> [b.delay(n) for n in range(5)]
    [1.0, 2.0, 4.0, 5.0, 5.0]
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.2

    def delay(self, failures: int) -> float:
        base = min(self.maximum, self.initial * self.factor**failures)
        return base * (1 + random.uniform(-self.jitter, self.jitter))


class WechatyPlatform:
    """One WeChat account through python-wechaty; implements ``matrix.platform.Platform``."""

    def __init__(
        self,
        puppet_factory: PuppetFactory,
        *,
        name: str = "qunmatrix",
        port: int = 0,
        backoff: Backoff | None = None,
        send_interval: float = 1.0,
        keepalive: float = 60.0,
        on_error: Callable[[BaseException], None] | None = None,
        files_dir: str = "",
    ) -> None:
        """``files_dir``: where files and images members send are saved for the bot (for
        ``#通知 … 附件``; empty: a folder in the system's temporary directory).
        ``puppet_factory`` builds a fresh puppet for every connection attempt. ``port`` is the
        local port Wechaty probes at login (0: a free one). ``send_interval`` paces this account's
        messages (seconds between sends, with jitter) because WeChat restricts accounts that send
        too fast. ``keepalive`` is how often the connection is probed with ``ding`` (and how long
        an answer may take, at most 10 s). ``on_error`` also hears every exception a callback
        raised (tests fail on it)."""
        self._puppet_factory = puppet_factory
        self._name = name
        self._port = port
        self.backoff = backoff or Backoff()
        self.send_interval = send_interval
        self.keepalive = keepalive
        self._on_error = on_error
        self.files_dir = Path(files_dir or Path(tempfile.gettempdir()) / "qunmatrix-incoming")
        self._swept_at = float("-inf")
        self._message_handlers: list[MessageHandler] = []
        self._event_handlers: list[EventHandler] = []
        self._echo_handlers: list[MessageHandler] = []
        self._login_handlers: list[LoginHandler] = []
        self._presence_handlers: list[PresenceHandler] = []
        self._scan_handlers: list[ScanHandler] = []
        self._presence = Presence.OFFLINE
        self._login_at: float | None = None  # monotonic time of this connection's login
        self._steady = False  # a session of this process lasted beyond TAKEN_WITHIN
        self.endpoint = ""  # for messages only
        self._bot: Wechaty | None = None
        self._account_id = ""
        self._logged_in = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inbox: asyncio.Queue[IncomingMessage | RoomEvent | Chore] = asyncio.Queue()
        self._handling: set[asyncio.Task[None]] = set()  # events being handled right now
        self._last_send = 0.0
        self._send_lock = asyncio.Lock()
        self.connections = 0  # how many times a bot logged in (1 + reconnects)

    @classmethod
    def for_service(cls, endpoint: str, token: str, **options: Any) -> WechatyPlatform:
        """An adapter that talks gRPC to the puppet service at ``endpoint`` (``host:port``, no
        TLS) with ``token``."""
        if not endpoint or ":" not in endpoint:
            raise WechatyConfigError(
                f"Wechaty 服务地址无效：{endpoint or '（未填写）'}",
                where="config.toml [wechaty] endpoint",
                fix="填写 puppet 服务的 主机:端口，例如 127.0.0.1:8788（不填会去互联网查找服务，本机无法访问）",
            )
        if not token:
            raise WechatyConfigError(
                "未填写 Wechaty 服务令牌",
                where="config.toml [wechaty] token",
                fix="填写启动 puppet 服务时用的令牌，例如 insecure_qunmatrix",
            )

        def puppet() -> Puppet:
            puppet_options = PuppetOptions()
            puppet_options.end_point = endpoint
            puppet_options.token = token
            return PuppetService(puppet_options)

        platform = cls(puppet, **options)
        platform.endpoint = endpoint
        return platform

    # --- subscriptions (same API as SimulatedAccount) ------------------------------------------

    def on_message(self, handler: MessageHandler) -> None:
        """Call ``handler`` for every text said in a room by someone other than this account."""
        self._message_handlers.append(handler)

    def on_room_event(self, handler: EventHandler) -> None:
        """Call ``handler`` for joins, leaves and topic changes in this account's rooms."""
        self._event_handlers.append(handler)

    def on_echo(self, handler: MessageHandler) -> None:
        """Call ``handler`` with each of this account's own room texts as the service echoes it
        back (``is_self=True``; a text sent with mentions comes back with the @names before it)."""
        self._echo_handlers.append(handler)

    def on_login(self, handler: LoginHandler) -> None:
        """Call ``handler`` with the account id at every login (the first, and after each
        reconnect), before any message of that connection is handed on."""
        self._login_handlers.append(handler)

    def on_presence(self, handler: PresenceHandler) -> None:
        """Call ``handler`` with every change of ``presence``."""
        self._presence_handlers.append(handler)

    def on_scan(self, handler: ScanHandler) -> None:
        """Call ``handler`` with the QR code text and status of every ``scan`` event: the
        account must be logged in by a person scanning it with WeChat on their phone."""
        self._scan_handlers.append(handler)

    @property
    def presence(self) -> Presence:
        return self._presence

    async def _set_presence(self, presence: Presence) -> None:
        if presence is self._presence:
            return
        self._presence = presence
        for handler in self._presence_handlers:
            await self._guard("presence", handler, presence)

    # --- running ------------------------------------------------------------------------------

    @property
    def account_id(self) -> str:
        if not self._account_id:
            raise PlatformError("微信账号尚未登录", retryable=True)
        return self._account_id

    @property
    def last_account_id(self) -> str:
        """The account id of the last login ("" before the first), also while logged out."""
        return self._account_id

    @property
    def connected(self) -> bool:
        return self._bot is not None and self._logged_in.is_set()

    async def wait_logged_in(self, timeout: float | None = None) -> str:
        """Wait until the account is logged in; return its contact id."""
        await asyncio.wait_for(self._logged_in.wait(), timeout)
        return self._account_id

    async def run(self) -> None:
        """Connect, serve and reconnect until ``stop()``; raise ``SessionTaken`` when another
        client keeps taking the session."""
        self._stopping.clear()
        worker = asyncio.create_task(self._deliver(), name="wechaty-deliver")
        failures = 0
        taken = 0
        try:
            while not self._stopping.is_set():
                logins_before = self.connections
                reason, lasted = await self._serve_once()
                if self._stopping.is_set():
                    break
                taken = taken + 1 if lasted is not None and lasted < TAKEN_WITHIN else 0
                if lasted is not None and lasted >= TAKEN_WITHIN:
                    self._steady = True
                if taken >= (TAKEN_INCUMBENT if self._steady else TAKEN_NEWCOMER):
                    raise SessionTaken(self.endpoint, taken)
                failures = 0 if self.connections > logins_before else failures + 1
                delay = self.backoff.delay(failures)
                logger.warning("Wechaty 连接断开（{}），{:.1f} 秒后重连", reason, delay)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            for task in list(self._handling):
                task.cancel()
            if self._handling:
                await asyncio.gather(*self._handling, return_exceptions=True)

    async def stop(self) -> None:
        """Stop serving; ``run()`` returns once the current connection is closed."""
        self._stopping.set()

    @contextlib.asynccontextmanager
    async def running(self, login_timeout: float = 30.0) -> AsyncIterator[WechatyPlatform]:
        """``run()`` in the background for the ``async with`` body, logged in on entry."""
        task = asyncio.create_task(self.run(), name="wechaty-run")
        try:
            login = asyncio.create_task(self.wait_logged_in())
            await asyncio.wait({task, login}, timeout=login_timeout, return_when="FIRST_COMPLETED")
            if not login.done():
                login.cancel()
                if task.done():
                    task.result()  # run() failed: raise its error
                raise PlatformError(f"{login_timeout:.0f} 秒内未能登录微信账号", retryable=True)
            yield self
        finally:
            await self.stop()
            await task

    async def _serve_once(self) -> tuple[str, float | None]:
        """One connection: build a bot, start its puppet, serve until the event stream ends, the
        keepalive probe fails or ``stop()``; return why it ended and, when the service itself
        ended a logged-in session, how long that session lasted (seconds)."""
        bot = new_bot(self._puppet_factory(), name=self._name, port=self._port)
        self._wire(bot)
        self._login_at = None
        try:
            await bot.init_puppet()
            await bot.init_puppet_event_bridge(bot.puppet)
        except Exception as exc:
            await self._close(bot)
            return f"{type(exc).__name__}: {exc}", None
        # the session starts when the service says so, not once Wechaty has looked up the
        # contact: a session taken back within that lookup must still count as taken
        bot.puppet.on("login", self._session_began)
        self._bot = bot
        serving = asyncio.create_task(bot.puppet.start(), name="wechaty-puppet")
        probing = asyncio.create_task(self._probe(bot), name="wechaty-keepalive")
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {serving, probing, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            if serving in done:
                failure = serving.exception()
                if failure:
                    return f"{type(failure).__name__}: {failure}", None
                lasted = None if self._login_at is None else time.monotonic() - self._login_at
                return "事件流结束", lasted
            if probing in done:
                return "心跳无响应", None
            return "已停止", None
        finally:
            self._bot = None
            self._logged_in.clear()
            if self._presence is Presence.ONLINE:
                await self._set_presence(Presence.OFFLINE)
            for task in (probing, stopping):
                task.cancel()
            await self._close(bot)
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await serving

    def _session_began(self, *_: Any) -> None:
        # a plain function: the emitter calls it as the event arrives, before the stream can end
        if self._login_at is None:  # a second login event in one stream starts no new session
            self._login_at = time.monotonic()

    async def _probe(self, bot: Wechaty) -> None:
        """Return when the service stops answering ``ding`` (a silently dead connection)."""
        while True:
            await asyncio.sleep(self.keepalive)
            if not self._logged_in.is_set():
                continue
            try:
                await asyncio.wait_for(
                    bot.puppet.ding("qunmatrix"), timeout=min(10, self.keepalive)
                )
            except Exception as exc:
                logger.warning("Wechaty 心跳失败：{}: {}", type(exc).__name__, exc)
                return

    async def _close(self, bot: Wechaty) -> None:
        puppet = bot._puppet
        if puppet is not None:
            try:
                await asyncio.wait_for(puppet.stop(), timeout=5)
            except Exception as exc:
                logger.debug("puppet stop failed: {}: {}", type(exc).__name__, exc)
            channel = getattr(puppet, "channel", None)
            if channel is not None:
                channel.close()
                puppet.channel = None
        scheduler = bot._plugin_manager.scheduler
        if scheduler.running:
            scheduler.shutdown(wait=False)

    def _wire(self, bot: Wechaty) -> None:
        async def on_login(contact: Contact) -> None:
            if self._bot is not bot:  # the session ended while Wechaty looked the contact up
                logger.debug("login of an ended session ignored: {}", contact.contact_id)
                return
            self._account_id = contact.contact_id
            self.connections += 1
            for handler in self._login_handlers:
                await self._guard("login", handler, contact.contact_id)
            if self._bot is not bot:  # … or while the login handlers ran
                return
            self._logged_in.set()
            logger.info("微信账号已登录：{}（{}）", contact.name, contact.contact_id)
            await self._set_presence(Presence.ONLINE)

        async def on_logout(contact: Contact, *_: Any) -> None:
            self._logged_in.clear()
            self._login_at = None  # a logout is no session taken by another client
            if self._stopping.is_set():
                logger.info("微信账号已退出登录：{}（本程序停止）", contact.contact_id)
                await self._set_presence(Presence.OFFLINE)
            else:
                logger.info("微信账号已退出登录：{}，需要重新扫码登录", contact.contact_id)
                await self._set_presence(Presence.LOGGED_OUT)

        async def on_scan(qr_code: str, status: ScanStatus, data: str | None = None) -> None:
            for handler in self._scan_handlers:
                await self._guard("scan", handler, qr_code, status)

        async def on_message(msg: Message) -> None:
            await self._guard("message", self._on_wechaty_message, msg)

        async def on_join(
            room: WechatyRoom, invitees: list[Contact], inviter: Contact, date: datetime
        ) -> None:
            joined = tuple(c.contact_id for c in invitees)
            event = RoomEvent(
                RoomEventKind.JOIN, room.room_id, joined, inviter_id=inviter.contact_id
            )
            await self._guard("room-join", self._on_room_change, room, event)
            if self._account_id in joined:  # the account itself was brought in
                arrived = RoomEvent(
                    RoomEventKind.ARRIVED,
                    room.room_id,
                    (self._account_id,),
                    inviter_id=inviter.contact_id,
                )
                await self._guard("room-join", self._on_room_change, room, arrived)

        async def on_invite(invitation: Any) -> None:
            # a room above 40 members sends an invitation to accept: an office adopting its
            # big group invites the bot so; it joins (and hears ARRIVED), and stays quiet there
            # until the room is adopted
            await self._guard("room-invite", _accept, invitation)

        async def _accept(invitation: Any) -> None:
            logger.info("收到入群邀请，接受：{}", invitation)
            await invitation.accept()

        async def on_leave(
            room: WechatyRoom, leavers: list[Contact], remover: Contact, date: datetime
        ) -> None:
            event = RoomEvent(
                RoomEventKind.LEAVE,
                room.room_id,
                tuple(c.contact_id for c in leavers),
                extra={"remover_id": remover.contact_id},
            )
            await self._guard("room-leave", self._on_room_change, room, event)

        async def on_topic(
            room: WechatyRoom, new: str, old: str, changer: Contact, date: datetime
        ) -> None:
            event = RoomEvent(
                RoomEventKind.TOPIC,
                room.room_id,
                (changer.contact_id,),
                topic=new,
                extra={"old_topic": old or ""},
            )
            await self._guard("room-topic", self._on_room_change, room, event)

        bot.on("login", on_login)
        bot.on("logout", on_logout)
        bot.on("scan", on_scan)
        bot.on("message", on_message)
        bot.on("room-join", on_join)
        bot.on("room-invite", on_invite)
        bot.on("room-leave", on_leave)
        bot.on("room-topic", on_topic)

    async def _guard(self, what: str, func: Callable[..., Awaitable[None]], *args: Any) -> None:
        # pyee runs listeners as tasks and would only log a bare "internal error": log it here
        try:
            await func(*args)
        except Exception as exc:
            logger.opt(exception=exc).error("Wechaty {} 事件处理失败", what)
            if self._on_error:
                self._on_error(exc)

    async def _on_wechaty_message(self, msg: Message) -> None:
        room = msg.room()
        if room is None:
            return
        if msg.type() in _FILE_TYPES and not msg.is_self():
            await self._on_file(msg, room)
            return
        if msg.type() != MessageType.MESSAGE_TYPE_TEXT:
            return
        if msg.is_self():
            if self._echo_handlers:
                self._inbox.put_nowait(
                    IncomingMessage(
                        msg.message_id, room.room_id, self._account_id, msg.text(), is_self=True
                    )
                )
            return
        talker = msg.talker()
        mentions = tuple(msg.payload.mention_ids or ())
        text = msg.text()
        if self._account_id in mentions:
            text = without_leading_mentions(text)
        self._inbox.put_nowait(
            IncomingMessage(
                message_id=msg.message_id,
                room_id=room.room_id,
                contact_id=talker.contact_id,
                text=text,
                sender_name=talker.name,
                mentions=mentions,
            )
        )

    async def _on_file(self, msg: Message, room: WechatyRoom) -> None:
        """A file or image a member sent: saved under ``files_dir`` (``Message.to_file_box``)
        and handed on as the port's ``IncomingFile``; one that cannot be fetched is only
        logged (a person can send it again)."""
        talker = msg.talker()
        self._sweep_files()
        try:
            with warnings.catch_warnings():  # FileBox's mimeType calls the deprecated logger.warn
                warnings.simplefilter("ignore", DeprecationWarning)
                box = await msg.to_file_box()
                name = _file_name(box.name or msg.payload.filename or "文件")
                folder = self.files_dir / _file_name(msg.message_id)
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / name
                await box.to_file(str(path), overwrite=True)
        except Exception as exc:
            logger.opt(exception=exc).warning("收不到群成员发来的文件：{}", msg.message_id)
            return
        self._inbox.put_nowait(
            IncomingMessage(
                message_id=msg.message_id,
                room_id=room.room_id,
                contact_id=talker.contact_id,
                text=f"[文件] {name}",
                sender_name=talker.name,
                file=IncomingFile(name, path.stat().st_size, str(path)),
            )
        )

    def _sweep_files(self) -> None:
        """Keep ``files_dir`` bounded: what members sent more than ``FILES_KEEP_SECONDS`` ago
        goes (a notice that took a file holds its own copy); looked at every ten minutes."""
        now = time.time()
        if now - self._swept_at < 600 or not self.files_dir.is_dir():
            return
        self._swept_at = now
        for folder in self.files_dir.iterdir():
            try:
                if now - folder.stat().st_mtime > FILES_KEEP_SECONDS:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue

    async def _on_room_change(self, room: WechatyRoom, event: RoomEvent) -> None:
        _forget(room)
        self._inbox.put_nowait(event)

    async def _deliver(self) -> None:
        """Hand events on in arrival order without waiting for one to be handled before the
        next: each message or room event gets a task of its own (the dispatcher keeps the
        order within a room, and a national #建群 holds up nobody else). Echoes are handed on
        inline, in order (they only confirm sends, quickly). ``task_done`` marks an event
        handled only once its callbacks returned, so ``drained()`` waits for them."""
        while True:
            item = await self._inbox.get()
            calls: list[Chore]
            if isinstance(item, IncomingMessage):
                handlers = self._echo_handlers if item.is_self else self._message_handlers
                calls = [functools.partial(h, item) for h in handlers]
            elif isinstance(item, RoomEvent):
                calls = [functools.partial(h, item) for h in self._event_handlers]
            else:
                calls = [item]
            if isinstance(item, IncomingMessage) and item.is_self:
                await self._hand_on(item, calls)
                continue
            task = asyncio.create_task(self._hand_on(item, calls), name="wechaty-event")
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _hand_on(self, item: object, calls: list[Chore]) -> None:
        try:
            for call in calls:
                try:
                    await call()
                except Exception as exc:
                    logger.opt(exception=exc).error("处理 {} 失败", item)
                    if self._on_error:
                        self._on_error(exc)
        finally:
            self._inbox.task_done()

    def in_turn(self, chore: Chore) -> None:
        """Run ``chore()`` once the events received so far have been handed on (e.g. the
        dispatcher's tick; it may run while they are still being handled: the outbox never
        sends one reply twice)."""
        self._inbox.put_nowait(chore)

    async def drained(self) -> None:
        """Wait until every event received so far has been handled."""
        await self._inbox.join()

    # --- Platform -----------------------------------------------------------------------------

    @property
    def bot(self) -> Wechaty:
        if self._bot is None or not self._logged_in.is_set():
            raise Disconnected()
        return self._bot

    async def list_rooms(self) -> list[Room]:
        bot = self.bot
        with _translate("读取群列表"):
            for room in list(bot.Room._pool.values()):
                _forget(room)
            rooms = await bot.Room.find_all()
        payloads = [await _payload(r) for r in rooms]
        return [
            Room(r.room_id, p.topic, len(p.member_ids))
            for r, p in zip(rooms, payloads, strict=True)
        ]

    async def list_members(self, room_id: str) -> list[Member]:
        bot = self.bot
        with _translate("读取群成员"):
            room = await _fresh(bot.Room.load(room_id))
            # rooms are shared objects and events are handled concurrently: another task may
            # drop the cached payload while this one awaits the members
            payload = room.payload
            contacts = await room.member_list()
            gate = asyncio.Semaphore(20)

            async def nickname(contact: Contact) -> str:
                async with gate:
                    try:
                        return (await room.alias(contact)) or ""
                    except Exception:
                        return ""

            nicknames = await asyncio.gather(*(nickname(c) for c in contacts))
        admins = set(payload.admin_ids or ())
        owner = payload.owner_id
        return [
            Member(c.contact_id, c.name, nick, c.contact_id in admins, c.contact_id == owner)
            for c, nick in zip(contacts, nicknames, strict=True)
        ]

    async def create_room(self, topic: str, contact_ids: list[str]) -> str:
        bot = self.bot
        others = [cid for cid in dict.fromkeys(contact_ids) if cid != self._account_id]
        if len(others) < 2:
            raise PlatformError("建群至少需要机器人以外的两个人")
        with _translate("建群"):
            contacts = [bot.Contact.load(cid) for cid in others]
            for contact in contacts:
                await contact.ready()
            room = await bot.Room.create(contacts, topic)
        return str(room.room_id)

    async def add_member(self, room_id: str, contact_id: str) -> AddOutcome:
        bot = self.bot
        with _translate("拉人入群"):
            room = bot.Room.load(room_id)
            contact = bot.Contact.load(contact_id)
            await contact.ready()
            await room.add(contact)
            members = await room.member_list()
        # rooms above 40 members only send an invitation the person must accept
        if any(m.contact_id == contact_id for m in members):
            return AddOutcome.ADDED
        return AddOutcome.INVITED

    async def remove_member(self, room_id: str, contact_id: str) -> None:
        bot = self.bot
        with _translate("移出群"):
            room = bot.Room.load(room_id)
            await room.delete(bot.Contact.load(contact_id))
            _forget(room)

    async def set_admin(self, room_id: str, contact_id: str) -> None:
        raise NotSupported(
            "微信机器人接口不能设置群管理员：请群主在手机微信里打开该群，"
            "点“群管理 → 群管理员”手动添加"
        )

    async def set_topic(self, room_id: str, topic: str) -> None:
        bot = self.bot
        with _translate("修改群名"):
            room = bot.Room.load(room_id)
            changed = await room.topic(topic)
            if changed is None:
                raise PlatformError(f"修改群名为“{topic}”失败", retryable=True)
            # puppet services of the 1.x line accept the call and silently ignore it
            for wait in (0.0, 1.0):
                await asyncio.sleep(wait)
                if (await _fresh(room)).payload.topic == topic:
                    return
        raise NotSupported(
            f"微信服务没有执行改群名（仍是“{(await _payload(room)).topic}”）："
            f"请群主在手机微信里把群名改为“{topic}”"
        )

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        bot = self.bot
        async with self._paced():
            with _translate("发送消息"):
                msg = await bot.Room.load(room_id).say(text, mention_ids=list(mentions) or None)
        if msg is None:
            raise PlatformError("消息发送失败", retryable=True)
        return str(msg.message_id)

    async def send_file(self, room_id: str, path: str) -> str:
        bot = self.bot
        if not Path(path).is_file():
            raise PlatformError(f"找不到要发送的文件 {path}")
        async with self._paced():
            with _translate("发送文件"), warnings.catch_warnings():
                # FileBox's own mimeType property calls the deprecated logger.warn
                warnings.simplefilter("ignore", DeprecationWarning)
                msg = await bot.Room.load(room_id).say(FileBox.from_file(path))
        if msg is None:
            raise PlatformError("文件发送失败", retryable=True)
        return str(msg.message_id)

    async def set_announcement(self, room_id: str, text: str) -> None:
        """Wechaty's ``Room.announce``, which WeChat allows the owner only: an account that is
        not the room's owner, or a puppet without the call, is ``NotSupported``."""
        room = self.bot.Room.load(room_id)
        with _translate("设置群公告"):
            owner = (await _payload(room)).owner_id
        if owner != self.account_id:
            raise NotSupported("机器人不是该群群主，不能设置群公告")
        try:
            with _translate("设置群公告"):
                await room.announce(text)
        except NotImplementedError:
            raise NotSupported("当前微信服务不支持设置群公告") from None

    async def send_direct(self, contact_id: str, text: str) -> str:
        bot = self.bot
        async with self._paced():
            with _translate("发送私聊消息"):
                msg = await bot.Contact.load(contact_id).say(text)
        if msg is None:
            raise PlatformError("私聊消息发送失败", retryable=True)
        return str(msg.message_id)

    async def recall(self, message_id: str) -> None:
        """Wechaty's ``Message.recall``; a puppet that cannot (or a message too old) says so
        with False or an error, which is ``NotSupported``: the withdrawal notice still goes."""
        bot = self.bot
        with _translate("撤回消息"):
            done = bool(await bot.Message.load(message_id).recall())
        if not done:
            raise NotSupported("该消息无法撤回")

    @contextlib.asynccontextmanager
    async def _paced(self) -> Any:
        """At most one send per ``send_interval`` (±30 %) for this account."""
        async with self._send_lock:
            wait = self._last_send + self.send_interval * random.uniform(0.7, 1.3)
            delay = wait - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                yield
            finally:
                self._last_send = time.monotonic()


def without_leading_mentions(text: str) -> str:
    """The text of a message that @-mentions the bot, without the leading mentions WeChat puts
    in it (each "@name" ends with U+2005), so that "@群矩阵助手 #帮助" reads as "#帮助".

    >>> without_leading_mentions("@群矩阵助手\u2005#帮助")
    '#帮助'
    >>> without_leading_mentions("@张三\u2005@群矩阵助手\u2005 #同意 1")
    '#同意 1'
    >>> without_leading_mentions("#通知 明天 @ 10 点开会")
    '#通知 明天 @ 10 点开会'
    """
    while text.startswith("@") and "\u2005" in text:
        text = text.split("\u2005", 1)[1].lstrip()
    return text


def _forget(room: WechatyRoom) -> None:
    """Drop the room's cached payload so the next read asks the puppet (see module doc)."""
    room._payload = None


_FILE_TYPES = (MessageType.MESSAGE_TYPE_ATTACHMENT, MessageType.MESSAGE_TYPE_IMAGE)
FILES_KEEP_SECONDS = 24 * 3600.0  # as long as ``bot.chat.recent_files`` remembers a file


def _file_name(name: str) -> str:
    """A name safe as one path part: no folders, nothing hidden."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    return base[:120] or "文件"


async def _payload(room: WechatyRoom) -> Any:
    """The room's payload, loaded again if another task dropped it meanwhile."""
    while room._payload is None:
        await room.ready()
    return room._payload


async def _fresh(room: WechatyRoom) -> WechatyRoom:
    _forget(room)
    await room.ready()
    return room


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    """Turn wechaty / gRPC / connection failures into ``PlatformError`` saying if a retry helps."""
    try:
        yield
    except PlatformError:
        raise
    except ConnectionRefusedError as exc:
        # the service is not there: the call never reached it, so nothing can have happened
        raise Disconnected(f"{what}失败：连不上微信服务，正在重连") from exc
    except (TimeoutError, StreamTerminatedError, ConnectionError, OSError) as exc:
        raise PlatformError(f"{what}失败：与微信服务的连接中断", retryable=True) from exc
    except GRPCError as exc:
        retry = int(exc.status.value) in _RETRYABLE_GRPC
        raise PlatformError(
            f"{what}失败：{exc.message or exc.status.name}", retryable=retry
        ) from exc
    except (WechatyError, WechatyPuppetError) as exc:
        # Room.create re-raises any failure as WechatyOperationError: keep the puppet's own
        # PlatformError (e.g. RateLimited) when there is one
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, PlatformError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from exc
        raise PlatformError(f"{what}失败：{exc}") from exc
