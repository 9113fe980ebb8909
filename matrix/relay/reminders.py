"""Reminders before the deadline and escalation at it, as scheduled jobs in the database;
the same jobs send a scheduled notice (``send``) and each occurrence of a recurring one
(``repeat``, ``matrix.relay.lifecycle``).

``issue_notice`` writes the jobs (one per reminder round, one escalation); ``run_due_jobs`` runs
whichever are due, each in one transaction that queues its messages and marks it done, so a
restart neither loses nor repeats a round. Jobs are claimed ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several bot processes may all call it.

- A **reminder** goes to every delivered group that still has unacknowledged child units, naming
  them and @-mentioning their responsible persons (the group's main role for child units, e.g.
  the brigade counselor).
- The **escalation** sends each office that got the notice (except the issuer's) the laggards in
  its own subtree, to its office group, and the issuer the whole picture in the group where the
  notice was issued.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from matrix.relay.acks import Laggard, progress_in, unacknowledged
from matrix.relay.codes import notice_code
from matrix.relay.env import RelayEnv
from matrix.relay.lifecycle import run_repeat_job, run_send_job
from matrix.relay.outbox import Outbox
from matrix.relay.people import GroupRef, UnitRef, child_roles, group, office_group, unit
from matrix.relay.targets import answers_for_itself
from matrix.tables import (
    DELIVERY,
    FORM,
    GROUP,
    MEMBERSHIP,
    NOTICE,
    PERSON,
    POSITION,
    RELAY_JOB,
    UNIT,
)

MAX_MENTIONS = 50  # WeChat shows a wall of @s badly; the names are listed anyway


def next_job_at(env: RelayEnv) -> datetime | None:
    """When the next scheduled job falls due."""
    with env.engine.connect() as conn:
        due: datetime | None = conn.execute(
            select(func.min(RELAY_JOB.c.due_at)).where(RELAY_JOB.c.state == "pending")
        ).scalar()
    return due


def run_due_jobs(env: RelayEnv) -> int:
    """Run every job that is due; returns how many messages were queued."""
    queued = 0
    while True:
        with env.engine.begin() as conn:
            job = conn.execute(
                select(RELAY_JOB)
                .where(RELAY_JOB.c.state == "pending", RELAY_JOB.c.due_at <= env.clock.now())
                .order_by(RELAY_JOB.c.due_at, RELAY_JOB.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if job is None:
                return queued
            if job.kind == "remind":
                queued += _remind(conn, env, job.id, job.notice_id)
            elif job.kind == "send":  # a scheduled notice
                queued += run_send_job(conn, env, job.notice_id)
            elif job.kind == "repeat":  # one occurrence of a recurring notice, and the next
                queued += run_repeat_job(conn, env, job.notice_id, job.due_at)
            else:
                queued += _escalate(conn, env, job.id, job.notice_id)
            conn.execute(
                update(RELAY_JOB)
                .where(RELAY_JOB.c.id == job.id)
                .values(state="done", done_at=env.clock.now())
            )


def _notice(conn: Connection, notice_id: int) -> Any:
    return conn.execute(select(NOTICE).where(NOTICE.c.id == notice_id)).one()


def _remind(conn: Connection, env: RelayEnv, job_id: int, notice_id: int) -> int:
    notice = _notice(conn, notice_id)
    issuer = unit(conn, notice.unit_code)
    if issuer is None:
        return 0
    laggards = unacknowledged(conn, notice_id, issuer, env.blueprint)
    if not laggards:
        return 0
    delivered: dict[str, list[GroupRef]] = defaultdict(list)
    for r in conn.execute(
        select(GROUP)
        .join(DELIVERY, DELIVERY.c.group_id == GROUP.c.id)
        .where(
            DELIVERY.c.notice_id == notice_id,
            DELIVERY.c.kind == "notice",
            DELIVERY.c.state == "sent",
        )
        .order_by(GROUP.c.shard, GROUP.c.id)
    ):
        delivered[r.unit_code].append(
            GroupRef(r.id, r.unit_code, r.kind, r.shard, r.name, r.room_id)
        )
    by_group: dict[int, list[Laggard]] = defaultdict(list)
    groups: dict[int, GroupRef] = {}
    # a unit is reminded where it answers: in its parent's group, or in its own group when
    # that is answered by the unit itself and the parent's group was not reached
    waiting = [lag for lag in laggards if lag.parent_code in delivered or lag.code in delivered]
    home = _home_shards(conn, [w for w in waiting if w.parent_code in delivered], delivered)
    for lag in waiting:
        g = home.get(lag.code) or (delivered.get(lag.parent_code) or delivered[lag.code])[0]
        by_group[g.id].append(lag)
        groups[g.id] = g
    minutes = max(0, round((notice.deadline - env.clock.now()).total_seconds() / 60))
    form = _form_of(conn, notice_id)
    outbox = Outbox(conn, env)
    main_role = {k: _whom_to_mention(env, k) for k in {g.kind for g in groups.values()}}
    responsible = _responsible(conn, issuer, set(main_role.values()) - {""})
    for gid, lags in by_group.items():
        g = groups[gid]
        role = main_role[g.kind]
        mentions = list(
            dict.fromkeys(c for lag in lags for c in responsible.get((lag.code, role), ()))
        )
        outbox.add(
            key=f"remind:{job_id}:{gid}",
            kind="remind",
            group=g,
            notice_id=notice_id,
            template="relay/reminder.j2",
            context={
                "code": notice_code(notice_id),
                "unit_name": issuer.name,
                "deadline": notice.deadline.isoformat(),
                "minutes_left": minutes,
                "units": [lag.name for lag in lags[: env.options.list_limit]],
                "more": max(0, len(lags) - env.options.list_limit),
                "form": form,
            },
            mentions=mentions[:MAX_MENTIONS],
            times=["deadline"],
        )
    return outbox.flush()


def _form_of(conn: Connection, notice_id: int) -> str | None:
    """The form (填报) a notice carries, as people type it: its laggards answer with #填."""
    form_id = conn.execute(select(FORM.c.id).where(FORM.c.notice_id == notice_id)).scalar()
    return None if form_id is None else f"F{form_id}"


def _whom_to_mention(env: RelayEnv, kind: str) -> str:
    """The role to @ for a laggard: the group's main role for child units (its first children
    selector), or, in a group its leading unit answers itself, the person in charge."""
    if answers_for_itself(env.blueprint, kind):
        spec = env.blueprint.group(kind)
        return (spec.responsible or spec.members[0]).role
    return (child_roles(env.blueprint, kind) or [""])[0]


def _home_shards(
    conn: Connection, laggards: list[Laggard], delivered: dict[str, list[GroupRef]]
) -> dict[str, GroupRef]:
    """For units whose leader has several shards, the shard their people are in."""
    split = [lag.code for lag in laggards if len(delivered[lag.parent_code]) > 1]
    if not split:
        return {}
    shard_of = {g.id: g for gs in delivered.values() if len(gs) > 1 for g in gs}
    rows = conn.execute(
        select(POSITION.c.unit_code, MEMBERSHIP.c.group_id)
        .join(MEMBERSHIP, MEMBERSHIP.c.person_id == POSITION.c.person_id)
        .where(POSITION.c.unit_code.in_(split), MEMBERSHIP.c.group_id.in_(list(shard_of)))
        .order_by(MEMBERSHIP.c.group_id)
    )
    home: dict[str, GroupRef] = {}
    for code, gid in rows:
        home.setdefault(code, shard_of[gid])
    return home


def _responsible(
    conn: Connection, scope: UnitRef, roles: set[str]
) -> dict[tuple[str, str], list[str]]:
    """(unit, role) → contact ids of the holders in ``scope`` (those with a WeChat id), read in
    one query for a whole reminder round."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    if not roles:
        return found
    rows = conn.execute(
        select(POSITION.c.unit_code, POSITION.c.role, PERSON.c.wechat_id)
        .join(PERSON, PERSON.c.id == POSITION.c.person_id)
        .join(UNIT, UNIT.c.code == POSITION.c.unit_code)
        .where(
            UNIT.c.path.startswith(scope.path, autoescape=True),
            POSITION.c.role.in_(sorted(roles)),
            PERSON.c.removed_at.is_(None),
            PERSON.c.wechat_id.is_not(None),
        )
        .order_by(POSITION.c.unit_code, POSITION.c.seq)
    )
    for unit_code, role, contact in rows:
        found[(unit_code, role)].append(contact)
    return found


def _escalate(conn: Connection, env: RelayEnv, job_id: int, notice_id: int) -> int:
    notice = _notice(conn, notice_id)
    issuer = unit(conn, notice.unit_code)
    if issuer is None:
        return 0
    limit = env.options.list_limit
    laggards = unacknowledged(conn, notice_id, issuer, env.blueprint)
    offices = set(
        conn.execute(
            select(GROUP.c.unit_code)
            .join(DELIVERY, DELIVERY.c.group_id == GROUP.c.id)
            .where(DELIVERY.c.notice_id == notice_id, DELIVERY.c.kind == "notice")
            .distinct()
        ).scalars()
    )
    offices.discard(issuer.code)
    lists: dict[str, list[Laggard]] = defaultdict(list)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for lag in laggards:
        for code in lag.path.strip("/").split("/")[:-1]:
            if code in offices:
                counts[code][lag.level] += 1
                if len(lists[code]) < limit:
                    lists[code].append(lag)
    outbox = Outbox(conn, env)
    form = _form_of(conn, notice_id)
    labels = {lvl.key: lvl.label for lvl in env.blueprint.levels}
    for code in sorted(counts):
        office = unit(conn, code)
        target = office_group(conn, env.blueprint, code)
        if office is None or target is None:
            continue
        total = sum(counts[code].values())
        outbox.add(
            key=f"escalate:{job_id}:{code}",
            kind="escalate",
            group=target,
            notice_id=notice_id,
            template="relay/escalation.j2",
            context={
                "code": notice_code(notice_id),
                "unit_name": issuer.name,
                "office_name": office.name,
                "deadline": notice.deadline.isoformat(),
                "by_level": [
                    {"label": labels.get(lvl, lvl), "count": n}
                    for lvl, n in sorted(counts[code].items(), key=lambda kv: _depth(env, kv[0]))
                ],
                "total": total,
                "units": [lag.name for lag in lists[code]],
                "more": total - len(lists[code]),
                "form": form,
            },
            times=["deadline"],
        )
    if notice.group_id is not None:
        _tell_issuer(outbox, job_id, notice_id, group(conn, notice.group_id))
    return outbox.flush()


def _depth(env: RelayEnv, level: str) -> int:
    return env.blueprint.depth(level) if env.blueprint.find_level(level) else 99


def _tell_issuer(outbox: Outbox, job_id: int, notice_id: int, where: GroupRef) -> None:
    context = _jsonable(dataclasses.asdict(progress_in(outbox.conn, outbox.env, notice_id)))
    outbox.add(
        key=f"escalate:{job_id}:issuer",
        kind="escalate",
        group=where,
        notice_id=notice_id,
        template="relay/progress.j2",
        context={"p": context, "final": True},
        times=["p.deadline", "p.now"],
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
