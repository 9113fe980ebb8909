"""A stage for rehearsals: the simulated WeChat, the bot and a virtual clock, driven one line
at a time without an event loop in sight. The demo, the console, conversation tests and the
benchmark all use it. For example::

    stage = Stage(engine, bp)
    stage.provision()
    stage.reply("K1:county-counselors", "wxK1n008", "#帮助")  # → "K1office_staff，你在本群…"
    stage.say("K1:county-counselors", "wxK1n008", "<快进 16:00>")  # reminders fall due

After every step the relay sends what it owes (notice copies, reports, alerts), moving the clock
as its pacing requires; time passes further only when told (``advance``, or the text
``<快进 17:00>`` / ``<快进 30分钟>`` in a transcript), and reminders and escalation fall due on
the way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from bot.dispatch import Bot
from bot.quick_build import BuildReport, mirror_world, provision_world
from bot.simulated import SimMessage, SimulatedWeChat
from bot.summary_chat import SummaryOptions
from bot.tables import GROUP, PERSON
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.relay import RelayEnv, RelayOptions, VirtualClock
from matrix.tree import UnitTree

T = TypeVar("T")
JOIN, LEAVE = "<加入>", "<退出>"
FAST_FORWARD = re.compile(r"^<快进\s*(?:(\d{1,2})[:：](\d{2})|(\d+)\s*(分钟|小时))>$")


class StageError(MatrixError):
    """A rehearsal step that cannot happen (no such group, not a member)."""


@dataclass(frozen=True)
class Line:
    """One message said during a step, as the transcript prints it."""

    group: str
    sender: str
    text: str
    by_bot: bool
    mentions: tuple[str, ...] = ()
    file: str = ""  # the path of a sent file (its text reads [文件] name)


class Stage:
    """The simulated WeChat with ``accounts`` bot accounts over one database."""

    def __init__(
        self,
        engine: Engine,
        bp: Blueprint,
        *,
        accounts: tuple[str, ...] = ("qunmatrix-bot",),
        rate: float = 1.0,
        burst: int = 5,
        step: float = 1.0,
        tree: UnitTree | None = None,
        summaries: SummaryOptions | None = None,
        relay: RelayOptions | None = None,
        timezone: str = "Asia/Shanghai",
        start: datetime | None = None,
    ) -> None:
        """``start``: when the rehearsal begins (default: 09:00 today in ``timezone``)."""
        self.engine = engine
        self.bp = bp
        self.step = step
        tz = ZoneInfo(timezone)
        self.clock = VirtualClock(start or datetime.combine(datetime.now(tz).date(), time(9), tz))
        self.world = SimulatedWeChat(clock=self.clock, max_room_size=bp.matrix.max_group_size)
        self.accounts = [
            self.world.account(a, "群矩阵助手", rate=rate, burst=burst) for a in accounts
        ]
        env = RelayEnv(engine, bp, relay or RelayOptions(), tz, self.clock)
        self.bot = Bot(engine, bp, tree=tree, clock=self.clock, summaries=summaries, relay=env)
        for account in self.accounts:
            self.bot.attach(account)
        self._runner = asyncio.Runner()

    def close(self) -> None:
        self._runner.close()

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    # --- setting the stage --------------------------------------------------------------------

    def provision(self) -> BuildReport:
        """Build every group of the matrix with its expected members (stand-in for issue 3),
        and let the relay's accounts register the rooms they are in."""
        report = provision_world(self.engine, self.bp, self.bot.tree, self.world, self.accounts)
        self.run(self.bot.relay.start())
        return report

    def mirror(self) -> int:
        """Recreate the rooms the database already records (the relay then finishes whatever
        an earlier run left owing)."""
        made = mirror_world(self.engine, self.world, self.accounts)
        self.run(self.bot.relay.start())
        self.settle()
        return made

    def room_of(self, group: str) -> str:
        """The room of a group written as its name or ``UNITCODE:KIND[:SHARD]``."""
        with self.engine.connect() as conn:
            found = (
                conn.execute(select(GROUP.c.room_id).where(GROUP.c.name == group)).scalars().first()
            )
            if found is None and ":" in group:
                code, kind, *rest = group.split(":")
                query = select(GROUP.c.room_id, GROUP.c.shard).where(
                    GROUP.c.unit_code == code, GROUP.c.kind == kind
                )
                shards = {s: r for r, s in conn.execute(query)}
                if rest and rest[0].isdigit():
                    found = shards.get(int(rest[0]))
                elif shards:
                    found = shards[min(shards)]
        if found is None or found not in self.world.rooms:
            room = self.world.find_room(group)
            if room is None:
                raise StageError(
                    f"找不到群“{group}”",
                    fix="请写群名称或 单位代码:群类型[:分群号]，例如 K1:county-counselors",
                )
            return room.room_id
        return str(found)

    def contact(self, contact_id: str) -> str:
        """Make sure ``contact_id`` exists in the world, with their roster name if they have one."""
        if contact_id not in self.world.contacts:
            with self.engine.connect() as conn:
                name = conn.execute(
                    select(PERSON.c.name).where(PERSON.c.wechat_id == contact_id)
                ).scalar()
            self.world.add_contact(contact_id, name or contact_id)
        return contact_id

    # --- acting -------------------------------------------------------------------------------

    def say(self, group: str, sender: str, text: str) -> list[Line]:
        """``sender`` says ``text`` in ``group`` (``<加入>`` / ``<退出>`` join or leave,
        ``<快进 17:00>`` lets time pass); return every message that followed, the bot's replies
        included, once all were sent."""
        if (forward := FAST_FORWARD.match(text.strip())) is not None:
            return self.advance(self._fast_forward(forward))
        room_id = self.room_of(group)
        self.contact(sender)
        mark = len(self.world.messages())
        self.clock.advance(self.step)
        room = self.world.rooms[room_id]
        if text.strip() == JOIN:
            self.run(self.world.join(room_id, sender))
        elif text.strip() == LEAVE:
            self.run(self.world.leave(room_id, sender))
        else:
            if sender not in room.members:
                raise StageError(f"{sender} 不在群“{room.topic}”中", fix=f"请先让其入群（{JOIN}）")
            self.run(self.world.say(room_id, sender, text))
        self.settle()
        said = [self._line(m) for m in self.world.messages(since=mark)]
        if text.strip() in (JOIN, LEAVE):
            said.insert(0, Line(self.world.rooms[room_id].topic, sender, text.strip(), False))
        return said

    def replies(self, group: str, sender: str, text: str) -> list[str]:
        """Only the bot's replies to one step."""
        return [line.text for line in self.say(group, sender, text) if line.by_bot]

    def reply(self, group: str, sender: str, text: str) -> str:
        """The bot's one reply to one step (fails when there is not exactly one)."""
        got = self.replies(group, sender, text)
        assert len(got) == 1, got
        return got[0]

    def settle(self) -> None:
        """Let paced replies go out and the relay send what it owes, moving the clock as far as
        pacing requires."""
        while True:
            while self.run(self.bot.outbox.flush()):
                due = self.bot.outbox.next_due()
                if due is not None and due > self.clock():
                    self.clock.advance(due - self.clock())
            if not self.bot.relay.due:
                return
            self.run(self.bot.relay.catch_up())

    def advance(self, to: datetime) -> list[Line]:
        """Let time pass until ``to``: copies go out, reminders and escalation fall due. Returns
        every message said meanwhile."""
        mark = len(self.world.messages())
        if to > self.clock.now():
            self.run(self.bot.relay.catch_up(until=to))
            self.clock.advance_to(to)
        self.bot.relay.poke()  # a job due exactly at ``to`` runs now
        self.settle()
        return [self._line(m) for m in self.world.messages(since=mark)]

    def _fast_forward(self, match: re.Match[str]) -> datetime:
        now = self.bot.relay.env.now()
        if match[3]:
            return now + timedelta(minutes=int(match[3]) * (60 if match[4] == "小时" else 1))
        hour, minute = int(match[1]), int(match[2])
        if hour > 23 or minute > 59:
            raise StageError(
                f"没有 {match[1]}:{match[2]} 这个时间",
                fix="请这样写：<快进 17:00> 或 <快进 30分钟>",
            )
        at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)

    def _line(self, msg: SimMessage) -> Line:
        topic = self.world.rooms[msg.room_id].topic
        return Line(
            topic,
            msg.contact_id,
            msg.text,
            msg.contact_id in self.bot.accounts,
            msg.mentions,
            msg.file,
        )
