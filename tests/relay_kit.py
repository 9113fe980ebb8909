"""A relay world for the engine's tests, in one line: the roster's relay groups built as rooms of
the simulated WeChat, several bot accounts in them, a delivery worker per account, and a tiny
router that hands ``#通知`` / ``收到`` / ``#进度`` / ``#上报`` / ``#转报`` straight to the relay core
and renders its answers, so that these tests see every answer the engine gives (the bot itself,
which also checks the command table and keeps a bare 收到 quiet, is tested in conversation in
``tests/chat/test_relay_chat.py``). The clock is virtual: ``deliver()`` runs the relay until
nothing is left (or until a time), jumping from event to event.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, select

from bot.chat.relay_runner import compose
from bot.platforms.simulated import SimMessage, SimulatedAccount, SimulatedWeChat
from bot.render.templates import render
from matrix.blueprint import Blueprint
from matrix.errors import MatrixError
from matrix.platform import IncomingMessage, Presence
from matrix.relay import (
    DeliveryWorker,
    RelayEnv,
    RelayOptions,
    VirtualClock,
    acknowledge,
    drive,
    forward_report,
    issue_notice,
    next_job_at,
    notice_progress,
    parse_ack,
    run_due_jobs,
    submit_report,
    watch_message,
)
from matrix.relay.codes import parse_code
from matrix.tables import GROUP, MEMBERSHIP, PERSON, POSITION, UNIT

TZ = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 24, 9, 0, tzinfo=TZ)


class Wrapping:
    """A bot account seen through a test's wrapper, which overrides what it breaks (usually
    ``send_text``) and passes everything else (presence, callbacks, rooms) through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def build_matrix(
    engine: Engine,
    bp: Blueprint,
    accounts: Sequence[str],
    *,
    world: SimulatedWeChat | None = None,
    shards: dict[str, int] | None = None,
    without_bots: Iterable[str] = (),
    kinds: Iterable[str] | None = None,
    unbuilt: Iterable[str] = (),
) -> dict[tuple[str, str, int], str]:
    """Build every relay group (or ``kinds``) of the roster as a room holding the expected
    members and the bot ``accounts`` (none for units in ``without_bots``; units in ``unbuilt``
    get no group); ``shards`` splits a unit's group, children dealt round-robin. Rooms go into
    ``world`` if given, else they get synthetic ids. Returns (unit code, kind, shard) → room id."""
    wanted = set(kinds) if kinds is not None else {g.key for g in bp.groups if g.relay}
    shards = shards or {}
    skip = set(without_bots)
    missing = set(unbuilt)
    with engine.connect() as conn:
        units = conn.execute(
            select(UNIT.c.code, UNIT.c.name, UNIT.c.level, UNIT.c.parent_code).where(
                UNIT.c.removed_at.is_(None)
            )
        ).all()
        staff: dict[tuple[str, str], list[tuple[int, str, str | None]]] = defaultdict(list)
        for r in conn.execute(
            select(
                POSITION.c.unit_code,
                POSITION.c.role,
                PERSON.c.id,
                PERSON.c.name,
                PERSON.c.wechat_id,
            )
            .join(PERSON, PERSON.c.id == POSITION.c.person_id)
            .order_by(POSITION.c.unit_code, POSITION.c.seq)
        ):
            staff[(r.unit_code, r.role)].append((r.id, r.name, r.wechat_id))
    children: dict[str, list[str]] = defaultdict(list)
    for u in units:
        if u.parent_code:
            children[u.parent_code].append(u.code)
    rooms: dict[tuple[str, str, int], str] = {}
    with engine.begin() as conn:
        for spec in bp.groups:
            if spec.key not in wanted:
                continue
            for u in (u for u in units if u.level == spec.led_by and u.code not in missing):
                n = shards.get(u.code, 1)
                kids = sorted(children[u.code])
                for shard in range(1, n + 1) if n > 1 else [0]:
                    mine = kids if n == 1 else kids[shard - 1 :: n]
                    people: list[tuple[int, str, str | None, bool]] = []
                    for sel in spec.members:
                        sources = [u.code] if sel.scope == "self" else mine
                        for code in sources:
                            holders = staff[(code, sel.role)][: sel.max or None]
                            admin = any(
                                a.role == sel.role and a.scope == sel.scope for a in spec.admins
                            )
                            people += [(pid, name, wx, admin) for pid, name, wx in holders]
                    bots = [] if u.code in skip else list(accounts)
                    name = spec.name.format(
                        unit=u, shard="一二三四五六七八九十"[shard - 1] if shard else ""
                    )
                    contacts = [wx for _, _, wx, _ in people if wx]
                    if world is not None:
                        for _, pname, wx, _ in people:
                            if wx:
                                world.add_contact(wx, pname)
                        owner = bots[0] if bots else contacts[0]
                        room_id = world.create_room(owner, name, [*bots, *contacts])
                    else:
                        room_id = f"room-{u.code}-{spec.key}-{shard}"
                    gid = conn.execute(
                        insert(GROUP).values(
                            unit_code=u.code, kind=spec.key, shard=shard, name=name, room_id=room_id
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                    rows = [
                        {
                            "group_id": gid,
                            "state": state,
                            "person_id": pid,
                            "contact_id": wx,
                            "is_admin": admin,
                            "source": "blueprint" if state == "expected" else "platform",
                        }
                        for pid, _, wx, admin in people
                        for state in ("expected", "actual")
                        if state == "expected" or wx
                    ]
                    if rows:
                        conn.execute(insert(MEMBERSHIP), rows)
                    rooms[(u.code, spec.key, shard)] = room_id
    return rooms


def count(engine: Engine, table: Any) -> int:
    """Rows in a table (a model class)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class RelayWorld:
    """A roster database made into a running relay on the simulated WeChat."""

    def __init__(
        self,
        engine: Engine,
        bp: Blueprint,
        *,
        accounts: Sequence[str] = ("bot1", "bot2"),
        options: RelayOptions | None = None,
        start: datetime = MORNING,
        wrap: Any = None,
        **build: Any,
    ) -> None:
        self.engine = engine
        self.bp = bp
        self.clock = VirtualClock(start)
        self.world = SimulatedWeChat(clock=self.clock)
        # the world's own rate limit is generous: the engine paces itself (options.rate)
        self.bots: list[SimulatedAccount] = [
            self.world.account(a, f"群矩阵助手{i + 1}", rate=100.0, burst=100)
            for i, a in enumerate(accounts)
        ]
        self.env = RelayEnv(
            engine, bp, options or RelayOptions(rate=1.0, jitter=0.0), TZ, self.clock
        )
        self.all_rooms = build_matrix(engine, bp, accounts, world=self.world, **build)
        relay_kinds = {g.key for g in bp.groups if g.relay}
        self.rooms = {(u, s): r for (u, k, s), r in self.all_rooms.items() if k in relay_kinds}
        self.wrap = wrap or (lambda account: account)
        self.workers: list[DeliveryWorker] = []
        self.restart()

    # --- the bot's life -------------------------------------------------------------------------

    def restart(self, faults: Any = None, accounts: Iterable[str] | None = None) -> None:
        """A fresh bot process: new workers (for ``accounts``, default all), taking back what
        the last one left half-done."""
        self.workers = []
        running = set(accounts) if accounts is not None else {b.account_id for b in self.bots}
        for i, acc in enumerate(self.bots):
            acc.message_handlers.clear()
            acc.presence_handlers.clear()
            if acc.account_id not in running:
                continue
            worker = DeliveryWorker(self.env, self.wrap(acc), compose, faults=faults, seed=i)
            acc.on_message(worker.observe)
            acc.on_message(self._listener(acc))
            run(worker.start())
            self.workers.append(worker)

    def deliver(self, until: datetime | None = None) -> None:
        """Run the relay (sends, reminders, escalation) until idle or until ``until``."""
        run(
            drive(
                self.env,
                self.workers,
                until=until,
                jobs=lambda: run_due_jobs(self.env),
                next_job=lambda: next_job_at(self.env),
            )
        )

    # --- people talking -------------------------------------------------------------------------

    def run_world(self, coro: Any) -> Any:
        """Let something happen in the world (a join, a leave)."""
        return run(coro)

    def say(self, contact_id: str, room_id: str, text: str) -> str:
        """``contact_id`` says ``text`` in the room; returns what the bot replied."""
        mark = len(self.world.messages())
        run(self.world.say(room_id, contact_id, text))
        bots = {b.account_id for b in self.bots}
        return "\n".join(
            m.text for m in self.world.messages(room_id, since=mark) if m.contact_id in bots
        )

    def _listener(self, account: SimulatedAccount) -> Any:
        async def on_message(msg: IncomingMessage) -> None:
            if msg.is_self or msg.contact_id in {b.account_id for b in self.bots}:
                return
            members = self.world.room(msg.room_id).members
            speaker = next(
                b
                for b in self.bots
                if b.account_id in members and b.message_handlers and b.presence is Presence.ONLINE
            )
            if speaker is not account:  # one account answers per room
                return
            try:
                reply = self.dispatch(msg)
            except MatrixError as exc:
                reply = str(exc)
            if reply:
                await account.send_text(msg.room_id, reply)

        return on_message

    def dispatch(self, msg: IncomingMessage) -> str | None:
        """The few commands the relay owns, as the bot will route them."""
        text = msg.text.strip()
        env, room, who = self.env, msg.room_id, msg.contact_id
        for command, handler in (
            (
                "#通知",
                lambda rest: render(
                    "relay/notice_plan.j2", plan=issue_notice(env, room, who, rest)
                ),
            ),
            (
                "#进度",
                lambda rest: render(
                    "relay/progress.j2", p=notice_progress(env, _code(rest), asker=who), final=False
                ),
            ),
            (
                "#上报",
                lambda rest: render(
                    "relay/report_receipt.j2", r=submit_report(env, room, who, rest)
                ),
            ),
            (
                "#转报",
                lambda rest: render("relay/report_receipt.j2", r=forward_report(env, who, rest)),
            ),
        ):
            if text.startswith(command):
                return str(handler(text[len(command) :].strip()))
        if (ack := parse_ack(text)) is not None:
            return render("relay/ack.j2", a=acknowledge(env, room, who, ack))
        watch_message(env, room, who, text)
        return None

    # --- looking -----------------------------------------------------------------------------

    def room(self, unit_code: str, shard: int = 0, kind: str | None = None) -> str:
        """The unit's relay group (or its group of ``kind``)."""
        if kind is not None:
            return self.all_rooms[(unit_code, kind, shard)]
        return self.rooms[(unit_code, shard)]

    def texts(self, room_id: str) -> list[str]:
        return [m.text for m in self.world.messages(room_id)]

    def bot_messages(self, room_id: str | None = None) -> list[SimMessage]:
        bots = {b.account_id for b in self.bots}
        return [m for m in self.world.messages(room_id) if m.contact_id in bots]

    def copies(self, room_id: str, code: str) -> list[str]:
        """The copies of notice ``code`` in a room, in order."""
        return [m.text for m in self.bot_messages(room_id) if f"【通知 {code}】" in m.text]

    def contact(self, unit_code: str, role: str, nth: int = 0) -> str:
        """The WeChat id of the ``nth`` holder of ``role`` at ``unit_code``."""
        with self.engine.connect() as conn:
            ids = (
                conn.execute(
                    select(PERSON.c.wechat_id)
                    .join(POSITION, POSITION.c.person_id == PERSON.c.id)
                    .where(POSITION.c.unit_code == unit_code, POSITION.c.role == role)
                    .order_by(POSITION.c.seq)
                )
                .scalars()
                .all()
            )
        return str(ids[nth])


def _code(text: str) -> int:
    found = parse_code(text, "T")
    if found is None:
        raise MatrixError("看不懂通知编号", fix="请这样发送：#进度 T1")
    return found
