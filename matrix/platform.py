"""The platform port: the few things the core asks of WeChat, for one bot account.

Two implementations live in ``bot/``: the Wechaty adapter (real WeChat over a puppet service) and
the in-process simulated WeChat. Nothing in ``matrix/`` knows which one is running. Methods are
``async`` because the real client is; every failure is a ``PlatformError`` that says whether
trying again later can help.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable


class PlatformError(Exception):
    """A platform call failed. ``retryable`` failures (rate limits, a dropped connection) may
    succeed later; the others (no such room, group full) will not."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class RateLimited(PlatformError):
    """The account is sending or inviting too fast; wait ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message, retryable=True)
        self.retry_after = retry_after


class Disconnected(PlatformError):
    """The account's platform is not connected: nothing was attempted, so nothing can have
    reached the room. Not a failure of the call: wait for ``Presence.ONLINE`` and try again."""

    def __init__(self, message: str = "与微信服务的连接已断开，正在重连，请稍后再试") -> None:
        super().__init__(message, retryable=True)


class Presence(Enum):
    """Whether an account can act right now."""

    ONLINE = "online"  # connected and logged in
    OFFLINE = "offline"  # the connection dropped; the adapter is reconnecting by itself
    LOGGED_OUT = "logged_out"  # the account itself left (logged out on the phone, kicked): a
    # person must log it in again (scan the QR code)


PresenceHandler = Callable[[Presence], Awaitable[None]]


class NotSupported(PlatformError):
    """This platform cannot do that (e.g. a puppet that cannot appoint admins): a person must."""


@dataclass(frozen=True)
class Member:
    """Someone in a room as the platform reports them. ``contact_id`` is the stable identity;
    ``name`` and ``nickname`` (群昵称) are for display and format checks only."""

    contact_id: str
    name: str = ""
    nickname: str = ""
    is_admin: bool = False
    is_owner: bool = False
    wechat_id: str = ""  # the 微信号 when the platform shows it; binds the contact to the roster


@dataclass(frozen=True)
class Room:
    room_id: str
    topic: str
    member_count: int = 0


class AddOutcome(Enum):
    ADDED = "added"  # in the room now
    INVITED = "invited"  # an invitation was sent (rooms above 40 members); they must accept


@dataclass(frozen=True)
class IncomingFile:
    """A file or image a member sent, as the platform saved it for the bot: ``path`` is a local
    file the bot may read (the adapter saved it under its configured directory)."""

    name: str  # as the member sent it, e.g. 通知.pdf
    size: int  # bytes
    path: str


@dataclass(frozen=True)
class IncomingMessage:
    """A text (or a file) said in a room, as handed to the bot."""

    message_id: str
    room_id: str
    contact_id: str
    text: str
    sender_name: str = ""
    mentions: tuple[str, ...] = ()
    is_self: bool = False  # the platform's echo of the bot's own message
    file: IncomingFile | None = None  # the message is a file or image (``text`` then reads
    # ``[文件] name``)
    quoted: str = ""  # the id of the message this one quotes (引用), where the platform says


class RoomEventKind(Enum):
    JOIN = "join"
    LEAVE = "leave"
    TOPIC = "topic"
    ARRIVED = "arrived"  # this account itself was brought into the room (``inviter_id``: by whom)


@dataclass(frozen=True)
class RoomEvent:
    kind: RoomEventKind
    room_id: str
    contact_ids: tuple[str, ...] = ()
    topic: str = ""
    inviter_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Platform(Protocol):
    """One bot account on a WeChat-like platform."""

    @property
    def account_id(self) -> str:
        """The bot account's own stable contact id."""
        ...

    @property
    def presence(self) -> Presence:
        """Whether the account can act now; while it is not ``ONLINE`` every call raises
        ``Disconnected``."""
        ...

    def on_presence(self, handler: PresenceHandler) -> None:
        """Call ``handler`` with every change of ``presence``."""
        ...

    async def list_rooms(self) -> list[Room]:
        """Rooms this account is in."""
        ...

    async def list_members(self, room_id: str) -> list[Member]:
        """The room's current members, fresh from the platform."""
        ...

    async def create_room(self, topic: str, contact_ids: list[str]) -> str:
        """Create a room with these members (the account is owner); return its id."""
        ...

    async def add_member(self, room_id: str, contact_id: str) -> AddOutcome: ...

    async def remove_member(self, room_id: str, contact_id: str) -> None: ...

    async def set_admin(self, room_id: str, contact_id: str) -> None:
        """Appoint a room admin; may raise ``NotSupported``."""
        ...

    async def set_topic(self, room_id: str, topic: str) -> None: ...

    async def send_text(self, room_id: str, text: str, mentions: tuple[str, ...] = ()) -> str:
        """Say ``text`` in the room, @-mentioning ``mentions``; return the message id."""
        ...

    async def send_file(self, room_id: str, path: str) -> str:
        """Send a file (a summary table, a notice's attachment) to the room; return the message
        id."""
        ...

    async def set_announcement(self, room_id: str, text: str) -> None:
        """Set the room's 群公告; ``NotSupported`` where the account is not the room's owner
        (or admin) or the platform cannot."""
        ...

    async def send_direct(self, contact_id: str, text: str) -> str:
        """Say ``text`` to one person privately (私聊: someone who shares a room with the
        account); return the message id."""
        ...

    async def recall(self, message_id: str) -> None:
        """Take back a message this account sent (撤回); ``NotSupported`` where the platform
        cannot (or no longer can: WeChat allows it for a short while only)."""
        ...
