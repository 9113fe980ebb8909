"""The dispatcher: IncomingMessage → command → permission → executor → template → send_text.

One ``Bot`` serves any number of accounts (``Platform`` objects); adapters hand it messages and
room events through ``on_message`` / ``on_room_event``. It ignores its own messages (and its
other accounts'), answers each message once even when several accounts hear it (in this
process or in others on the same database: ``matrix.claims``), and replies:

- usage errors say what was wrong and show the correct form;
- refusals say why (not on the roster, not an office, outside your subtree);
- expected errors (``MatrixError``) show their message and fix;
- anything else is logged with context and answered with a short apology and a reference id;
- a bare command (收到 without #) that would only be refused or fail stays silent.

Ordinary chat gets no reply; it is only held against the watch list (舆情监控), which needs no
database work unless a watch word matches. The process's ``Relay`` (``bot.chat.relay_runner``) sends
what the relay commands queue, through every account the bot is attached to.

Replies an account may not send yet (pacing) wait in an ``Outbox`` and go out in order; a
reply's files (a summary table) follow its text through ``send_file``.

Work that takes long (carrying out a plan after #确认) runs as a background job (``spawn``)
that reports to its room when done. ``tick`` does what is due by the clock (held joiners whose
time ran out); real mode calls it every second or so, the stage when its clock is moved.

Concurrency: the bot never freezes. Executors run their blocking database and CPU work
(planning, auditing, summaries, the relay engine's calls) in worker threads through
``offload``, each call with a database connection of its own, so that the event loop keeps
serving chat, sends and keepalives meanwhile. Messages of different rooms are handled
concurrently; within one room commands and room events take turns (``RoomTurns``), so a
later command's reply never overtakes an earlier one's. Shared state (``shown_plans``,
``applies``, the unit tree) is only changed on the event loop; #确认's check-and-start of an
apply holds ``applies.admission``.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import functools
import gc
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, ParamSpec, TypeVar

from loguru import logger
from sqlalchemy import Connection, Engine

from bot.chat import adopt as adopt_chat
from bot.chat import joins
from bot.chat.commands import Command, Invocation, Param, Registry, UsageError, Who
from bot.chat.context import Call, Executor, Reply, Transaction, group_of
from bot.chat.help import roster_example
from bot.chat.limits import Gate, Limiter, cleaned, cleaned_event
from bot.chat.recent_files import RecentFiles
from bot.chat.registry import REGISTRY
from bot.chat.relay import watch, watched
from bot.chat.relay_runner import Relay
from bot.chat.settings import SummaryOptions
from bot.config import LimitOptions
from bot.render.templates import render
from matrix import audit_log, claims
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.models import utcnow
from matrix.platform import (
    IncomingMessage,
    Platform,
    PlatformError,
    RateLimited,
    RoomEvent,
    RoomEventKind,
)
from matrix.provisioning.apply import Applies
from matrix.provisioning.authority import Asker, Authority, Denied
from matrix.provisioning.join_review import TimeoutPolicy
from matrix.provisioning.plan import ShownPlans
from matrix.provisioning.schedule import AccountQuota
from matrix.relay import RelayEnv
from matrix.relay.attachments import NoticeFile, shown_name
from matrix.relay.bind_claims import BindLimits
from matrix.relay.errors import NotAllowed
from matrix.relay.people import GroupRef, room_owner, units_mark
from matrix.tree import UnitTree

Clock = Callable[[], float]  # time.monotonic, or the stage's virtual clock
Sleep = Callable[[float], Awaitable[None]]
TICK_EVERY = 60.0  # seconds of the bot's clock between two looks at what is due
# worker threads for blocking work: two for the national-scale kind (a plan, an audit, a
# summary; each holds much memory), four for the relay engine's short calls, so that a
# national #建群 never makes a 收到 wait for a thread
HEAVY_WORKERS, QUICK_WORKERS = 2, 4
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Stats:
    """Counters for the console, the logs and the benchmark."""

    messages: int = 0
    commands: int = 0
    events: int = 0
    replies_sent: int = 0
    replies_dropped: int = 0
    errors: int = 0


@dataclass
class _Pending:
    platform: Platform
    room_id: str
    text: str
    mentions: tuple[str, ...]
    due: float
    attempts: int = 0
    file: str = ""  # a file to send instead of text


class Outbox:
    """Replies waiting for their account's pacing, sent in order per account.

    A ``RateLimited`` send waits ``retry_after``; another retryable failure is tried again with
    backoff up to ``max_attempts`` times; a permanent failure is logged and counted as dropped.
    """

    def __init__(self, clock: Clock, stats: Stats, max_attempts: int = 5) -> None:
        self.clock = clock
        self.stats = stats
        self.max_attempts = max_attempts
        self.queues: dict[str, deque[_Pending]] = {}
        # accounts whose queue a coroutine is sending from right now: a second drain (the
        # keep_sending task while a handler's send awaits the network) must not resend the head
        self._draining: set[int] = set()

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())

    async def send(
        self,
        platform: Platform,
        room_id: str,
        text: str,
        mentions: tuple[str, ...] = (),
        *,
        file: str = "",
    ) -> None:
        """Send ``text`` (or, given ``file``, that file) when the account's pacing allows."""
        queue = self.queues.setdefault(platform.account_id, deque())
        queue.append(_Pending(platform, room_id, text, mentions, self.clock(), file=file))
        if len(queue) == 1:
            await self._drain(queue)

    async def flush(self) -> int:
        """Send whatever is due; return how many replies still wait."""
        for queue in self.queues.values():
            await self._drain(queue)
        return len(self)

    def next_due(self) -> float | None:
        """When the earliest waiting reply may be tried, or None when nothing waits."""
        heads = [q[0].due for q in self.queues.values() if q]
        return min(heads) if heads else None

    async def _drain(self, queue: deque[_Pending]) -> None:
        if id(queue) in self._draining:
            return
        self._draining.add(id(queue))
        try:
            await self._send_due(queue)
        finally:
            self._draining.discard(id(queue))

    async def _send_due(self, queue: deque[_Pending]) -> None:
        while queue and queue[0].due <= self.clock():
            item = queue[0]
            try:
                if item.file:
                    await item.platform.send_file(item.room_id, item.file)
                else:
                    await item.platform.send_text(item.room_id, item.text, item.mentions)
            except RateLimited as exc:
                item.due = self.clock() + exc.retry_after
                return
            except PlatformError as exc:
                item.attempts += 1
                if exc.retryable and item.attempts < self.max_attempts:
                    item.due = self.clock() + 2.0**item.attempts
                    return
                logger.error(
                    "reply dropped: account={} room={} file={} error={}",
                    item.platform.account_id,
                    item.room_id,
                    item.file,
                    exc,
                )
                self.stats.replies_dropped += 1
                queue.popleft()
                continue
            self.stats.replies_sent += 1
            queue.popleft()


class CollectorPause:
    """Python's cyclic garbage collector, paused while national-scale work runs in a worker
    thread. A full collection walks every live object with the GIL held: while a national
    plan was being built (millions of objects) each one froze the event loop for 0.5–2.4 s
    (bench_responsiveness). When the last such work ends and it left many objects behind
    (a kept plan), they are frozen: moved out of the collector's sight for good, so that later
    collections stay short; reference counting still frees them once dropped (only cyclic
    garbage made meanwhile stays). After small work collection simply resumes.

    Meanwhile the GIL changes hands every ``SWITCH`` seconds instead of Python's 5 ms: the
    event loop and the short calls of other threads wait for it at every database call, and
    with 5 ms a #帮助 took 100–300 ms behind a national plan."""

    FREEZE_ABOVE = 100_000  # objects left since the last collection
    SWITCH = 0.0005

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._was_enabled = True
        self._switch = sys.getswitchinterval()

    def run(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._running == 0:
                self._was_enabled = gc.isenabled()
                self._switch = sys.getswitchinterval()
                gc.disable()
                sys.setswitchinterval(min(self._switch, self.SWITCH))
            self._running += 1
        try:
            return fn()
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    if gc.get_count()[0] > self.FREEZE_ABOVE:
                        gc.freeze()
                    if self._was_enabled:
                        gc.enable()
                    sys.setswitchinterval(self._switch)


_PAUSE = CollectorPause()  # the collector is one per process, and so is its pause


def _said(msg: IncomingMessage) -> tuple[str, ...]:
    """What every account hears alike of a message (ids differ between accounts)."""
    return ("m", msg.room_id, msg.contact_id, msg.text)


class RoomTurns:
    """One turn at a time per room, first come first served: a command's handling and its reply
    finish before the next command or event of that room starts (rooms do not wait for each
    other). Locks of idle rooms are dropped, so a national matrix costs nothing at rest."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def of(self, room_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(room_id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[room_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[room_id]
            if users <= 1:
                del self._locks[room_id]
            else:
                self._locks[room_id] = (lock, users - 1)


def _authority(bp: Blueprint, tree: UnitTree) -> Authority:
    """``matrix.provisioning.authority``'s policy over the loaded unit tree."""
    return Authority(bp, tree.is_within, tree.__contains__)


class Bot:
    """The chat layer over one database and blueprint, for any number of accounts."""

    def __init__(
        self,
        engine: Engine,
        blueprint: Blueprint,
        *,
        tree: UnitTree | None = None,
        clock: Clock = time.monotonic,
        executors: Mapping[str, Executor] | None = None,
        summaries: SummaryOptions | None = None,
        relay: RelayEnv | None = None,
        quotas: Sequence[AccountQuota] = (),
        join_policy: TimeoutPolicy | None = None,
        bind_limits: BindLimits | None = None,
        now: Callable[[], datetime] = utcnow,
        sleep: Sleep = asyncio.sleep,
        limits: LimitOptions | None = None,
    ) -> None:
        """``relay``: the relay's settings and clock (default: as shipped, on the real clock).
        ``quotas`` are the configured bot accounts (the planner schedules over them; an
        account attached without quotas gets the defaults). ``now`` dates what the bot does
        (quotas per day, join timeouts) and ``sleep`` paces an apply: the stage passes its
        calendar and clock. ``bind_limits``: failed #绑定 attempts allowed. ``limits``: how many
        commands a contact and a group may send (``bot.chat.limits``), counted on ``clock``."""
        self.engine = engine
        self.blueprint = blueprint
        self.summaries = summaries or SummaryOptions()
        self.quotas = list(quotas)
        self.join_policy = join_policy or TimeoutPolicy()
        self.bind_limits = bind_limits or BindLimits()
        self.now = now
        self.sleep = sleep
        self.platforms: dict[str, Platform] = {}
        self.jobs: set[asyncio.Task[None]] = set()
        self.shown_plans = ShownPlans()  # (room, asker) → the plan #建群 showed
        self.applies = Applies()  # scope → its running apply; #确认's admission
        self._heard_in: dict[str, str] = {}  # room → the account that last heard something there
        self._next_tick = 0.0
        self.tree = tree if tree is not None else UnitTree.load(engine, blueprint.level_keys)
        self.authority = _authority(blueprint, self.tree)
        self._roster_mark = self._units_mark()
        self.commands: Registry = REGISTRY
        declared = {c.key: c.executor for c in self.commands if c.executor is not None}
        self.executors: dict[str, Executor] = dict(executors if executors is not None else declared)
        missing = {c.key for c in self.commands} - set(self.executors)
        if missing:
            raise ValueError(f"commands without an executor: {sorted(missing)}")
        self.accounts: set[str] = set()
        self.clock = clock
        self.stats = Stats()
        self.outbox = Outbox(clock, self.stats)
        self.relay = Relay(relay if relay is not None else RelayEnv(engine, blueprint))
        self.turns = RoomTurns()
        self._heavy = ThreadPoolExecutor(HEAVY_WORKERS, thread_name_prefix="qunmatrix-heavy")
        self._quick = ThreadPoolExecutor(QUICK_WORKERS, thread_name_prefix="qunmatrix-quick")
        self.gate = Gate(Limiter(limits))
        self.recent_files = RecentFiles(self.relay.env.options.attachments.window_minutes)

    def close(self) -> None:
        """Let the worker threads go (work already handed to them finishes first)."""
        self._heavy.shutdown(wait=True)
        self._quick.shutdown(wait=True)

    async def offload(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a worker thread for national-scale work (a plan, an audit,
        a summary), while the event loop serves everyone else. ``fn`` opens its own database
        connection (connections are not thread-safe; the engine is) and changes no shared
        state of the bot: the caller does that with the result, back on the loop."""
        loop = asyncio.get_running_loop()
        work = functools.partial(fn, *args, **kwargs)
        return await loop.run_in_executor(self._heavy, _PAUSE.run, work)

    async def offload_quick(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """As ``offload``, for short blocking calls (the relay engine's) that must not queue
        behind a national plan."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._quick, functools.partial(fn, *args, **kwargs))

    # --- wiring -------------------------------------------------------------------------------

    def add_account(self, account_id: str) -> None:
        """Know ``account_id`` as one of ours: its words are never taken as a person's. An
        adapter that calls ``on_message`` / ``on_room_event`` itself registers here first."""
        self.accounts.add(account_id)

    def attach(self, account: Any) -> None:
        """Subscribe to an account (a ``Platform``) that offers ``on_message`` /
        ``on_room_event`` / ``on_echo`` callbacks (the simulated WeChat and the Wechaty adapter
        do); the bot also acts through it (an apply, a timeout), and the relay sends through it
        from ``relay.start()`` on."""
        self.add_account(account.account_id)
        self.platforms[account.account_id] = account
        self.relay.add_account(account)

        async def message(msg: IncomingMessage) -> None:
            await self.on_message(account, msg)

        async def event(ev: RoomEvent) -> None:
            await self.on_room_event(account, ev)

        account.on_message(message)
        account.on_room_event(event)

    async def keep_sending(self, stop: asyncio.Event, idle: float = 0.5) -> None:
        """Send paced replies as they fall due, until ``stop`` is set (real mode runs this as a
        task; the stage moves its manual clock instead)."""
        while not stop.is_set():
            await self.outbox.flush()
            due = self.outbox.next_due()
            wait = idle if due is None else min(idle, max(0.0, due - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait or 0.01)

    @property
    def account_quotas(self) -> list[AccountQuota]:
        """The accounts the planner schedules over: the configured ones, else every attached
        account with WeChat's usual quotas."""
        return self.quotas or [AccountQuota(a) for a in sorted(self.platforms)]

    def platform_for(self, room_id: str) -> Platform | None:
        """An attached account to act in ``room_id`` through: the room's owner if it is one of
        ours, else the account that last heard something there."""
        owner = room_owner(self.engine, room_id)
        for account in (owner, self._heard_in.get(room_id)):
            if account in self.platforms:
                return self.platforms[account]
        return None

    def spawn(self, work: Coroutine[Any, Any, None], **context: Any) -> asyncio.Task[None]:
        """Run ``work`` in the background; a failure is logged with ``context``."""

        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                self.stats.errors += 1
                logger.opt(exception=exc).error("background job failed: {}", context)

        task = asyncio.get_running_loop().create_task(guarded())
        self.jobs.add(task)
        task.add_done_callback(self.jobs.discard)
        return task

    async def tick(self) -> None:
        """Do what is due by the clock, looked at once every ``TICK_EVERY`` seconds: held
        joiners whose time ran out, a roster import that changed the units, plans shown too long
        ago; then send what the pacing allows. Never raises."""
        if self.clock() >= self._next_tick:
            self._next_tick = self.clock() + TICK_EVERY
            try:
                await self.refresh_units()
                self.shown_plans.forget_old(self.clock())
                self.recent_files.forget_old(self.clock())
                stale = self.now().timestamp() - claims.WINDOW
                await self.offload_quick(claims.prune, self.engine, stale)
                await joins.timeouts(self)
            except Exception as exc:
                self._apology(exc, during="tick")
        await self.outbox.flush()

    def _units_mark(self) -> tuple[Any, ...]:
        """A cheap fingerprint of the unit table: it changes when an import adds, removes,
        renames or moves units."""
        return units_mark(self.engine)

    def reload_units(self) -> bool:
        """Load the unit tree again if a roster import changed it; whether it did."""
        mark = self._units_mark()
        if mark == self._roster_mark:
            return False
        self._use_tree(UnitTree.load(self.engine, self.blueprint.level_keys), mark)
        return True

    async def refresh_units(self) -> bool:
        """``reload_units`` with the reading done in a worker thread (a national tree takes
        seconds to load); the new tree replaces the old one on the loop."""
        mark = await self.offload(self._units_mark)
        if mark == self._roster_mark:
            return False
        tree = await self.offload(UnitTree.load, self.engine, self.blueprint.level_keys)
        self._use_tree(tree, mark)
        return True

    def _use_tree(self, tree: UnitTree, mark: tuple[Any, ...]) -> None:
        self.tree = tree
        self.authority = _authority(self.blueprint, tree)
        self.__dict__.pop("_unit_names", None)
        self._roster_mark = mark

    @cached_property
    def _unit_names(self) -> dict[str, list[str]]:
        names: dict[str, list[str]] = {}
        for code, name in self.tree.graph.nodes(data="name"):
            names.setdefault(name, []).append(code)
        return names

    def unit_word(self, code: str) -> str:
        """How to name a unit in a command: its name where that is unique, else its code."""
        name = self.tree.name(code)
        return name if len(self._unit_names.get(name, [])) == 1 else code

    def find_unit(self, command: Command, param: Param, text: str) -> str:
        """A unit typed as its code or its name (a unit the tree does not know may have come
        with a roster import since it was loaded)."""
        if text in self.tree:
            return text
        if text not in self._unit_names and self.reload_units() and text in self.tree:
            return text
        codes = self._unit_names.get(text, [])
        if len(codes) == 1:
            return codes[0]
        if codes:
            raise UsageError(command, "ambiguous_unit", param=param, value=text, codes=codes[:5])
        raise UsageError(command, "unknown_unit", param=param, value=text)

    # --- messages -----------------------------------------------------------------------------

    async def on_message(self, platform: Platform, msg: IncomingMessage) -> None:
        """Handle one message; never raises."""
        if msg.is_self or msg.contact_id in self.accounts:
            return
        msg = cleaned(msg)
        self._heard_in[msg.room_id] = platform.account_id
        self.stats.messages += 1
        if msg.file is not None:  # a file is no command: kept for a #通知 … 附件 that follows
            file = NoticeFile(shown_name(msg.file.name), msg.file.size, msg.file.path)
            self.recent_files.heard(msg.room_id, msg.contact_id, msg.message_id, file, self.clock())
            return
        invocation = self.commands.parse(msg.text)
        if invocation is None:
            # plain chat waits for nobody: it gets no reply whose order could matter
            if watched(self, msg.text) and await self._claim(platform, *_said(msg)):
                await watch(self, msg)
            return
        async with self.turns.of(msg.room_id):
            # claimed in turn: the room's order holds for whichever account answers; the gate
            # counts only what this process answers
            if not await self._claim(platform, *_said(msg)):
                return
            stop = self.gate.screen(msg, invocation, self.clock())
            if stop is not None:
                if stop.reply is not None:
                    await self.outbox.send(platform, msg.room_id, self._render(stop.reply))
                return
            self.stats.commands += 1
            try:
                reply = await self._run(platform, msg, invocation)
                if reply is None:
                    return
                text = self._render(reply)
            except Exception as exc:
                text = self._apology(exc, room=msg.room_id, contact=msg.contact_id, text=msg.text)
                reply = Reply("internal_error.j2")
            await self.outbox.send(platform, msg.room_id, text, reply.mentions)
            for path in reply.files:
                await self.outbox.send(platform, msg.room_id, "", file=path)

    async def _run(self, platform: Platform, msg: IncomingMessage, inv: Invocation) -> Reply | None:
        """The reply to one command; None to stay silent: a '#word' that looks like no command
        (#接龙 is WeChat's own), or a bare 收到 that would only be refused
        (people say 收到 all day; the group must not fill with the bot's answers)."""
        with self.engine.connect() as conn:
            group = group_of(conn, msg.room_id)
            asker = self.authority.asker(conn, msg.contact_id, msg.sender_name)
        command = inv.command
        if group is None and not adopt_chat.answers_outside(command, asker):
            # a room outside the matrix: the bot introduces itself once, then stays quiet
            return None if inv.bare else await adopt_chat.greeting(self, platform, msg.room_id)
        if command is None:
            return self._unknown(inv.name, asker, group)
        if inv.bare and not self.authority.allows(asker, command.who):
            return None
        unit = group.unit_code if group else None
        try:
            self.authority.check(asker, command.who, command.name)
            args = self.commands.bind(command, inv.rest, self.find_unit)
            named = args.get("unit")
            if command.who is Who.OFFICE:
                unit = named or unit or asker.home_unit
                self.authority.check(asker, command.who, command.name, unit)
            with Transaction(self.engine) as tx:
                call = Call(command, args, asker, group, unit, msg, platform, tx, self, inv.bare)
                reply = await self.executors[command.key](call)
                if command.recorded and reply is not None:
                    self._record(call.conn, call, reply)
            return reply
        except UsageError as exc:
            if inv.bare:
                return None
            here = group.unit_code if group else None
            example = roster_example(self.tree, here, exc.command)
            return Reply("usage.j2", {"error": exc, "command": exc.command, "example": example})
        except NotAllowed as exc:  # the relay's finer rules, worded for its action
            return None if inv.bare else Reply("error.j2", {"error": exc})
        except Denied as exc:
            if command.who is Who.OFFICE:
                with self.engine.begin() as conn:
                    audit_log.record(
                        conn,
                        asker.contact_id,
                        "command.denied",
                        exc.unit_code,
                        command=command.key,
                        reason=exc.reason,
                        room=msg.room_id,
                        text=msg.text,
                    )
            return Reply(
                "denied.j2", {"error": exc, "asker": asker, "unit": self._unit_label(exc.unit_code)}
            )
        except MatrixError as exc:
            return None if inv.bare else Reply("error.j2", {"error": exc})

    def _record(self, conn: Connection, call: Call, reply: Reply) -> None:
        args = {k: getattr(v, "key", v) for k, v in call.args.items() if v is not None}
        audit_log.record(
            conn,
            call.asker.contact_id,
            f"command.{call.command.key}",
            call.unit,
            room=call.message.room_id,
            group_id=call.group and call.group.id,
            args=args,
            **reply.audit,
        )

    def _unknown(self, name: str, asker: Asker, group: GroupRef | None) -> Reply | None:
        """A typo of a command the asker may run gets suggestions; other '#words' silence."""
        unit = group.unit_code if group else None
        allowed = [c for c in self.commands if self.authority.allows(asker, c.who, unit)]
        names = [c.name for c in allowed] + [c.alias for c in allowed]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if not close:
            return None
        return Reply("unknown_command.j2", {"typed": name, "suggestions": close})

    def _unit_label(self, code: str | None) -> str:
        if code is None or code not in self.tree:
            return code or ""
        return f"{self.tree.name(code)}（{code}）"

    def _render(self, reply: Reply) -> str:
        return render(f"replies/{reply.template}", **reply.data).strip()

    def _apology(self, exc: Exception, **context: Any) -> str:
        ref = uuid.uuid4().hex[:8]
        self.stats.errors += 1
        logger.opt(exception=exc).error("bot failed, ref {}: {}", ref, context)
        return render("replies/internal_error.j2", ref=ref).strip()

    async def _claim(self, platform: Platform, *key: str) -> bool:
        """Whether this account answers what ``key`` describes (the others that heard it stay
        silent); when the claim cannot be asked for (the database is down), it answers, and
        the handling reports the trouble."""
        try:
            return await self.offload_quick(
                claims.claim,
                self.engine,
                claims.fingerprint(*key),
                platform.account_id,
                self.now().timestamp(),
            )
        except Exception as exc:
            logger.opt(exception=exc).warning("认领消息失败，照常回复：{}", key[:3])
            return True

    # --- room events --------------------------------------------------------------------------

    async def on_room_event(self, platform: Platform, event: RoomEvent) -> None:
        """Handle a join, leave or topic change; never raises."""
        event = cleaned_event(event)
        self._heard_in[event.room_id] = platform.account_id
        async with self.turns.of(event.room_id):
            # a rejoin is a new event: the account holding the claim takes it again
            key = ("e", event.kind.value, event.room_id, *event.contact_ids, event.topic)
            if not await self._claim(platform, *key):
                return
            self.stats.events += 1
            try:
                reply = await self._event(platform, event)
                if reply is None:
                    return
                text = self._render(reply)
            except Exception as exc:
                text = self._apology(exc, room=event.room_id, event=event.kind.value)
                reply = Reply("internal_error.j2")
            await self.outbox.send(platform, event.room_id, text, reply.mentions)

    async def _event(self, platform: Platform, event: RoomEvent) -> Reply | None:
        with self.engine.connect() as conn:
            group = group_of(conn, event.room_id)
        if event.kind is RoomEventKind.ARRIVED:  # the bot itself was brought in
            return None if group else await adopt_chat.greeting(self, platform, event.room_id)
        if group is None:
            return None
        if event.kind is RoomEventKind.JOIN:
            return await joins.joined(self, platform, group, event)
        if event.kind is RoomEventKind.LEAVE:
            joins.left(self, group, event)
            return None
        return joins.topic_changed(self, group, event)
