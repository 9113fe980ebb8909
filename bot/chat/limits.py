"""What every message goes through before the dispatcher looks at it (the ``[limits]`` table of
config.toml, documented in config.example.toml).

- ``clean``: control characters are stripped from every text the platform hands in (messages,
  display names, topics, the names of people joining), once, here. They are invisible in WeChat, so the text people saw is
  the text the bot reads; a NUL would otherwise reach the database (PostgreSQL refuses it) and
  a lone surrogate cannot be stored at all. Line breaks and tabs stay (a notice has lines);
  a carriage return becomes a line break.
- ``Limiter``: commands are counted per contact and per group in a sliding window. The command
  that goes over a limit is answered once with a short 请稍后再试; everything from that contact
  (or in that group) is then ignored, without any database work, until the cooldown is over.
  ``#上报`` has its own, lower, hourly limit per contact (each report is a second message, to
  the office). The defaults are far above what a person types.
- A command longer than ``max_command_chars`` is refused (naming the limit and the setting)
  before it is parsed any further.

All time is the bot's clock (``Bot.clock``): the stage's virtual clock in tests.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from dataclasses import dataclass, field, replace
from enum import Enum

from bot.chat.commands import Invocation
from bot.chat.context import Reply
from bot.chat.registry import REGISTRY
from bot.config import LimitOptions
from matrix.platform import IncomingMessage, Member, RoomEvent

# C0 and C1 controls but tab and line feed, DEL, lone surrogates (which no encoding takes) and
# U+FFFE / U+FFFF (no XML document, so no XLSX file, may hold them)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_RETURN = re.compile("\r\n?")


def clean(text: str) -> str:
    """``text`` without control characters (line breaks and tabs kept, CR read as a break).

    >>> clean("#通知 a\\x00b\\r\\nc\\x1b[31m")
    '#通知 ab\\nc[31m'
    """
    if text.isprintable():  # the usual case costs one scan
        return text
    return _CONTROL.sub("", _RETURN.sub("\n", text))


def cleaned(msg: IncomingMessage) -> IncomingMessage:
    """The message with its text and sender's name ``clean``."""
    text, name = clean(msg.text), clean(msg.sender_name)
    if text == msg.text and name == msg.sender_name:
        return msg
    return replace(msg, text=text, sender_name=name)


# WeChat keeps names far shorter; a longer one comes from a broken or forged client, and the
# database keeps at most 128 characters of a name
MAX_NAME = 64


def cleaned_member(member: Member) -> Member:
    """A room member as the platform reports them, with their names ``clean`` and at most
    ``MAX_NAME`` characters long."""
    name, nickname = clean(member.name)[:MAX_NAME], clean(member.nickname)[:MAX_NAME]
    if name == member.name and nickname == member.nickname:
        return member
    return replace(member, name=name, nickname=nickname)


def cleaned_event(event: RoomEvent) -> RoomEvent:
    """The room event with its topic ``clean``."""
    topic = clean(event.topic)
    return event if topic == event.topic else replace(event, topic=topic)


class Verdict(Enum):
    """What to do with one command."""

    PASS = "pass"  # handle it
    NOTICE = "notice"  # over a limit just now: answer 请稍后再试 once
    SILENT = "silent"  # cooling down: ignore it


@dataclass(frozen=True)
class Decision:
    """A verdict; for a NOTICE, which limit (contact, group, report) and the wait in seconds."""

    verdict: Verdict
    scope: str = ""
    wait: float = 0.0


_PASS = Decision(Verdict.PASS)
_SILENT = Decision(Verdict.SILENT)


@dataclass
class _Window:
    """Recent command times of one key, and until when it is ignored."""

    times: deque[float] = field(default_factory=deque)
    quiet_until: float = float("-inf")


REPORT_WINDOW = 3600.0


class Limiter:
    """Sliding-window counts per contact, per group and per contact's reports.

    Forgets a key once its window and cooldown are over, so memory follows the contacts active
    in the last few minutes, not everyone ever heard.
    """

    def __init__(self, options: LimitOptions | None = None) -> None:
        self.options = options or LimitOptions()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._last_sweep = float("-inf")

    def admit(self, room_id: str, contact_id: str, command_key: str, now: float) -> Decision:
        """Count one command from ``contact_id`` in ``room_id`` at ``now``."""
        o = self.options
        self._sweep(now)
        checks = [("contact", contact_id, o.per_contact, o.window_seconds)]
        if command_key != "ack":  # after a notice, the whole group answers 收到 at once
            checks.append(("group", room_id, o.per_group, o.window_seconds))
        if command_key == "report":
            checks.append(("report", contact_id, o.reports_per_hour, REPORT_WINDOW))
        windows = [self._windows.setdefault((scope, key), _Window()) for scope, key, _, _ in checks]
        if any(w.quiet_until > now for w in windows):
            return _SILENT
        for w, (scope, _, limit, span) in zip(windows, checks, strict=True):
            while w.times and w.times[0] <= now - span:
                w.times.popleft()
            if len(w.times) >= limit:
                # a report over its hourly limit waits out the rest of that hour
                wait = max(w.times[0] + span - now, 0.0) if scope == "report" else 0.0
                wait = max(wait, o.cooldown_seconds)
                w.quiet_until = now + wait
                w.times.clear()
                return Decision(Verdict.NOTICE, scope, wait)
        for w in windows:
            w.times.append(now)
        return _PASS

    def too_long(self, text: str) -> bool:
        return len(text) > self.options.max_command_chars

    def _sweep(self, now: float) -> None:
        span = max(self.options.window_seconds, REPORT_WINDOW)
        if now - self._last_sweep < span:
            return
        self._last_sweep = now
        stale = [
            key
            for key, w in self._windows.items()
            if w.quiet_until <= now and (not w.times or w.times[-1] <= now - span)
        ]
        for key in stale:
            del self._windows[key]


# every name and alias a command has: a '#word' like none of them (#接龙 is WeChat's own) is
# ordinary chat, neither counted nor answered
_NAMES = REGISTRY.names()


@dataclass(frozen=True)
class Stop:
    """A command not to handle: answered with ``reply``, or (None) ignored."""

    reply: Reply | None = None


class Gate:
    """The dispatcher's one look at a command before any database work."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    def screen(self, msg: IncomingMessage, inv: Invocation, now: float) -> Stop | None:
        """None to handle the command; a ``Stop`` when a limit holds it back. A bare command
        (收到 without #) held back is never answered."""
        if inv.command is None and not difflib.get_close_matches(inv.name, _NAMES, 1, 0.5):
            return Stop()
        key = inv.command.key if inv.command is not None else ""
        decision = self.limiter.admit(msg.room_id, msg.contact_id, key, now)
        if decision.verdict is Verdict.SILENT:
            return Stop()
        o = self.limiter.options
        if decision.verdict is Verdict.NOTICE:
            limit = {"contact": o.per_contact, "group": o.per_group}.get(
                decision.scope, o.reports_per_hour
            )
            data = {
                "scope": decision.scope,
                "limit": limit,
                "window": o.window_seconds,
                "minutes": max(1, round(decision.wait / 60)),
            }
            return Stop(None if inv.bare else Reply("slow_down.j2", data))
        if self.limiter.too_long(msg.text):
            data = {"length": len(msg.text), "limit": o.max_command_chars}
            return Stop(None if inv.bare else Reply("too_long.j2", data))
        return None
