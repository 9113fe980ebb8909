"""Carrying out a plan through the platform port, one recorded step at a time.

``start_run`` stores the plan's steps (``provision_run``, ``provision_step``) in one
transaction, together with a group row for every room to be made and who each room of the scope
should hold (``expected`` membership rows, which the summaries count). ``run_steps`` then does them in
order of day and sequence; each step is marked ``started`` before the platform call and ``done``
with its effect on the stored state (room id, members, admins, name) in one transaction after it.

So an apply that stops — a crash, a lost connection, the quota for today used up — is resumed
by running again: done steps are never repeated, and a step left ``started`` (the process died
during the call) is first checked on the platform and only tried again if it did not happen.
A new plan is not made for a scope while a run of it is open.

Each account keeps to its quotas per calendar day (creations, operations), counted from the
steps it has done that day; the rest waits for the next day's apply. The schedule's day numbers
are the forecast, the quotas are what is enforced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from matrix import audit_log
from matrix.db import inserted_id
from matrix.models import utcnow
from matrix.platform import AddOutcome, Platform, PlatformError, RateLimited
from matrix.provisioning.binding import contacts_of
from matrix.provisioning.membership import record_expected
from matrix.provisioning.plan import STEP_EVERY, Plan
from matrix.provisioning.schedule import AccountQuota
from matrix.tables import GROUP, MEMBERSHIP, PROVISION_RUN, PROVISION_STEP

CHUNK = 20_000  # step rows per insert

Sleep = Callable[[float], Awaitable[None]]
Progress = Callable[["ApplyReport"], Awaitable[None]]


@dataclass
class ApplyReport:
    """What one call of ``run_steps`` did."""

    run_id: int
    done: int = 0
    confirmed: int = 0  # steps left started by an earlier apply, found done on the platform
    failed: int = 0
    waiting: int = 0  # steps not yet due, or whose account is not connected
    stopped: str = ""  # why the apply stopped early (a retryable platform error), if it did
    finished: bool = False
    errors: list[str] = field(default_factory=list)


def open_run(conn: Connection, scope: str) -> int | None:
    """The open (interrupted or not yet finished) run of ``scope``, if any."""
    found = conn.execute(
        select(PROVISION_RUN.c.id).where(
            PROVISION_RUN.c.scope == scope, PROVISION_RUN.c.status == "open"
        )
    ).scalar()
    return None if found is None else int(found)


def start_run(engine: Engine, plan: Plan, actor: str) -> tuple[int, bool]:
    """Store ``plan`` as a run, or return the scope's open run; (run id, resumed)."""
    try:
        return _start_run(engine, plan, actor)
    except IntegrityError:
        # another process stored a run of this scope meanwhile (one open run per scope)
        with engine.connect() as conn:
            current = open_run(conn, plan.scope)
        if current is None:
            raise
        return current, True


def _start_run(engine: Engine, plan: Plan, actor: str) -> tuple[int, bool]:
    with engine.begin() as conn:
        current = open_run(conn, plan.scope)
        if current is not None:
            return current, True
        now = utcnow()
        run_id = inserted_id(
            conn.execute(
                insert(PROVISION_RUN).values(
                    scope=plan.scope,
                    actor=actor,
                    status="open",
                    days=plan.schedule.days,
                    created_at=now,
                )
            )
        )
        group_ids = _group_rows(conn, plan)
        record_expected(conn, plan.survey.targets, group_ids)
        rows: list[dict[str, Any]] = []
        for seq, a in enumerate(plan.actions(), start=1):
            detail: dict[str, Any] = {"name": a.name}
            if a.action == "create":
                detail["members"] = list(a.members)
            elif a.action == "rename":
                detail["previous"] = a.previous
            elif a.action == "invite":
                detail["invitation"] = a.invitation
            rows.append(
                {
                    "run_id": run_id,
                    "seq": seq,
                    "action": a.action,
                    "group_id": group_ids[(a.unit, a.kind, a.shard)],
                    "person_id": a.person,
                    "contact_id": a.contact,
                    "account": a.account,
                    "day": a.day,
                    "detail": json.dumps(detail, ensure_ascii=False),
                    "status": "pending",
                }
            )
            if len(rows) >= CHUNK:
                conn.execute(insert(PROVISION_STEP), rows)
                rows = []
        if rows:
            conn.execute(insert(PROVISION_STEP), rows)
        audit_log.record(
            conn,
            actor,
            "provision.start",
            plan.scope,
            run=run_id,
            days=plan.schedule.days,
            **plan.counts(),
        )
    return run_id, False


def _group_rows(conn: Connection, plan: Plan) -> dict[tuple[str, str, int], int]:
    """A group row for every room the plan touches; a room that splits takes its new shard
    number (0 → 1) here."""
    ids: dict[tuple[str, str, int], int] = {}
    for g in plan.groups:
        t = g.target
        if not g.work:
            continue
        if t.room is not None:
            if t.room.shard != t.shard:
                conn.execute(update(GROUP).where(GROUP.c.id == t.room.id).values(shard=t.shard))
            ids[(t.unit, t.kind, t.shard)] = t.room.id
            continue
        ids[(t.unit, t.kind, t.shard)] = inserted_id(
            conn.execute(
                insert(GROUP).values(
                    unit_code=t.unit,
                    kind=t.kind,
                    shard=t.shard,
                    name=t.name,
                    room_id=None,
                    created_at=utcnow(),
                )
            )
        )
    return ids


async def run_steps(
    engine: Engine,
    run_id: int,
    platforms: Mapping[str, Platform],
    *,
    accounts: Sequence[AccountQuota] = (),
    actor: str = "system",
    now: datetime | None = None,
    through_day: int | None = None,
    sleep: Sleep | None = None,
    retries: int = 3,
    progress: Progress | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> ApplyReport:
    """Do the run's remaining steps on the connected ``platforms`` (account id → port).

    Each account stays within its quotas for the day of ``now`` (default: today, UTC),
    counting what it already did today in any run, and paces itself at ``ops_per_second``;
    what does not fit waits for the next apply. ``through_day`` also holds back the steps the
    schedule put after that day. A group whose creation waits or failed has its other steps
    wait or fail with it. ``progress`` hears the report after every step done or failed."""
    pause: Sleep = sleep or asyncio.sleep
    quotas = {a.id: a for a in accounts}
    pace = {a.id: 1.0 / a.ops_per_second for a in accounts if a.ops_per_second > 0}
    midnight = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
    # a national run has hundreds of thousands of steps: read them off the event loop
    used = await asyncio.to_thread(_used_since, engine, midnight)
    steps, known = await asyncio.to_thread(_steps_to_do, engine, run_id)
    report = ApplyReport(run_id)
    waiting_groups: set[int] = set()
    failed_groups: set[int] = set()
    # one connection, one short transaction per write: no transaction stays open across a
    # platform call (a call can take seconds; others must be able to write meanwhile)
    with engine.connect() as db:
        for step in _counted(steps, on_step):
            platform = platforms.get(step.account)
            quota = quotas.get(step.account)
            made, ops = used.get(step.account, (0, 0))
            over = quota is not None and (
                ops >= quota.daily_ops
                or (step.action == "create" and made >= quota.daily_creations)
            )
            if step.group_id in failed_groups:
                _finish(db, step, "failed", "建群未成功，本群其余步骤未执行", effect=None, at=now)
                report.failed += 1
                continue
            if (
                platform is None
                or over
                or step.group_id in waiting_groups
                or (through_day is not None and step.day > through_day)
            ):
                report.waiting += 1
                if step.action == "create":
                    waiting_groups.add(step.group_id)
                continue
            if step.status == "started":
                effect = await _happened(engine, platform, step, known)
                if effect is not None:
                    _finish(db, step, "done", None, effect=effect, at=now, known=known)
                    report.confirmed += 1
                    continue
            with db.begin():
                db.execute(
                    update(PROVISION_STEP)
                    .where(PROVISION_STEP.c.id == step.id)
                    .values(status="started")
                )
            attempt = 0
            while True:
                try:
                    effect = await _perform(platform, step, known)
                except RateLimited as exc:
                    attempt += 1
                    if attempt > retries:
                        _reset(db, step)
                        report.stopped = str(exc) or "rate limited"
                        return _close(db, report, actor)
                    await pause(exc.retry_after)
                    continue
                except PlatformError as exc:
                    if exc.retryable:
                        _reset(db, step)
                        report.stopped = str(exc)
                        return _close(db, report, actor)
                    _finish(db, step, "failed", str(exc)[:500], effect=None, at=now)
                    report.failed += 1
                    report.errors.append(f"{step.action} #{step.seq}: {exc}")
                    if step.action == "create":
                        failed_groups.add(step.group_id)
                    break
                _finish(db, step, "done", None, effect=effect, at=now, known=known)
                report.done += 1
                break
            used[step.account] = (made + (step.action == "create"), ops + 1)
            if progress is not None:
                await progress(report)
            if step.account in pace:
                await pause(pace[step.account])
        return _close(db, report, actor)


def _counted(steps: Sequence[Any], on_step: Callable[[int, int], None] | None) -> Iterator[Any]:
    """``steps`` one by one, telling ``on_step`` (steps gone through, steps to do) now and
    then and once all are gone through (not when the run stops early)."""
    for i, step in enumerate(steps):
        if on_step is not None and i % STEP_EVERY == 0:
            on_step(i, len(steps))
        yield step
    if on_step is not None:
        on_step(len(steps), len(steps))


def _steps_to_do(engine: Engine, run_id: int) -> tuple[Sequence[Any], _Known]:
    with engine.connect() as conn:
        steps = conn.execute(
            select(PROVISION_STEP)
            .where(
                PROVISION_STEP.c.run_id == run_id,
                PROVISION_STEP.c.status.in_(("pending", "started")),
            )
            .order_by(PROVISION_STEP.c.day, PROVISION_STEP.c.seq)
        ).all()
        return steps, _Known.load(conn, steps)


@dataclass
class _Known:
    """What the steps of one apply look up again and again, read once: each group's room id
    (filled in as rooms are created) and how to reach each person (bound contact or 微信号)."""

    rooms: dict[int, str | None]
    reach: dict[int, str]

    @classmethod
    def load(cls, conn: Connection, steps: Sequence[Any]) -> _Known:
        groups = sorted({s.group_id for s in steps})
        rooms: dict[int, str | None] = {}
        for i in range(0, len(groups), 500):
            rooms.update(
                (int(gid), room)
                for gid, room in conn.execute(
                    select(GROUP.c.id, GROUP.c.room_id).where(GROUP.c.id.in_(groups[i : i + 500]))
                )
            )
        persons = {s.person_id for s in steps if s.person_id is not None}
        for s in steps:
            persons.update(_detail(s).get("members", []))
        return cls(rooms, contacts_of(conn, persons))

    def whom(self, step: Any) -> tuple[str | None, str | None]:
        """The step's room id (None until created) and the contact it acts on (None if none)."""
        contact = step.contact_id
        if contact is None and step.person_id is not None:
            contact = self.reach.get(step.person_id)
        return self.rooms.get(step.group_id), contact


def _used_since(engine: Engine, start: datetime) -> dict[str, tuple[int, int]]:
    """Per account: (groups created, operations done) since ``start``, over every run."""
    out: dict[str, tuple[int, int]] = {}
    with engine.connect() as conn:
        for account, action, n in conn.execute(
            select(PROVISION_STEP.c.account, PROVISION_STEP.c.action, func.count())
            .where(PROVISION_STEP.c.status == "done", PROVISION_STEP.c.done_at >= start)
            .group_by(PROVISION_STEP.c.account, PROVISION_STEP.c.action)
        ):
            made, ops = out.get(account, (0, 0))
            out[account] = (made + (n if action == "create" else 0), ops + n)
    return out


async def apply_plan(
    engine: Engine,
    plan: Plan,
    platforms: Mapping[str, Platform],
    *,
    actor: str,
    now: datetime | None = None,
    through_day: int | None = None,
    sleep: Sleep | None = None,
    progress: Progress | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> ApplyReport:
    """Start (or resume) the run of ``plan``'s scope and carry out today's share of its steps."""
    run_id, _ = start_run(engine, plan, actor)
    return await run_steps(
        engine,
        run_id,
        platforms,
        accounts=plan.accounts,
        actor=actor,
        now=now,
        through_day=through_day,
        sleep=sleep,
        progress=progress,
        on_step=on_step,
    )


def _close(db: Connection, report: ApplyReport, actor: str) -> ApplyReport:
    with db.begin():
        left = db.execute(
            select(PROVISION_STEP.c.id).where(
                PROVISION_STEP.c.run_id == report.run_id,
                PROVISION_STEP.c.status.in_(("pending", "started")),
            )
        ).first()
        if left is None:
            db.execute(
                update(PROVISION_RUN)
                .where(PROVISION_RUN.c.id == report.run_id)
                .values(status="finished", finished_at=utcnow())
            )
            report.finished = True
        audit_log.record(
            db,
            actor,
            "provision.finish" if report.finished else "provision.pause",
            None,
            run=report.run_id,
            done=report.done + report.confirmed,
            failed=report.failed,
            waiting=report.waiting,
            stopped=report.stopped,
        )
    return report


def _reset(db: Connection, step: Any) -> None:
    # the call certainly did not happen: plain pending, no check needed on resume
    with db.begin():
        db.execute(
            update(PROVISION_STEP).where(PROVISION_STEP.c.id == step.id).values(status="pending")
        )


def _detail(step: Any) -> dict[str, Any]:
    return dict(json.loads(step.detail or "{}"))


async def _perform(platform: Platform, step: Any, known: _Known) -> dict[str, Any]:
    """Make the platform call of one step; return what to record about it."""
    detail = _detail(step)
    room_id, contact = known.whom(step)
    if step.action == "create":
        members = [(pid, cid) for pid in detail.get("members", []) if (cid := known.reach.get(pid))]
        new_id = await platform.create_room(detail["name"], [cid for _, cid in members])
        return {"room_id": new_id, "members": members}
    if room_id is None:
        raise PlatformError("群尚未建立，无法执行此步骤", retryable=False)
    if step.action == "rename":
        await platform.set_topic(room_id, detail["name"])
        return {}
    if contact is None:
        raise PlatformError("此人没有微信号或已绑定的联系人", retryable=False)
    if step.action == "invite":
        outcome = await platform.add_member(room_id, contact)
        return {"contact": contact, "outcome": outcome.value}
    if step.action == "remove":
        await platform.remove_member(room_id, contact)
        return {"contact": contact}
    await platform.set_admin(room_id, contact)
    return {"contact": contact}


async def _happened(
    engine: Engine, platform: Platform, step: Any, known: _Known
) -> dict[str, Any] | None:
    """The effect of a step left ``started``, if it took place on the platform before the
    process stopped; None if it did not (then it is simply tried again)."""
    detail = _detail(step)
    room_id, contact = known.whom(step)
    if step.action == "create":
        with engine.connect() as conn:
            taken = {r[0] for r in conn.execute(select(GROUP.c.room_id)) if r[0]}
        for room in await platform.list_rooms():
            if room.topic == detail["name"] and room.room_id not in taken:
                present = await platform.list_members(room.room_id)
                by_contact = {known.reach.get(pid): pid for pid in detail.get("members", [])}
                seated = [
                    (by_contact[m.contact_id], m.contact_id)
                    for m in present
                    if m.contact_id in by_contact
                ]
                return {"room_id": room.room_id, "members": seated}
        return None
    if room_id is None:
        return None
    if step.action == "rename":
        rooms = await platform.list_rooms()
        done = any(r.room_id == room_id and r.topic == detail["name"] for r in rooms)
        return {} if done else None
    members = {m.contact_id: m for m in await platform.list_members(room_id)}
    if step.action == "invite":
        # an invitation still waiting cannot be told from one never sent: only a member counts
        return (
            {"contact": contact, "outcome": AddOutcome.ADDED.value} if contact in members else None
        )
    if step.action == "remove":
        return {"contact": contact} if contact not in members else None
    return {"contact": contact} if contact in members and members[contact].is_admin else None


def _finish(
    db: Connection,
    step: Any,
    status: str,
    error: str | None,
    effect: dict[str, Any] | None,
    at: datetime | None = None,
    known: _Known | None = None,
) -> None:
    """Mark the step and record its effect, in one transaction."""
    now = at or utcnow()
    with db.begin():
        if effect is not None:
            _record(db, step, effect, now)
            if known is not None and step.action == "create":
                known.rooms[step.group_id] = effect["room_id"]
        db.execute(
            update(PROVISION_STEP)
            .where(PROVISION_STEP.c.id == step.id)
            .values(status=status, error=error, done_at=now)
        )


def _seat(
    group_id: int, person: int | None, contact: str, state: str, now: datetime
) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "state": state,
        "person_id": person,
        "contact_id": contact,
        "is_admin": False,
        "nickname": None,
        "source": "bot",
        "updated_at": now,
    }


def _record(conn: Connection, step: Any, effect: dict[str, Any], now: datetime) -> None:
    gid = step.group_id
    if step.action == "create":
        conn.execute(
            update(GROUP)
            .where(GROUP.c.id == gid)
            .values(room_id=effect["room_id"], owner_account=step.account)
        )
        if effect["members"]:
            conn.execute(
                insert(MEMBERSHIP), [_seat(gid, p, c, "actual", now) for p, c in effect["members"]]
            )
    elif step.action == "invite":
        state = "actual" if effect["outcome"] == AddOutcome.ADDED.value else "invited"
        if state == "actual":
            # the join may already be stored (the bot heard the room's join event in the call)
            conn.execute(
                delete(MEMBERSHIP).where(
                    MEMBERSHIP.c.group_id == gid,
                    MEMBERSHIP.c.state.in_(("actual", "invited")),
                    MEMBERSHIP.c.contact_id == effect["contact"],
                )
            )
        conn.execute(
            insert(MEMBERSHIP), [_seat(gid, step.person_id, effect["contact"], state, now)]
        )
    elif step.action == "remove":
        conn.execute(
            delete(MEMBERSHIP).where(
                MEMBERSHIP.c.group_id == gid,
                MEMBERSHIP.c.state == "actual",
                MEMBERSHIP.c.contact_id == effect["contact"],
            )
        )
    elif step.action == "set_admin":
        conn.execute(
            update(MEMBERSHIP)
            .where(
                MEMBERSHIP.c.group_id == gid,
                MEMBERSHIP.c.state == "actual",
                MEMBERSHIP.c.contact_id == effect["contact"],
            )
            .values(is_admin=True, updated_at=now)
        )
    else:
        conn.execute(update(GROUP).where(GROUP.c.id == gid).values(name=_detail(step)["name"]))


class Applies:
    """The applies running in this process, by scope (a unit code), and the lock under which a
    go-ahead checks for a running one and starts its own (two #确认 in different rooms must not
    both find none running and both start)."""

    def __init__(self) -> None:
        self.running: dict[str, asyncio.Task[None]] = {}
        self.admission = asyncio.Lock()

    def __len__(self) -> int:
        return len(self.running)

    def busy(self, scope: str, overlap: Callable[[str, str], bool]) -> str | None:
        """A running apply's scope that ``overlap``s ``scope``, or None."""
        return next((s for s in self.running if overlap(s, scope)), None)

    def started(self, scope: str, task: asyncio.Task[None]) -> None:
        self.running[scope] = task

    def finished(self, scope: str) -> None:
        self.running.pop(scope, None)


def open_scopes(conn: Connection) -> list[str]:
    """The scopes of the runs still open (interrupted or waiting for tomorrow's quotas)."""
    query = select(PROVISION_RUN.c.scope).where(PROVISION_RUN.c.status == "open")
    return [str(s) for s in conn.execute(query).scalars()]


_LEFT = ("pending", "started")


def steps_left(engine: Engine, run_id: int) -> int:
    """How many steps of the run are still to do."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    PROVISION_STEP.c.run_id == run_id, PROVISION_STEP.c.status.in_(_LEFT)
                )
            ).scalar_one()
        )


def accounts_left(engine: Engine, run_id: int) -> set[str]:
    """The accounts the run's remaining steps are scheduled on."""
    with engine.connect() as conn:
        query = (
            select(PROVISION_STEP.c.account)
            .where(PROVISION_STEP.c.run_id == run_id, PROVISION_STEP.c.status.in_(_LEFT))
            .distinct()
        )
        return {str(r[0]) for r in conn.execute(query)}
