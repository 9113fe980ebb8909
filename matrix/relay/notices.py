"""``#通知``: checking who may send it, planning where it goes and who sends each copy, and
queuing it all in one transaction. The plan comes back at once so the bot can tell the issuer
how many groups will get it, when it should be done, and whether the deadline is at risk."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from matrix import audit_log
from matrix.relay.accounts import accounts_in_groups, backlog, serving_rates
from matrix.relay.assign import assign
from matrix.relay.codes import notice_code
from matrix.relay.delivery import refresh_queue_stats
from matrix.relay.drafts import parse_notice
from matrix.relay.env import RelayEnv
from matrix.relay.errors import NotAllowed, RelayError
from matrix.relay.guard import enforce
from matrix.relay.people import (
    group_for_room,
    office_roles,
    person_for_contact,
    positions,
    unit,
)
from matrix.relay.targets import relay_targets, unbuilt_count
from matrix.tables import DELIVERY, NOTICE, RELAY_JOB


@dataclass(frozen=True)
class LevelCount:
    """How many target groups are led at one level."""

    level: str  # key
    label: str
    groups: int


@dataclass(frozen=True)
class NoticePlan:
    """What the issuer is told right away (rendered by ``relay/notice_plan.j2``)."""

    code: str
    unit_name: str
    deadline: datetime  # local
    deadline_given: bool
    require_ack: bool
    groups: int
    by_level: list[LevelCount]
    unbuilt: int
    unreachable: int
    accounts: int
    estimated_done: datetime | None  # local; None when no account can send
    estimated_seconds: float | None
    late: bool
    reminders: list[datetime]  # local


def issue_notice(
    env: RelayEnv,
    room_id: str,
    contact_id: str,
    text: str,
    attachments: Sequence[str] = (),
) -> NoticePlan:
    """``#通知 [截止 17:00] [无需回执] 正文`` from ``contact_id`` in ``room_id``.

    Only an office of the unit that leads the group may send it; it goes to every relay group
    in that unit's subtree. Raises a ``RelayError`` (nothing written) when it cannot."""
    now = env.now()
    bp = env.blueprint
    draft = parse_notice(text, now, require_ack=env.options.require_ack)
    with env.engine.connect() as conn:
        group = group_for_room(conn, room_id)
    enforce(env, draft.body, attachments, actor=contact_id, unit_code=group.unit_code, what="通知")
    with env.engine.begin() as conn:
        leader = unit(conn, group.unit_code)
        if leader is None:
            raise NotAllowed("本群的牵头单位已不在名册中", fix="请管理员核对名册")
        person = person_for_contact(conn, contact_id)
        if person is None:
            raise NotAllowed(
                "你不在名册中，不能下发通知", fix="请本单位管理员把你的微信号登记到名册"
            )
        roles = office_roles(bp).get(leader.level, frozenset())
        if not any(u.code == leader.code and r in roles for u, r in positions(conn, person.id)):
            raise NotAllowed(
                f"只有{leader.name}的办公室同志可以在本群下发通知",
                fix="请在你所在单位牵头的工作群里发送，通知只能发往本单位下属的群",
            )
        targets = relay_targets(conn, bp, leader)
        if not targets:
            raise RelayError(
                f"{leader.name}下属还没有建成的接力群，通知无处可发", fix="请先建群，再下发通知"
            )
        rates = serving_rates(conn)
        holders = accounts_in_groups(conn, rates)
        owed = backlog(conn)
        plan = assign([holders.get(t.group_id, []) for t in targets], rates, owed)

        now_utc = now.astimezone(UTC)
        inserted = conn.execute(
            insert(NOTICE).values(
                unit_code=leader.code,
                group_id=group.id,
                issuer_contact=contact_id,
                issuer_person_id=person.id,
                issuer_name=person.name,
                body=draft.body,
                deadline=draft.deadline,
                require_ack=draft.require_ack,
                target_groups=len(targets),
                created_at=now_utc,
            )
        ).inserted_primary_key
        assert inserted is not None
        notice_id = int(inserted[0])
        position: Counter[str] = Counter()
        rows = []
        for target, account in zip(targets, plan.account_of, strict=True):
            if account is None:
                planned = now_utc
            else:
                rate = rates[account]
                ahead = owed.get(account, 0) + position[account]
                planned = now_utc + timedelta(seconds=ahead / rate if rate > 0 else 0)
                position[account] += 1
            rows.append(
                {
                    "key": f"notice:{notice_id}:{target.group_id}",
                    "kind": "notice",
                    "notice_id": notice_id,
                    "group_id": target.group_id,
                    "rank": target.depth,
                    "account_id": account,
                    "state": "pending",
                    "attempts": 0,
                    "resend": False,
                    "next_at": now_utc,
                    "planned_at": planned,
                    "tried": "",
                    "payload": "{}",
                }
            )
        conn.execute(insert(DELIVERY), rows)
        reminders = []
        if draft.require_ack:
            dues = [
                draft.deadline - timedelta(minutes=m) for m in env.options.remind_before_minutes
            ]
            reminders = sorted({d for d in dues if d > now})
            jobs = [{"kind": "remind", "due_at": d} for d in reminders]
            if env.options.escalate:
                jobs.append({"kind": "escalate", "due_at": draft.deadline})
            if jobs:
                conn.execute(
                    insert(RELAY_JOB),
                    [{"notice_id": notice_id, "state": "pending", **j} for j in jobs],
                )
        code = notice_code(notice_id)
        audit_log.record(
            conn,
            contact_id,
            "relay.notice",
            leader.code,
            notice=code,
            group_id=group.id,
            groups=len(targets),
            deadline=draft.deadline.isoformat(),
            require_ack=draft.require_ack,
            chars=len(draft.body),
        )
        unbuilt = unbuilt_count(conn, bp, leader)
    refresh_queue_stats(env.engine, len(rows))

    per_level = Counter(t.level for t in targets)
    by_level = [
        LevelCount(lvl.key, lvl.label, per_level[lvl.key])
        for lvl in bp.levels
        if per_level[lvl.key]
    ]
    used = {a for a in plan.account_of if a is not None}
    done, seconds = None, None
    if used:
        seconds = max(plan.finish[a] for a in used)
        done = env.local(now_utc + timedelta(seconds=seconds))
    late = done is None or done > draft.deadline
    return NoticePlan(
        code=code,
        unit_name=leader.name,
        deadline=draft.deadline,
        deadline_given=draft.deadline_given,
        require_ack=draft.require_ack,
        groups=len(targets),
        by_level=by_level,
        unbuilt=unbuilt,
        unreachable=plan.unreachable,
        accounts=len(used),
        estimated_done=done,
        estimated_seconds=seconds,
        late=late,
        reminders=reminders,
    )
