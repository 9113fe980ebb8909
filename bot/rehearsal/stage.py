"""A stage for rehearsals: the simulated WeChat, the bot and a virtual clock, driven one line
at a time without an event loop in sight. The demo, the console, conversation tests and the
benchmark all use it. For example::

    stage = Stage(engine, bp)
    stage.provision()                       # plan and apply, as the operator would
    stage.reply("K1:county-counselors", "wxK1n008", "#帮助")  # → "K1office_staff，你在本群…"
    stage.say("K1:county-counselors", "wxK1n008", "<快进 16:00>")  # reminders fall due

After every step the relay sends what it owes (notice copies, reports, alerts), moving the clock
as its pacing requires; time passes further only when told (``advance``, or the text
``<快进 17:00>`` / ``<快进 30分钟>`` in a transcript), and reminders and escalation fall due on
the way; so does the bot's tick (held joiners time out), e.g. ``stage.advance(25 * 3600)``.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from bot.chat.dispatch import Bot
from bot.chat.summary import SummaryOptions
from bot.config import LimitOptions
from bot.platforms.simulated import SimCalendar, SimMessage, SimulatedWeChat
from bot.rehearsal.sim_build import BuildReport, build_matrix, mirror_rooms
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.provisioning.join_review import TimeoutPolicy
from matrix.provisioning.schedule import AccountQuota
from matrix.relay import RelayEnv, RelayOptions, VirtualClock
from matrix.relay.bind_claims import BindLimits
from matrix.relay.options import AttachmentOptions
from matrix.relay.people import group_named, groups_with_rooms, name_for_wechat_id, shard_rooms
from matrix.tree import UnitTree

T = TypeVar("T")
JOIN, LEAVE = "<加入>", "<退出>"
FAST_FORWARD = re.compile(r"^<快进\s*(?:(\d{1,2})[:：](\d{2})|(\d+)\s*(分钟|小时))>$")
# a member sends a file (<文件 通知.pdf 2MB>), or quotes one (<引用 通知.pdf> #通知 …)
SEND_FILE = re.compile(r"^<文件\s+([^\s<>]+)(?:\s+(\d+(?:\.\d+)?)\s*(KB|MB|B)?)?>$", re.I)
QUOTE = re.compile(r"^<引用\s+([^\s<>]+)>\s*(.+)$", re.S)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024 * 1024}
_NAME_BYTES = 240  # a made-up file's name, in bytes (most file systems allow 255)
_MADE_MAX = 1024 * 1024 * 1024  # a made-up file is sparse, but the relay would read it


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
        relay: RelayOptions | None = None,
        timezone: str = "Asia/Shanghai",
        start: datetime | None = None,
        join_policy: TimeoutPolicy | None = None,
        bind_limits: BindLimits | None = None,
        limits: LimitOptions | None = None,
    ) -> None:
        """``start``: when the rehearsal begins (default: 09:00 today in ``timezone``)."""
        self.engine = engine
        self.bp = bp
        self.step = step
        tz = ZoneInfo(timezone)
        # one clock for everything on stage: pacing, the relay's deadlines, quotas counted in days
        self.clock = VirtualClock(start or datetime.combine(datetime.now(tz).date(), time(9), tz))
        self.calendar = SimCalendar(self.clock, self.clock.now())
        self.quotas = [a if isinstance(a, AccountQuota) else AccountQuota(a) for a in accounts]
        self.world = SimulatedWeChat(
            clock=self.clock, max_room_size=bp.matrix.max_group_size, directory=self._on_roster
        )
        self.accounts = [
            self.world.account(q.id, "群矩阵助手", rate=q.ops_per_second, burst=burst)
            for q in self.quotas
        ]
        self._files = tempfile.TemporaryDirectory(prefix="qunmatrix-stage-")
        self._made = 0  # files made up for members (<文件 …>)
        env = RelayEnv(engine, bp, self._keep_files_here(relay or RelayOptions()), tz, self.clock)
        self.bot = Bot(
            engine,
            bp,
            tree=tree,
            clock=self.clock,
            summaries=summaries,
            relay=env,
            quotas=self.quotas,
            join_policy=join_policy,
            bind_limits=bind_limits,
            now=self.calendar.now,
            sleep=self._sleep,
            limits=limits,
        )
        for account in self.accounts:
            self.bot.attach(account)
        self._runner = asyncio.Runner()

    async def _sleep(self, seconds: float) -> None:
        # the bot's pauses (pacing an apply) pass on the stage's clock, not in real time
        self.clock.advance(seconds)

    def _keep_files_here(self, options: RelayOptions) -> RelayOptions:
        """A rehearsal keeps the bot's copies of notice files in its own temporary folder
        (unless told where), not in the working directory."""
        files = options.attachments
        if files.dir != AttachmentOptions().dir:
            return options
        store = str(Path(self._files.name) / "store")
        return options.model_copy(update={"attachments": files.model_copy(update={"dir": store})})

    def close(self) -> None:
        self._runner.close()
        self.bot.close()
        self._files.cleanup()

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    # --- setting the stage --------------------------------------------------------------------

    def provision(
        self, unit: str | None = None, on_step: Callable[[int, int], None] | None = None
    ) -> BuildReport:
        """Build the groups of ``unit``'s subtree (default: the whole matrix) as the operator
        would: plan, apply over the accounts day after day, invitations accepted, rooms read
        back. The clock ends on the morning after the last day of work. ``on_step`` hears (steps
        gone through, steps in all) over all the days."""
        accounts = {a.account_id: a for a in self.accounts}
        report = self.run(
            build_matrix(
                self.engine,
                self.bp,
                self.world,
                accounts,
                self.quotas,
                self.calendar,
                unit=unit,
                on_step=on_step,
            )
        )
        self.settle()
        self.calendar.next_morning()
        self.run(self.bot.relay.start())  # the relay's accounts register the rooms they are in
        return report

    def mirror(self) -> int:
        """Recreate the rooms the database already records (the relay then finishes whatever
        an earlier run left owing)."""
        made = mirror_rooms(self.engine, self.world, [q.id for q in self.quotas])
        self.run(self.bot.relay.start())
        self.settle()
        return made

    def room_of(self, group: str) -> str:
        """The room of a group written as its name or ``UNITCODE:KIND[:SHARD]``."""
        with self.engine.connect() as conn:
            named = group_named(conn, group)
            found = None if named is None else named.room_id
            if found is None and ":" in group:
                code, kind, *rest = group.split(":")
                shards = shard_rooms(conn, code, kind)
                if rest and rest[0].isdigit():
                    found = shards.get(int(rest[0]))
                elif shards:
                    found = shards[min(shards)]
        if found is None or found not in self.world.rooms:
            room = self.world.find_room(group)
            if room is None:
                raise StageError(
                    f"找不到群“{group}”",
                    fix="请写群名称或 单位代码:群类型[:分群号]，例如 " + self._example_group(),
                )
            return room.room_id
        return str(found)

    def _example_group(self) -> str:
        """A group of this database written both ways, for an error's fix (not a test name)."""
        with self.engine.connect() as conn:
            rows = groups_with_rooms(conn, limit=1)
        if not rows:
            return f"单位代码:{self.bp.groups[0].key}"
        return f"{rows[0].unit_code}:{rows[0].kind}（即“{rows[0].name}”）"

    def _on_roster(self, contact_id: str) -> str | None:
        """Everyone on the roster with a 微信号 has WeChat, under their roster name."""
        with self.engine.connect() as conn:
            return name_for_wechat_id(conn, contact_id)

    def contact(self, contact_id: str) -> str:
        """Make sure ``contact_id`` exists in the world, with their roster name if they have one."""
        if contact_id not in self.world.contacts:
            self.world.add_contact(contact_id, self._on_roster(contact_id) or contact_id)
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
            self._post(room_id, sender, text)
        self.settle()
        said = [self._line(m) for m in self.world.messages(since=mark)]
        if text.strip() in (JOIN, LEAVE):
            said.insert(0, Line(self.world.rooms[room_id].topic, sender, text.strip(), False))
        return said

    def _post(self, room_id: str, sender: str, text: str) -> None:
        """A text, a file (``<文件 名称 大小>``: made up in the stage's folder, that size) or a
        text quoting the last file of that name in the room (``<引用 名称> …``)."""
        if (sent := SEND_FILE.match(text.strip())) is not None:
            name, amount, unit = sent[1], float(sent[2] or 1), (sent[3] or "kb").lower()
            size = int(amount * _UNITS[unit])
            if size > _MADE_MAX:
                raise StageError("演练文件最大 1024MB", fix="请这样写：<文件 通知.pdf 2MB>")
            if len(name.encode()) > _NAME_BYTES:  # the file system's own limit, near enough
                raise StageError("演练文件名太长", fix="请这样写：<文件 通知.pdf 2MB>")
            path = self.make_file(name, size)
            self.run(self.world.send_file(room_id, sender, str(path)))
            return
        quoted = ""
        if (quote := QUOTE.match(text.strip())) is not None:
            names = [m for m in self.world.messages(room_id) if Path(m.file).name == quote[1]]
            if not names:
                raise StageError(
                    f"本群没有名为“{quote[1]}”的文件", fix="请先发送：<文件 名称 大小>"
                )
            quoted, text = names[-1].message_id, quote[2]
        self.run(self.world.say(room_id, sender, text, quoted=quoted))

    def make_file(self, name: str, size: int) -> Path:
        """A file of ``size`` bytes in the stage's folder, as a member's phone would hold it;
        each made file differs from the others."""
        self._made += 1
        folder = Path(self._files.name) / "sent" / str(self._made)
        folder.mkdir(parents=True)
        path = folder / name
        with open(path, "wb") as out:
            out.write(f"{self._made}:{name}\n".encode()[:size])
            out.truncate(size)
        return path

    def replies(self, group: str, sender: str, text: str) -> list[str]:
        """Only the bot's replies to one step."""
        return [line.text for line in self.say(group, sender, text) if line.by_bot]

    def reply(self, group: str, sender: str, text: str) -> str:
        """The bot's one reply to one step (fails when there is not exactly one)."""
        got = self.replies(group, sender, text)
        assert len(got) == 1, got
        return got[0]

    def advance(self, by: float | datetime) -> list[Line]:
        """Let time pass, ``by`` seconds or until a moment: copies go out, reminders and
        escalation fall due, the bot's tick runs (held joiners time out). Returns every message
        said meanwhile."""
        mark = len(self.world.messages())
        to = by if isinstance(by, datetime) else self.clock.now() + timedelta(seconds=by)
        if to > self.clock.now():
            self.run(self.bot.relay.catch_up(until=to))
            self.clock.advance_to(to)
        self.run(self.bot.tick())
        self.bot.relay.poke()  # a job due exactly at ``to`` runs now
        self.settle()
        return [self._line(m) for m in self.world.messages(since=mark)]

    def settle(self) -> None:
        """Let the bot's background work (an apply) finish, paced replies go out and the relay
        send what it owes, moving the clock as far as pacing requires."""
        while True:
            jobs = set(self.bot.jobs)
            if jobs:
                self.run(asyncio.wait(jobs))
            while self.run(self.bot.outbox.flush()):
                due = self.bot.outbox.next_due()
                if due is not None and due > self.clock():
                    self.clock.advance(due - self.clock())
            if self.bot.jobs:
                continue
            if not self.bot.relay.due:
                return
            self.run(self.bot.relay.catch_up())

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
        # a private message (私聊) reads as said in 私聊:<its reader>
        topic = self.world.rooms[msg.room_id].topic if msg.room_id else f"私聊:{msg.to}"
        return Line(
            topic,
            msg.contact_id,
            msg.text,
            msg.contact_id in self.bot.accounts,
            msg.mentions,
            msg.file,
        )
