"""A notice's life after ``#通知``: who may act on it, ``#确认`` of a held one, ``#停止`` of a
recurring one, the relay jobs that send scheduled ones and each occurrence, and the state
``#进度`` shows. Withdrawing and correcting are ``matrix.relay.withdraw``.

States (``relay_notice.state``): ``held`` (waits for its issuer's #确认, ``confirm_minutes``),
``expired`` (not confirmed in time), ``scheduled`` (a ``send`` job holds it), ``recurring`` (a
series: each ``repeat`` job makes one occurrence, a notice of its own, and the next job),
``live`` (its copies are queued or out), ``withdrawn``, ``corrected`` (a correction replaced
it), ``stopped`` (a series ended by #停止). Each change is one transaction, so a restart neither
loses a scheduled notice nor sends it twice: the job is marked done with the copies it queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from sqlalchemy import Connection, func, insert, select, update

from matrix import audit_log
from matrix.provisioning.authority import Who, refusal
from matrix.relay.attachments import notice_files
from matrix.relay.codes import notice_code
from matrix.relay.drafts import next_time
from matrix.relay.env import RelayEnv
from matrix.relay.errors import NotInMatrix, RelayError, UnknownCode, refused
from matrix.relay.notices import NoticePlan, release_notice, write_notice
from matrix.relay.outbox import enqueue
from matrix.relay.people import group, group_for_room, relay_asker, unit
from matrix.relay.recall import forget_looks
from matrix.tables import DELIVERY, NOTICE, RELAY_JOB, UNIT

WAITING = ("held", "scheduled", "recurring")  # written, nothing sent yet (a series: not yet)
CLOSED = ("withdrawn", "corrected", "stopped", "expired")


def notice_row(conn: Connection, notice_id: int) -> Any:
    """The notice, or ``UnknownCode``."""
    row = conn.execute(select(NOTICE).where(NOTICE.c.id == notice_id)).first()
    if row is None:
        raise UnknownCode(
            f"没有编号为 {notice_code(notice_id)} 的通知", fix="请核对通知编号（如 T12）"
        )
    return row


def check_office(
    conn: Connection, env: RelayEnv, contact_id: str, notice: Any, action: str
) -> None:
    """``matrix.provisioning.authority``'s policy: an office of the issuing unit or of a unit
    above it (its subtree holds the issuer) may ``action`` the notice."""
    asker = relay_asker(conn, env.blueprint, contact_id)
    reason = refusal(asker, Who.OFFICE, notice.unit_code, within=_within(conn))
    if reason is not None:
        issuer = unit(conn, notice.unit_code)
        name = issuer.name if issuer else notice.unit_code
        raise refused(action, reason, unit=name, code=notice_code(notice.id))


def _within(conn: Connection) -> Callable[[str, str], bool]:
    paths: dict[str, str | None] = {}

    def path(code: str) -> str | None:
        if code not in paths:
            paths[code] = conn.execute(select(UNIT.c.path).where(UNIT.c.code == code)).scalar()
        return paths[code]

    def within(code: str, office: str) -> bool:
        inner, outer = path(code), path(office)
        return inner is not None and outer is not None and inner.startswith(outer)

    return within


def cancel_jobs(conn: Connection, notice_id: int) -> None:
    """The notice's jobs not yet run (reminders, escalation, sending) will not run."""
    conn.execute(
        update(RELAY_JOB)
        .where(RELAY_JOB.c.notice_id == notice_id, RELAY_JOB.c.state == "pending")
        .values(state="cancelled")
    )


def close(
    conn: Connection, env: RelayEnv, notice_id: int, state: str, by: str, **more: Any
) -> None:
    conn.execute(
        update(NOTICE)
        .where(NOTICE.c.id == notice_id)
        .values(state=state, closed_at=env.clock.now(), closed_by=by, **more)
    )
    forget_looks(env.engine)  # copies on their way in this process look again


# --- #确认 -------------------------------------------------------------------------------------


def confirm_notice(
    env: RelayEnv, room_id: str, contact_id: str, notice_id: int | None
) -> NoticePlan:
    """``#确认 [T12]``: the issuer sends the held notice (the latest held one in this group)."""
    expired = _expire(env)
    with env.engine.begin() as conn:
        where = group_for_room(conn, room_id)
        if notice_id is None:
            notice_id = conn.execute(
                select(NOTICE.c.id)
                .where(
                    NOTICE.c.group_id == where.id,
                    (NOTICE.c.state == "held") | NOTICE.c.id.in_(expired),
                )
                .order_by(NOTICE.c.id.desc())
                .limit(1)
            ).scalar()
            if notice_id is None:
                raise UnknownCode(
                    "本群没有等待确认的通知", fix="超过确认人数的通知发出后，再发送 #确认"
                )
        row = notice_row(conn, notice_id)
        code = notice_code(row.id)
        if row.state == "expired":
            raise RelayError(
                f"通知 {code} 已超过 {env.options.confirm_minutes} 分钟未确认，已作废，没有发出",
                fix="如仍需下发，请重新发送 #通知",
            )
        if row.state != "held":
            raise RelayError(f"通知 {code} 不在等待确认", fix=f"发送“#进度 {code}”查看它的状态")
        if row.issuer_contact != contact_id:
            raise refused("confirm", "outside", code=code, name=row.issuer_name)
        audit_log.record(conn, contact_id, "relay.confirm", row.unit_code, notice=code)
        return _after_confirm(conn, env, row)


def _expire(env: RelayEnv) -> set[int]:
    """Held notices whose #确认 did not come in time are void, in a transaction of its own
    (the refusal that follows must not undo it): the ids voided now."""
    before = env.clock.now() - timedelta(minutes=env.options.confirm_minutes)
    late = (NOTICE.c.state == "held") & (NOTICE.c.created_at < before)
    with env.engine.begin() as conn:
        voided = set(conn.execute(select(NOTICE.c.id).where(late)).scalars())
        if voided:
            conn.execute(
                update(NOTICE)
                .where(NOTICE.c.id.in_(voided))
                .values(state="expired", closed_at=env.clock.now())
            )
    return voided


def _after_confirm(conn: Connection, env: RelayEnv, row: Any) -> NoticePlan:
    """A confirmed notice goes now, or waits for its time (a timed or recurring one)."""
    if row.send_at is None or (env.local(row.send_at) <= env.now() and row.repeat is None):
        return release_notice(conn, env, row.id)
    state, job = ("recurring", "repeat") if row.repeat else ("scheduled", "send")
    due = env.local(row.send_at)
    if due <= env.now():
        due = next_time(row.repeat, env.now())
    conn.execute(update(NOTICE).where(NOTICE.c.id == row.id).values(state=state, send_at=due))
    conn.execute(insert(RELAY_JOB).values(notice_id=row.id, kind=job, due_at=due, state="pending"))
    return waiting_plan(conn, env, row.id)


def waiting_plan(conn: Connection, env: RelayEnv, notice_id: int) -> NoticePlan:
    """What the issuer is told of a notice that now waits for its time."""
    row = notice_row(conn, notice_id)
    leader = unit(conn, row.unit_code)
    return NoticePlan(
        code=notice_code(row.id),
        unit_name=leader.name if leader else row.unit_code,
        deadline=env.local(row.deadline),
        deadline_given=True,
        require_ack=row.require_ack,
        groups=row.target_groups,
        by_level=[],
        unbuilt=0,
        unreachable=0,
        accounts=0,
        estimated_done=None,
        estimated_seconds=None,
        late=False,
        reminders=[],
        state=row.state,
        send_at=env.local(row.send_at) if row.send_at else None,
        repeat=row.repeat,
    )


# --- #停止 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stopped:
    """``#停止 T12``'s answer (``relay/stopped.j2``)."""

    code: str
    repeat: str
    sent: int  # occurrences that went out


def stop_notice(env: RelayEnv, contact_id: str, notice_id: int) -> Stopped:
    """``#停止 T12``: a recurring notice (or the series of one of its occurrences) stops."""
    with env.engine.begin() as conn:
        row = notice_row(conn, notice_id)
        if row.series_id is not None:
            row = notice_row(conn, row.series_id)
        code = notice_code(row.id)
        if row.repeat is None:
            raise RelayError(
                f"通知 {code} 不是重复发送的通知", fix=f"要收回已发的通知，请发送“#撤回 {code}”"
            )
        check_office(conn, env, contact_id, row, "stop")
        if row.state in CLOSED:
            raise RelayError(f"通知 {code} 已经停止", fix="无需重复")
        cancel_jobs(conn, row.id)
        close(conn, env, row.id, "stopped", contact_id)
        sent = len(occurrences(conn, row.id))
        audit_log.record(conn, contact_id, "relay.stop", row.unit_code, notice=code, sent=sent)
    return Stopped(code, row.repeat, sent)


def occurrences(conn: Connection, series_id: int) -> list[int]:
    """The notices a recurring one has made, oldest first."""
    return list(
        conn.execute(
            select(NOTICE.c.id).where(NOTICE.c.series_id == series_id).order_by(NOTICE.c.id)
        ).scalars()
    )


# --- the jobs ----------------------------------------------------------------------------------


def run_send_job(conn: Connection, env: RelayEnv, notice_id: int) -> int:
    """A scheduled notice's time has come: its copies are queued (how many)."""
    row = notice_row(conn, notice_id)
    if row.state != "scheduled":  # withdrawn meanwhile: the job has nothing to do
        return 0
    try:
        with conn.begin_nested():
            still_issuer(conn, env, row)
            return release_notice(conn, env, notice_id).groups
    except RelayError as exc:  # its unit or its issuer left the roster meanwhile: it cannot go
        _give_up(conn, env, row, exc)
        return 0


def still_issuer(conn: Connection, env: RelayEnv, row: Any) -> None:
    """The notice's issuer must still be an office of its unit when it goes: a post ended by a
    roster re-import since it was written takes its scheduled notices' authority with it."""
    leader = unit(conn, row.unit_code)
    if leader is None:  # the unit itself left: ``release_notice`` says so
        return
    asker = relay_asker(conn, env.blueprint, row.issuer_contact)
    if refusal(asker, Who.OFFICE, row.unit_code, exact=True) is not None:
        raise RelayError(
            f"发文人{row.issuer_name}已不是{leader.name}办公室人员",
            fix=f"如仍需发出，请{leader.name}办公室同志重新下发",
        )


def _give_up(conn: Connection, env: RelayEnv, row: Any, exc: RelayError) -> None:
    """A job that can no longer send its notice ends it (withdrawn, the reason kept) rather
    than failing again at every tick, and says so in the group it was issued in."""
    logger.warning("定时通知 {} 无法发出：{}", notice_code(row.id), exc)
    cancel_jobs(conn, row.id)
    close(conn, env, row.id, "withdrawn", "relay", reason=str(exc)[:200])
    if row.group_id is None:
        return
    enqueue(
        conn,
        env,
        key=f"not_sent:{row.id}",
        kind="alert",
        group=group(conn, row.group_id),
        notice_id=row.id,
        template="relay/not_sent.j2",
        context={"code": notice_code(row.id), "reason": exc.message[:200], "fix": exc.fix},
        mentions=[row.issuer_contact],
    )


def run_repeat_job(conn: Connection, env: RelayEnv, series_id: int, due: datetime) -> int:
    """One occurrence of a recurring notice: a notice of its own (its own id, deadline and
    receipts) sent now, and the job for the next one."""
    series = notice_row(conn, series_id)
    if series.state != "recurring":
        return 0
    due = env.local(due)
    try:
        with conn.begin_nested():
            still_issuer(conn, env, series)
            queued = release_notice(conn, env, _occurrence(conn, env, series, due)).groups
    except RelayError as exc:  # its unit or its issuer left the roster meanwhile
        _give_up(conn, env, series, exc)
        return 0
    following = next_time(series.repeat, due)
    conn.execute(
        insert(RELAY_JOB).values(
            notice_id=series_id, kind="repeat", due_at=following, state="pending"
        )
    )
    return queued


def _occurrence(conn: Connection, env: RelayEnv, series: Any, due: datetime) -> int:
    """The notice one occurrence is; its deadline keeps its distance to the sending."""
    return write_notice(
        conn,
        unit_code=series.unit_code,
        group_id=series.group_id,
        issuer_contact=series.issuer_contact,
        issuer_person_id=series.issuer_person_id,
        issuer_name=series.issuer_name,
        body=series.body,
        deadline=due + (series.deadline - series.send_at),
        require_ack=series.require_ack,
        created_at=env.clock.now(),
        state="live",
        series_id=series.id,
        files=series.files,  # every occurrence carries the series' files (the bot's copies)
        announce=series.announce,
    )


# --- what #进度 shows --------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeState:
    """Where a notice is in its life, for ``#进度`` and the notice table."""

    code: str
    state: str
    send_at: datetime | None  # local: when it goes out (a series: next time)
    repeat: str | None
    closed_at: datetime | None  # local
    reason: str | None
    corrects: str | None  # the notice this one corrects
    corrected_by: str | None  # the correction of this one
    series: str | None  # the recurring notice this is an occurrence of
    sent: int = 0  # a series: occurrences so far
    waiting: tuple[str, ...] = ()  # other notices of this group that wait for their time
    files: int = 0  # files it carries, each to every group
    files_sent: int = 0  # file messages sent so far (all groups)
    files_due: int = 0  # file messages queued in all
    announced: int = 0  # groups whose 群公告 was set
    announce_failed: int = 0  # groups where it could not be set


def notice_state(conn: Connection, env: RelayEnv, notice_id: int) -> NoticeState:
    row = notice_row(conn, notice_id)
    fix = conn.execute(select(NOTICE.c.id).where(NOTICE.c.corrects_id == row.id)).scalar()
    send_at = row.send_at
    if row.state == "recurring":
        send_at = conn.execute(
            select(RELAY_JOB.c.due_at).where(
                RELAY_JOB.c.notice_id == row.id, RELAY_JOB.c.state == "pending"
            )
        ).scalar()
    waiting = conn.execute(
        select(NOTICE.c.id)
        .where(
            NOTICE.c.group_id == row.group_id,
            NOTICE.c.state.in_(WAITING),
            NOTICE.c.id != row.id,
        )
        .order_by(NOTICE.c.id)
    ).scalars()
    return NoticeState(
        notice_code(row.id),
        row.state,
        env.local(send_at) if send_at else None,
        row.repeat,
        env.local(row.closed_at) if row.closed_at else None,
        row.reason,
        notice_code(row.corrects_id) if row.corrects_id else None,
        notice_code(fix) if fix else None,
        notice_code(row.series_id) if row.series_id else None,
        len(occurrences(conn, row.id)) if row.repeat else 0,
        tuple(notice_code(i) for i in waiting),
        len(notice_files(row.files)),
        **_extras(conn, row.id),
    )


def _extras(conn: Connection, notice_id: int) -> dict[str, int]:
    """How far its files and 群公告 went (``matrix.relay.attachments``, ``announcements``)."""
    counts = conn.execute(
        select(DELIVERY.c.kind, DELIVERY.c.state, func.count())
        .where(DELIVERY.c.notice_id == notice_id, DELIVERY.c.kind.in_(("file", "announce")))
        .group_by(DELIVERY.c.kind, DELIVERY.c.state)
    ).all()
    return {
        "files_sent": sum(n for k, st, n in counts if k == "file" and st == "sent"),
        "files_due": sum(n for k, st, n in counts if k == "file" and st != "withdrawn"),
        "announced": sum(n for k, st, n in counts if k == "announce" and st == "sent"),
        "announce_failed": sum(n for k, st, n in counts if k == "announce" and st == "failed"),
    }


def held_in_room(env: RelayEnv, room_id: str) -> int | None:
    """The newest notice issued in this group that waits for its #确认 (None: none does)."""
    with env.engine.connect() as conn:
        try:
            where = group_for_room(conn, room_id)
        except NotInMatrix:
            return None
        found: int | None = conn.execute(
            select(NOTICE.c.id)
            .where(NOTICE.c.group_id == where.id, NOTICE.c.state == "held")
            .order_by(NOTICE.c.id.desc())
            .limit(1)
        ).scalar()
    return found
