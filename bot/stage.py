"""A stage for rehearsals: the simulated WeChat, the bot and a manual clock, driven one line at
a time without an event loop in sight. The demo, the console, conversation tests and the
benchmark all use it. For example::

    stage = Stage(engine, bp)
    stage.provision()                       # plan and apply, as the operator would
    stage.reply("K1:county-counselors", "wxK1n008", "#帮助")  # → "K1office_staff，你在本群…"
    stage.advance(25 * 3600)                # a day passes: held joiners time out
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, select

from bot.dispatch import Bot
from bot.sim_build import BuildReport, build_matrix, mirror_rooms
from bot.simulated import ManualClock, SimCalendar, SimMessage, SimulatedWeChat
from bot.summary_chat import SummaryOptions
from bot.tables import GROUP, PERSON
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.join_review import TimeoutPolicy
from matrix.schedule import AccountQuota
from matrix.tree import UnitTree

T = TypeVar("T")
JOIN, LEAVE = "<加入>", "<退出>"


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
    """The simulated WeChat with the bot accounts ``accounts`` (ids, or quotas: an account is
    paced at its ``ops_per_second`` with bursts of ``burst``) over one database."""

    def __init__(
        self,
        engine: Engine,
        bp: Blueprint,
        *,
        accounts: Sequence[AccountQuota | str] = ("qunmatrix-bot",),
        burst: int = 5,
        step: float = 1.0,
        tree: UnitTree | None = None,
        summaries: SummaryOptions | None = None,
        join_policy: TimeoutPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.bp = bp
        self.step = step
        self.clock = ManualClock()
        self.calendar = SimCalendar(self.clock)
        self.quotas = [a if isinstance(a, AccountQuota) else AccountQuota(a) for a in accounts]
        self.world = SimulatedWeChat(
            clock=self.clock, max_room_size=bp.matrix.max_group_size, directory=self._on_roster
        )
        self.accounts = [
            self.world.account(q.id, "群矩阵助手", rate=q.ops_per_second, burst=burst)
            for q in self.quotas
        ]
        self.bot = Bot(
            engine,
            bp,
            tree=tree,
            clock=self.clock,
            summaries=summaries,
            quotas=self.quotas,
            join_policy=join_policy,
            now=self.calendar.now,
            sleep=self._sleep,
        )
        for account in self.accounts:
            self.bot.attach(account)
        self._runner = asyncio.Runner()

    async def _sleep(self, seconds: float) -> None:
        # the bot's pauses (pacing an apply) pass on the stage's clock, not in real time
        self.clock.advance(seconds)

    def close(self) -> None:
        self._runner.close()

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    # --- setting the stage --------------------------------------------------------------------

    def provision(self, unit: str | None = None) -> BuildReport:
        """Build the groups of ``unit``'s subtree (default: the whole matrix) as the operator
        would: plan, apply over the accounts day after day, invitations accepted, rooms read
        back. The clock ends on the morning after the last day of work."""
        accounts = {a.account_id: a for a in self.accounts}
        report = self.run(
            build_matrix(
                self.engine, self.bp, self.world, accounts, self.quotas, self.calendar, unit=unit
            )
        )
        self.settle()
        self.calendar.next_morning()
        return report

    def mirror(self) -> int:
        """Recreate the rooms the database already records."""
        return mirror_rooms(self.engine, self.world, [q.id for q in self.quotas])

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

    def _on_roster(self, contact_id: str) -> str | None:
        """Everyone on the roster with a 微信号 has WeChat, under their roster name."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(PERSON.c.name).where(PERSON.c.wechat_id == contact_id)
            ).scalar()
        return None if found is None else str(found)

    def contact(self, contact_id: str) -> str:
        """Make sure ``contact_id`` exists in the world, with their roster name if they have one."""
        if contact_id not in self.world.contacts:
            self.world.add_contact(contact_id, self._on_roster(contact_id) or contact_id)
        return contact_id

    # --- acting -------------------------------------------------------------------------------

    def say(self, group: str, sender: str, text: str) -> list[Line]:
        """``sender`` says ``text`` in ``group`` (``<加入>`` / ``<退出>`` join or leave); return
        every message that followed, the bot's replies included, once all were sent."""
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

    def advance(self, seconds: float) -> list[Line]:
        """Let ``seconds`` pass: the bot's tick runs (held joiners time out …); return every
        message said meanwhile."""
        mark = len(self.world.messages())
        self.clock.advance(seconds)
        self.run(self.bot.tick())
        self.settle()
        return [self._line(m) for m in self.world.messages(since=mark)]

    def settle(self) -> None:
        """Let the bot's background work (an apply) finish and paced replies go out, moving
        the clock as far as pacing requires."""
        while True:
            jobs = set(self.bot.jobs)
            if jobs:
                self.run(asyncio.wait(jobs))
            if not self.run(self.bot.outbox.flush()) and not self.bot.jobs:
                return
            due = self.bot.outbox.next_due()
            if due is not None and due > self.clock():
                self.clock.advance(due - self.clock())

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
