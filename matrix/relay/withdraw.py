"""``#撤回 T12 [理由]`` and ``#更正 T12 <新正文>``: taking a notice back, or replacing it.

A **withdrawal**, in one transaction: every copy, reminder and escalation of T12 not yet
claimed is marked ``withdrawn`` (no worker can claim it), its jobs are cancelled, and each group
that got T12 (or may have: a copy on its way) is queued an announcement with the reason. The
worker's last look before each send (``matrix.relay.recall``) stops a copy claimed before the
withdrawal, and the announcement first recalls the bot's copy where the platform allows it. A
notice not sent yet (held, scheduled, recurring) is simply cancelled.

A **correction** is a notice of its own (T13, "更正通知 T12") to the same groups as T12; T12's
copies not sent yet are withdrawn (those groups get only the correction), its reminders are
cancelled and T13's are scheduled. Receipts carry over: a unit that said 收到 to T12 has
acknowledged T13 too, since a typo fixed must not make 200 schools answer again; writing
``需回执`` in the correction asks every unit again. ``#进度`` and the notice table show both.
Only an office of T12's issuing unit, or of a unit above it, may do either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, literal, select, update

from matrix import audit_log
from matrix.relay.attachments import (
    NoticeFile,
    check_files,
    files_json,
    no_files_found,
    store_files,
)
from matrix.relay.codes import notice_code
from matrix.relay.drafts import parse_notice
from matrix.relay.env import RelayEnv
from matrix.relay.errors import BadCommand, RelayError
from matrix.relay.guard import enforce
from matrix.relay.lifecycle import (
    CLOSED,
    WAITING,
    cancel_jobs,
    check_office,
    close,
    notice_row,
    waiting_plan,
)
from matrix.relay.notices import NoticePlan, release_notice, write_notice
from matrix.relay.outbox import Outbox
from matrix.relay.people import group, group_for_room, relay_asker, unit
from matrix.tables import ACKNOWLEDGEMENT as ACK
from matrix.tables import DELIVERY, FORM, NOTICE

MAX_REASON = 200  # the reason is repeated in every group: kept short


@dataclass(frozen=True)
class Withdrawn:
    """``#撤回``'s answer (``relay/withdrawn.j2``)."""

    code: str
    before: str  # the state it was in: live, or held / scheduled / recurring (cancelled)
    stopped: int  # copies that will not go out
    announced: int  # groups told of the withdrawal
    reason: str


def withdraw_notice(env: RelayEnv, contact_id: str, notice_id: int, reason: str) -> Withdrawn:
    """``#撤回 T12 [理由]`` from ``contact_id``."""
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise BadCommand(f"撤回理由超过 {MAX_REASON} 字", fix="请写得简短些")
    with env.engine.connect() as conn:
        unit_code = notice_row(conn, notice_id).unit_code
    if reason:  # the reason goes into every group: the same guard as the notice
        enforce(env, reason, (), actor=contact_id, unit_code=unit_code, what="撤回")
    with env.engine.begin() as conn:
        row = notice_row(conn, notice_id)
        check_office(conn, env, contact_id, row, "withdraw")
        _refuse_closed(conn, row)
        cancel_jobs(conn, row.id)
        stopped = _stop_copies(conn, row.id)
        announced = _announce(conn, env, row, reason) if row.state == "live" else 0
        close(conn, env, row.id, "withdrawn", contact_id, reason=reason or None)
        audit_log.record(
            conn,
            contact_id,
            "relay.withdraw",
            row.unit_code,
            notice=notice_code(row.id),
            was=row.state,
            stopped=stopped,
            announced=announced,
            reason=reason,
        )
    return Withdrawn(notice_code(row.id), row.state, stopped, announced, reason)


def _files_out(conn: Connection, notice_id: int) -> dict[int, list[int]]:
    """The notice's files that went out (or may have), by group."""
    out: dict[int, list[int]] = {}
    for r in conn.execute(
        select(DELIVERY.c.id, DELIVERY.c.group_id).where(
            DELIVERY.c.notice_id == notice_id,
            DELIVERY.c.kind == "file",
            DELIVERY.c.state.in_(("sent", "sending")),
        )
    ):
        out.setdefault(r.group_id, []).append(r.id)
    return out


def _refuse_closed(conn: Connection, row: Any) -> None:
    if row.state not in CLOSED:
        return
    code = notice_code(row.id)
    by = conn.execute(select(NOTICE.c.id).where(NOTICE.c.corrects_id == row.id)).scalar()
    raise RelayError(
        f"通知 {code} "
        + {"withdrawn": "已撤回", "corrected": "已被更正", "stopped": "已停止"}.get(
            row.state, "未确认，已作废"
        ),
        fix=f"它已由 {notice_code(by)} 取代，请对 {notice_code(by)} 操作" if by else "无需重复",
    )


def _stop_copies(conn: Connection, notice_id: int) -> int:
    """Mark what is not claimed yet so that no worker takes it: the copies not sent (how
    many), and the reminders and escalations queued for the notice."""
    stopped = conn.execute(
        update(DELIVERY)
        .where(
            DELIVERY.c.notice_id == notice_id,
            DELIVERY.c.kind == "notice",
            DELIVERY.c.state == "pending",
        )
        .values(state="withdrawn")
    ).rowcount
    conn.execute(
        update(DELIVERY)
        .where(
            DELIVERY.c.notice_id == notice_id,
            DELIVERY.c.kind.in_(("remind", "escalate", "file", "announce")),
            DELIVERY.c.state == "pending",
        )
        .values(state="withdrawn")
    )
    return int(stopped)


def _announce(conn: Connection, env: RelayEnv, row: Any, reason: str) -> int:
    """An announcement to each group the copy reached or is reaching, sent by the account
    that was to send the copy (only the sender may recall it)."""
    issuer = unit(conn, row.unit_code)
    copies = conn.execute(
        select(DELIVERY.c.id, DELIVERY.c.account_id, DELIVERY.c.group_id)
        .where(
            DELIVERY.c.notice_id == row.id,
            DELIVERY.c.kind == "notice",
            DELIVERY.c.state.in_(("sent", "sending")),
        )
        .order_by(DELIVERY.c.rank, DELIVERY.c.id)
    ).all()
    outbox = Outbox(conn, env)
    code = notice_code(row.id)
    files = _files_out(conn, row.id)
    for copy in copies:
        outbox.add(
            key=f"withdraw:{row.id}:{copy.group_id}",
            kind="withdraw",
            group=group(conn, copy.group_id),
            notice_id=row.id,
            template="relay/withdrawal.j2",
            context={
                "code": code,
                "unit_name": issuer.name if issuer else row.unit_code,
                "reason": reason,
                "copy": copy.id,
                "files": files.get(copy.group_id, []),  # recalled with the copy
                "recalled": False,
            },
        )
    queued = outbox.flush()
    senders = [
        {"k": f"withdraw:{row.id}:{c.group_id}", "a": c.account_id} for c in copies if c.account_id
    ]
    if senders:
        conn.execute(
            update(DELIVERY)
            .where(DELIVERY.c.key == bindparam("k"))
            .values(account_id=bindparam("a")),
            senders,
        )
    return queued


# --- #更正 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corrected:
    """``#更正``'s answer (``relay/corrected.j2``)."""

    plan: NoticePlan  # the correction (or, in place, the notice still waiting)
    original: str
    carried: int  # receipts of the original that count for the correction
    in_place: bool  # the original had not gone out: its text was changed instead
    new_files: bool = False  # it brought files of its own, which replace the original's


def correct_notice(
    env: RelayEnv,
    room_id: str,
    contact_id: str,
    notice_id: int,
    text: str,
    files: Sequence[NoticeFile] = (),
) -> Corrected:
    """``#更正 T12 [截止 …] [需回执] [附件] <新正文>`` from ``contact_id`` in ``room_id``.
    ``files`` (the chat passes them for 附件, as for ``#通知``) replace the original's; without
    them the original's files go again with the correction."""
    with env.engine.connect() as conn:
        before = notice_row(conn, notice_id)
        form_id = conn.execute(select(FORM.c.id).where(FORM.c.notice_id == notice_id)).scalar()
    if form_id is not None:  # its answers belong to the form: a correction would orphan them
        code = notice_code(notice_id)
        raise BadCommand(
            f"通知 {code} 是填报 F{form_id}，不能更正",
            fix=f"要改填报，请发送“#撤回 {code}”后重新发 #填报",
        )
    draft = parse_notice(text, env.now(), require_ack=before.require_ack)
    if draft.send_at is not None or draft.repeat is not None:
        raise BadCommand("更正随即发出，不能定时", fix="请去掉定时，或撤回后重新下发定时通知")
    if draft.files and not files:
        raise no_files_found(env.options.attachments)
    names = [f.name for f in files]
    enforce(env, draft.body, names, actor=contact_id, unit_code=before.unit_code, what="更正")
    check_files(env.options.attachments, files)
    with env.engine.begin() as conn:
        row = notice_row(conn, notice_id)
        check_office(conn, env, contact_id, row, "correct")
        _refuse_closed(conn, row)
        code = notice_code(row.id)
        deadline = draft.deadline if draft.deadline_given else row.deadline
        keep = env.options.attachments
        carried_files = (
            files_json(store_files(conn, keep, files, env.clock.now())) if files else row.files
        )
        if row.state in WAITING:  # nothing went out yet: the text itself changes
            conn.execute(
                update(NOTICE)
                .where(NOTICE.c.id == row.id)
                .values(
                    body=draft.body,
                    deadline=deadline,
                    require_ack=draft.require_ack,
                    files=carried_files,
                )
            )
            _audit(conn, contact_id, row, code, None, 0)
            return Corrected(waiting_plan(conn, env, row.id), code, 0, True, bool(files))
        groups = set(
            conn.execute(
                select(DELIVERY.c.group_id).where(
                    DELIVERY.c.notice_id == row.id, DELIVERY.c.kind == "notice"
                )
            ).scalars()
        )
        _stop_copies(conn, row.id)
        cancel_jobs(conn, row.id)
        close(conn, env, row.id, "corrected", contact_id)
        carry = draft.require_ack and row.require_ack and not draft.ack_given
        new_id = _write_correction(
            conn, env, room_id, contact_id, row, (draft.body, deadline, carried_files)
        )
        conn.execute(update(NOTICE).where(NOTICE.c.id == new_id).values(carries_acks=carry))
        carried = _carry_acks(conn, row.id, new_id) if carry else 0
        plan = release_notice(conn, env, new_id, only=groups)
        _audit(conn, contact_id, row, code, plan.code, carried)
    return Corrected(plan, code, carried, False, bool(files))


def _write_correction(
    conn: Connection,
    env: RelayEnv,
    room_id: str,
    contact_id: str,
    row: Any,
    what: tuple[str, Any, str],  # its body, deadline and files (JSON)
) -> int:
    body, deadline, files = what
    asker = relay_asker(conn, env.blueprint, contact_id)
    where = group_for_room(conn, room_id)
    return write_notice(
        conn,
        unit_code=row.unit_code,
        group_id=where.id,
        issuer_contact=contact_id,
        issuer_person_id=asker.person_id,
        issuer_name=asker.person_name,
        body=body,
        deadline=deadline,
        require_ack=row.require_ack,
        created_at=env.clock.now(),
        state="live",
        corrects_id=row.id,
        # the correction replaces the notice whole: its files go again with it unless it brings
        # its own (a group whose copy was stopped would otherwise never get them), and so does
        # its 群公告
        files=files,
        announce=row.announce,
    )


def _carry_acks(conn: Connection, old_id: int, new_id: int) -> int:
    """The original's receipts, as receipts of the correction."""
    columns = ["unit_code", "group_id", "person_id", "contact_id", "at"]
    picked = select(literal(new_id), *(ACK.c[c] for c in columns)).where(ACK.c.notice_id == old_id)
    return int(conn.execute(insert(ACK).from_select(["notice_id", *columns], picked)).rowcount or 0)


def _audit(
    conn: Connection, contact_id: str, row: Any, code: str, new: str | None, carried: int
) -> None:
    audit_log.record(
        conn,
        contact_id,
        "relay.correct",
        row.unit_code,
        notice=code,
        correction=new,
        carried=carried,
    )
