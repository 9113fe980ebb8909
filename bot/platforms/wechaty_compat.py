"""python-wechaty 0.10.7 on Python 3.11: the one module that imports it.

Why a shim: wechaty 0.10.7 (the newest release) targets Python 3.7-3.9.

- ``WechatyOptions`` uses a ``PuppetOptions()`` instance as a dataclass field default. Python 3.11
  rejects any unhashable default as "mutable", and ``PuppetOptions`` is an ``eq=True`` dataclass
  (so ``__hash__`` is None). Giving it identity hashing before ``import wechaty`` lets the module
  load; nothing hashes these options, so behaviour is unchanged.
- ``wechaty.config`` creates ``$CACHE_DIR`` (default ``./.wechaty``) at import time and the plugin
  scheduler would keep ``job.db`` there: without ``CACHE_DIR`` every working directory the bot or
  the tests run in gets a stray ``.wechaty/``. We point it at a temporary directory and give every
  bot an in-memory scheduler (``new_scheduler``), so nothing is written at all.
- On a ``scan`` event Wechaty prints its own QR code to stdout and logs a URL in English; the
  adapter shows the code itself (``bot.platforms.login_qr``: terminal, PNG, URL, in Chinese), so Wechaty's
  ``qr_terminal`` is silenced. Wechaty then hands the event to its plugin manager, which asserts
  that the status is a ``str`` (it is always a ``ScanStatus``) and so fails every scan with an
  "internal error"; qunmatrix uses no plugins, so the plugin manager skips ``scan``.
- Every wechaty logger gets its own stderr handler and ``propagate=False``; ``quiet_loggers``
  sends them to the root logger instead, which ``bot.logs`` forwards to loguru, at WARNING (at
  INFO wechaty logs the text of every message).

The version pins (wechaty, wechaty-puppet, wechaty-puppet-service, pyee<9, urllib3<2) live in
pyproject.toml. Everything else in qunmatrix imports wechaty names from here.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import warnings

os.environ.setdefault("CACHE_DIR", os.path.join(tempfile.gettempdir(), "qunmatrix-wechaty"))

from wechaty_puppet.schemas.puppet import PuppetOptions

PuppetOptions.__hash__ = object.__hash__

with warnings.catch_warnings():
    # wechaty.plugin imports telnetlib (deprecated in 3.11) to probe ports; nothing we can change
    warnings.simplefilter("ignore", DeprecationWarning)

    import wechaty.wechaty as _wechaty_module
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from grpclib.exceptions import GRPCError, StreamTerminatedError
    from pyee import AsyncIOEventEmitter
    from wechaty import Contact, Message, Room, Wechaty, WechatyOptions
    from wechaty.exceptions import WechatyError
    from wechaty.plugin import WechatyPluginManager
    from wechaty_puppet import (
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
        RoomMemberPayload,
        RoomPayload,
        RoomQueryFilter,
    )
    from wechaty_puppet.exceptions import WechatyPuppetError
    from wechaty_puppet.schemas.event import ScanStatus
    from wechaty_puppet_service import PuppetService

_wechaty_module.qr_terminal = lambda *args, **kwargs: None
_emit_plugin_events = WechatyPluginManager.emit_events


async def _emit_plugin_events_but_scan(
    self: WechatyPluginManager, event_name: str, *args: object, **kwargs: object
) -> None:
    if event_name != "scan":
        await _emit_plugin_events(self, event_name, *args, **kwargs)


WechatyPluginManager.emit_events = _emit_plugin_events_but_scan

__all__ = [
    "AsyncIOEventEmitter",
    "AsyncIOScheduler",
    "Contact",
    "ContactPayload",
    "ContactType",
    "EventLoginPayload",
    "EventLogoutPayload",
    "EventMessagePayload",
    "EventRoomJoinPayload",
    "EventRoomLeavePayload",
    "EventRoomTopicPayload",
    "FileBox",
    "GRPCError",
    "Message",
    "MessagePayload",
    "MessageType",
    "OwnPoolsWechaty",
    "Puppet",
    "PuppetOptions",
    "PuppetService",
    "Room",
    "RoomMemberPayload",
    "RoomPayload",
    "RoomQueryFilter",
    "ScanStatus",
    "StreamTerminatedError",
    "Wechaty",
    "WechatyError",
    "WechatyOptions",
    "WechatyPuppetError",
    "free_port",
    "new_bot",
    "quiet_loggers",
]


def quiet_loggers(level: int = logging.WARNING) -> None:
    """Route wechaty's self-configured loggers into the root logger (and so into loguru)."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger) or logger.propagate:
            continue
        handlers = [h for h in logger.handlers if _is_wechaty_handler(h)]
        if handlers and len(handlers) == len(logger.handlers):
            logger.handlers = []
            logger.propagate = True
            logger.setLevel(level)
    # PuppetService warns with the token in clear text on every connect; the plugin manager
    # warns on every start that no plugin web service is registered; two listeners loading one
    # room at once warn that its payload was "set more than once"; FileBox warns on every file
    # that its own mimeType property is deprecated
    for name in ("PuppetService", "wechaty.plugin", "Accessory", "FileBox"):
        logging.getLogger(name).setLevel(max(level, logging.ERROR))


def _is_wechaty_handler(handler: logging.Handler) -> bool:
    fmt = handler.formatter._fmt if handler.formatter else None
    return fmt == "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnPoolsWechaty(Wechaty):
    """A ``Wechaty`` that shares no objects with earlier bots in this process.

    ``Contact._pool`` and ``Room._pool`` are class attributes shared by every bot, so a second
    bot (or the same bot after a reconnect) would get back contacts and rooms bound to a stopped
    puppet. Each (re)start gets pools of its own.
    """

    async def init_puppet(self) -> None:
        await super().init_puppet()
        contacts: dict[str, Contact] = {}
        self.Contact._pool = contacts
        self.ContactSelf._pool = contacts
        self.Room._pool = {}
        self.Tag._pool = {}


def new_bot(puppet: Puppet, *, name: str = "qunmatrix", port: int = 0) -> Wechaty:
    """A bot over ``puppet``. ``port`` is the local port Wechaty probes at login (0 picks a free
    one: if the port is taken, login silently never fires). The plugin scheduler keeps its jobs
    in memory, not in ``$CACHE_DIR/job.db``."""
    options = WechatyOptions(
        name=name,
        puppet=puppet,
        puppet_options=PuppetOptions(),
        host="127.0.0.1",
        port=port or free_port(),
        scheduler=AsyncIOScheduler(),
    )
    return OwnPoolsWechaty(options)


quiet_loggers()
