"""``#通知``: checking who may send it, planning where it goes and who sends each copy, and
queuing it all in one transaction. The plan comes back at once so the bot can tell the issuer
how many groups will get it, when it should be done, and whether the deadline is at risk.

Not every notice goes out at once. One to more than ``confirm_above`` groups is *held*: the
issuer sees the plan and sends ``#确认`` (``matrix.relay.lifecycle``); one with ``定时`` is
*scheduled* and one with ``每周五 9:00`` *recurring*, each a relay job
(``matrix.relay.reminders``). All of them go out through ``release_notice``, which plans the
copies again at that moment (accounts and groups may have changed meanwhile)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from matrix import audit_log
from matrix.provisioning.authority import Who, refusal
from matrix.relay.accounts import accounts_in_groups, backlog, serving_rates
from matrix.relay.announcements import Announcing, queue_announcements
from matrix.relay.assign import Assignment, assign
from matrix.relay.attachments import (
    NoticeFile,
    check_files,
    file_rows,
    files_json,
    no_files_found,
    notice_files,
    store_files,
)
from matrix.relay.codes import notice_code
from matrix.relay.delivery import refresh_queue_stats
from matrix.relay.drafts import NoticeDraft, parse_notice
from matrix.relay.env import RelayEnv
from matrix.relay.errors import RelayError, refused
from matrix.relay.guard import enforce
from matrix.relay.people import (
    GroupRef,
    PersonRef,
    UnitRef,
    group,
    group_for_room,
    relay_asker,
    unit,
)
from matrix.relay.targets import Target, relay_targets, unbuilt_count
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
    state: str = "live"  # held (waits for #确认), scheduled, recurring, or live (going out)
    send_at: datetime | None = None  # local: when a scheduled or recurring one goes out
    repeat: str | None = None  # ``weekly:4:09:00``, see ``matrix.relay.drafts.next_time``
    confirm_by: datetime | None = None  # local: a held notice's #确认 is due by then
    corrects: str | None = None  # the code of the notice it corrects
    files: tuple[str, ...] = ()  # the names of the files it carries
    announce: bool = False  # also set as the 群公告
    not_owned: tuple[str, ...] = ()  # groups whose 群公告 the bot cannot set (not their owner)


def issue_notice(
    env: RelayEnv,
    room_id: str,
    contact_id: str,
    text: str,
    files: Sequence[NoticeFile] = (),
    *,
    confirm: bool = False,
    on_write: Callable[[Connection, int], None] | None = None,
) -> NoticePlan:
    """``#通知 [截止 17:00] [无需回执] [定时 …|每周五 9:00] [附件] [公告] 正文`` from
    ``contact_id`` in ``room_id``; ``files``: what goes with it (the chat passes the files the
    sender just sent when it says 附件, or the quoted one).

    Only an office of the unit that leads the group may send it; it goes to every relay group
    in that unit's subtree. ``confirm``: a notice to more than ``confirm_above`` groups waits
    for its issuer's #确认 (the chat asks for that, a person being there to answer; a script
    or benchmark issuing directly has no one to confirm). ``on_write(conn, notice_id)``: more
    to write in the same transaction once the notice row exists (a form, ``matrix.returns``).
    Raises a ``RelayError`` (nothing written) when it cannot."""
    now = env.now()
    draft = parse_notice(text, now, require_ack=env.options.require_ack)
    if draft.files and not files:
        raise no_files_found(env.options.attachments)
    with env.engine.connect() as conn:
        group = group_for_room(conn, room_id)
    names = [f.name for f in files]
    enforce(env, draft.body, names, actor=contact_id, unit_code=group.unit_code, what="通知")
    check_files(env.options.attachments, files)
    with env.engine.begin() as conn:
        leader, person = _issuer(conn, env, group, contact_id)
        targets = relay_targets(conn, env.blueprint, leader)
        if not targets:
            raise RelayError(
                f"{leader.name}下属还没有建成的接力群，通知无处可发", fix="请先建群，再下发通知"
            )
        keep = env.options.attachments
        stored = tuple(store_files(conn, keep, files, env.clock.now())) if files else ()
        issued = _Issued(group, leader, person, contact_id, draft, now, targets, stored)
        plan = _assign_copies(conn, issued)
        state = _first_state(env, draft, len(targets), confirm)
        notice_id = _write(conn, issued, state)
        if on_write is not None:
            on_write(conn, notice_id)
        reminders, not_owned = (
            _go(conn, env, issued, plan, notice_id) if state == "live" else ([], [])
        )
        if draft.send_at is not None and state != "held":
            job = "repeat" if state == "recurring" else "send"
            conn.execute(
                insert(RELAY_JOB).values(
                    notice_id=notice_id, kind=job, due_at=draft.send_at, state="pending"
                )
            )
        _audit(conn, issued, notice_id, state)
        unbuilt = unbuilt_count(conn, env.blueprint, leader)
    if state == "live":
        refresh_queue_stats(env.engine, len(targets))
    told = _told(env, issued, plan, notice_id, reminders, unbuilt, state)
    return dataclasses.replace(told, not_owned=tuple(not_owned))


def _first_state(env: RelayEnv, draft: NoticeDraft, groups: int, confirm: bool) -> str:
    """Where a new notice starts: a large one (timed or not) waits for its issuer's #确认 first
    when ``confirm``, a recurring or scheduled one for its time, the others go now."""
    if confirm and groups > env.options.confirm_above:
        return "held"
    if draft.repeat is not None:
        return "recurring"
    return "scheduled" if draft.send_at is not None else "live"


def release_notice(
    conn: Connection, env: RelayEnv, notice_id: int, *, only: set[int] | None = None
) -> NoticePlan:
    """Send a notice written earlier (held, scheduled, an occurrence, a correction): plan its
    copies now over the groups its unit leads (``only``: just those groups), queue them and its
    reminders, and mark it live, inside the caller's transaction."""
    row = conn.execute(select(NOTICE).where(NOTICE.c.id == notice_id)).one()
    leader = unit(conn, row.unit_code)
    if leader is None:
        raise RelayError("发通知的单位已不在名册中", fix="请管理员核对名册")
    targets = relay_targets(conn, env.blueprint, leader)
    if only is not None:
        targets = [t for t in targets if t.group_id in only]
    draft = NoticeDraft(
        row.body, env.local(row.deadline), row.require_ack, True, announce=row.announce
    )
    person = PersonRef(row.issuer_person_id or 0, row.issuer_name)
    where = group(conn, row.group_id)
    files = tuple(notice_files(row.files))
    issued = _Issued(where, leader, person, row.issuer_contact, draft, env.now(), targets, files)
    plan = _assign_copies(conn, issued)
    reminders, not_owned = _go(conn, env, issued, plan, notice_id)
    conn.execute(
        update(NOTICE)
        .where(NOTICE.c.id == notice_id)
        .values(state="live", target_groups=len(targets))
    )
    unbuilt = unbuilt_count(conn, env.blueprint, leader) if only is None else 0
    told = _told(env, issued, plan, notice_id, reminders, unbuilt, "live")
    told = dataclasses.replace(told, not_owned=tuple(not_owned))
    if row.corrects_id is not None:
        told = dataclasses.replace(told, corrects=notice_code(row.corrects_id))
    return told


@dataclass(frozen=True)
class _Issued:
    """A notice about to be queued: where from, by whom, what, to which groups."""

    group: GroupRef
    leader: UnitRef
    person: PersonRef
    contact_id: str
    draft: NoticeDraft
    now: datetime  # local
    targets: list[Target]
    files: tuple[NoticeFile, ...] = ()  # the bot's copies

    @property
    def now_utc(self) -> datetime:
        return self.now.astimezone(UTC)


def _issuer(
    conn: Connection, env: RelayEnv, group: GroupRef, contact_id: str
) -> tuple[UnitRef, PersonRef]:
    """The unit leading the group and the sender, who must be its office
    (``matrix.provisioning.authority``'s policy, for that very unit)."""
    leader = unit(conn, group.unit_code)
    if leader is None:
        raise RelayError("本群的牵头单位已不在名册中", fix="请管理员核对名册")
    asker = relay_asker(conn, env.blueprint, contact_id)
    reason = refusal(asker, Who.OFFICE, leader.code, exact=True)
    if reason is not None or asker.person_id is None:
        raise refused("notice", reason or "stranger", unit=leader.name)
    return leader, PersonRef(asker.person_id, asker.person_name)


class _Assigned:
    """Which account sends each copy, and when it is planned to go out."""

    def __init__(
        self, assignment: Assignment, planned: list[datetime], files_take: dict[str, float]
    ) -> None:
        self.assignment = assignment
        self.planned = planned
        self.files_take = files_take  # seconds each account spends on the files after its copies


def _assign_copies(conn: Connection, issued: _Issued) -> _Assigned:
    """Each copy to the least-busy account in its group, planned after what it already owes."""
    rates = serving_rates(conn)
    holders = accounts_in_groups(conn, rates)
    owed = backlog(conn)
    plan = assign([holders.get(t.group_id, []) for t in issued.targets], rates, owed)
    position: Counter[str] = Counter()
    planned = []
    each = 1 + len(issued.files)  # a copy and its files, one message each
    for account in plan.account_of:
        if account is None:
            planned.append(issued.now_utc)
            continue
        rate = rates[account]
        ahead = owed.get(account, 0) + position[account]
        planned.append(issued.now_utc + timedelta(seconds=ahead / rate if rate > 0 else 0))
        position[account] += each
    extra = {a: n * len(issued.files) for a, n in Counter(plan.account_of).items() if a}
    take = {a: n / (rates[a] or 1.0) for a, n in extra.items()}  # as ``assign`` counts
    return _Assigned(plan, planned, take)


def write_notice(conn: Connection, **values: Any) -> int:
    """Write one notice row (``relay_notice`` columns as keywords); its id. The one place a
    notice is inserted: ``#通知``, each occurrence of a recurring one
    (``matrix.relay.lifecycle``) and a correction (``matrix.relay.withdraw``)."""
    inserted = conn.execute(insert(NOTICE).values(**values)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def _write(conn: Connection, issued: _Issued, state: str) -> int:
    draft = issued.draft
    return write_notice(
        conn,
        unit_code=issued.leader.code,
        group_id=issued.group.id,
        issuer_contact=issued.contact_id,
        issuer_person_id=issued.person.id,
        issuer_name=issued.person.name,
        body=draft.body,
        deadline=draft.deadline,
        require_ack=draft.require_ack,
        target_groups=len(issued.targets),
        created_at=issued.now_utc,
        state=state,
        send_at=draft.send_at,
        repeat=draft.repeat,
        files=files_json(issued.files),
        announce=draft.announce,
    )


def _go(
    conn: Connection, env: RelayEnv, issued: _Issued, plan: _Assigned, notice_id: int
) -> tuple[list[datetime], list[str]]:
    """Queue the copies (each followed by its files), the announcements and the reminder
    jobs: the reminders' times, and the groups whose 群公告 the bot cannot set."""
    not_owned: list[str] = []
    if issued.targets:
        rows = []
        for copy in _copies(notice_id, issued, plan):
            rows += [copy, *file_rows(copy, issued.files)]
        conn.execute(insert(DELIVERY), rows)
        if issued.draft.announce:
            what = Announcing(issued.contact_id, issued.leader, issued.draft.body)
            not_owned = queue_announcements(conn, env, notice_id, issued.targets, what)
    return _schedule(conn, env, notice_id, issued.draft, issued.now), not_owned


def _audit(conn: Connection, issued: _Issued, notice_id: int, state: str) -> None:
    draft = issued.draft
    audit_log.record(
        conn,
        issued.contact_id,
        "relay.notice",
        issued.leader.code,
        notice=notice_code(notice_id),
        group_id=issued.group.id,
        groups=len(issued.targets),
        deadline=draft.deadline.isoformat(),
        require_ack=draft.require_ack,
        chars=len(draft.body),
        state=state,
        **({"files": [f.name for f in issued.files]} if issued.files else {}),
        **({"announce": True} if draft.announce else {}),
        **({"send_at": draft.send_at.isoformat()} if draft.send_at else {}),
        **({"repeat": draft.repeat} if draft.repeat else {}),
    )


def _copies(notice_id: int, issued: _Issued, plan: _Assigned) -> list[dict[str, Any]]:
    """One delivery row per target group."""
    accounts = plan.assignment.account_of
    return [
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
            "next_at": issued.now_utc,
            "planned_at": planned,
            "tried": "",
            "payload": "{}",
        }
        for target, account, planned in zip(issued.targets, accounts, plan.planned, strict=True)
    ]


def _schedule(
    conn: Connection, env: RelayEnv, notice_id: int, draft: NoticeDraft, now: datetime
) -> list[datetime]:
    """The reminders before the deadline and the escalation at it, as relay jobs."""
    if not draft.require_ack:
        return []
    dues = [draft.deadline - timedelta(minutes=m) for m in env.options.remind_before_minutes]
    reminders = sorted({d for d in dues if d > now})
    jobs = [{"kind": "remind", "due_at": d} for d in reminders]
    if env.options.escalate:
        jobs.append({"kind": "escalate", "due_at": draft.deadline})
    if jobs:
        conn.execute(
            insert(RELAY_JOB), [{"notice_id": notice_id, "state": "pending", **j} for j in jobs]
        )
    return reminders


def _told(
    env: RelayEnv,
    issued: _Issued,
    plan: _Assigned,
    notice_id: int,
    reminders: list[datetime],
    unbuilt: int,
    state: str,
) -> NoticePlan:
    """What the issuer is told: groups per level, accounts used, when it should be done."""
    bp, draft = env.blueprint, issued.draft
    per_level = Counter(t.level for t in issued.targets)
    by_level = [
        LevelCount(lvl.key, lvl.label, per_level[lvl.key])
        for lvl in bp.levels
        if per_level[lvl.key]
    ]
    assignment = plan.assignment
    used = {a for a in assignment.account_of if a is not None}
    done, seconds = None, None
    if used:
        seconds = max(assignment.finish[a] + plan.files_take.get(a, 0.0) for a in used)
        start = draft.send_at or issued.now  # a timed notice starts when it goes out
        done = env.local(start + timedelta(seconds=seconds))
    return NoticePlan(
        code=notice_code(notice_id),
        unit_name=issued.leader.name,
        deadline=draft.deadline,
        deadline_given=draft.deadline_given,
        require_ack=draft.require_ack,
        groups=len(issued.targets),
        by_level=by_level,
        unbuilt=unbuilt,
        unreachable=assignment.unreachable,
        accounts=len(used),
        estimated_done=done,
        estimated_seconds=seconds,
        late=done is None or done > draft.deadline,
        reminders=reminders,
        state=state,
        send_at=draft.send_at,
        repeat=draft.repeat,
        confirm_by=(
            issued.now + timedelta(minutes=env.options.confirm_minutes) if state == "held" else None
        ),
        files=tuple(f.name for f in issued.files),
        announce=draft.announce,
    )
