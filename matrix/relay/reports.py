"""Reports up (上报): ``#上报 <内容>`` in a group goes to the office of the unit that leads it,
with the sender's unit and name and a report id; ``#转报 R5`` passes it one level further up.
Reports made while a notice is open in that group (or naming it: ``#上报 T12 …``) are listed in
that notice's ``#进度``.

A report reaches the office only (``office_inbox``): its own group if one is built (every
member from the unit itself, e.g. 少工委委员群), otherwise each of its staff privately (私聊,
sent by a bot account in a group the office leads); never the shared group every school reads.
With neither, it is refused and nothing is written. The sender is told where it went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from matrix import audit_log
from matrix.blueprint import Blueprint
from matrix.provisioning.authority import OUTSIDE, STRANGER, Who, office_roles, refusal
from matrix.provisioning.binding import contacts_of
from matrix.relay.acks import latest_notice_for
from matrix.relay.codes import notice_code, parse_code, report_code
from matrix.relay.env import RelayEnv
from matrix.relay.errors import BadCommand, RelayError, UnknownCode, refused
from matrix.relay.guard import enforce
from matrix.relay.outbox import Outbox
from matrix.relay.people import (
    GroupRef,
    PersonRef,
    UnitRef,
    group_for_room,
    office_groups,
    positions,
    relay_asker,
    unit,
)
from matrix.tables import DELIVERY, PERSON, POSITION, REPORT


@dataclass(frozen=True)
class ReportReceipt:
    """What the sender (or the forwarding office) is told (``relay/report_receipt.j2``)."""

    code: str
    office_name: str
    unit_name: str
    sender_name: str
    notice_code: str | None
    forwarded: bool
    group_name: str | None = None  # it went to the office's own group …
    staff: int = 0  # … or privately to this many of its staff


@dataclass(frozen=True)
class OfficeInbox:
    """Where an office reads a report: its own group, else its staff privately, each reached
    by a bot account in ``carrier`` (a group the office leads, or where the report was made)."""

    group: GroupRef | None
    staff: list[str]
    carrier: GroupRef

    def send(
        self, conn: Connection, env: RelayEnv, key: str, notice_id: int | None, context: Any
    ) -> None:
        """Queue the report (inside the caller's transaction)."""
        outbox = Outbox(conn, env)
        message = {
            "kind": "report",
            "notice_id": notice_id,
            "template": "relay/report.j2",
            "context": context,
        }
        if self.group is not None:
            outbox.add(key=key, group=self.group, **message)
        for n, contact in enumerate(self.staff):
            outbox.add(key=f"{key}:{n}", group=self.carrier, to=contact, **message)
        outbox.flush()


def office_inbox(
    conn: Connection, bp: Blueprint, office: UnitRef, made_in: GroupRef | None
) -> OfficeInbox:
    """Where ``office`` reads reports; ``RelayError`` when it has neither its own group nor
    staff the bot can reach."""
    led = office_groups(conn, bp, office.code)
    own = [g for g in led if all(m.scope == "self" for m in bp.group(g.kind).members)]
    carrier = led[0] if led else made_in
    if own:
        return OfficeInbox(own[0], [], own[0])
    roles = office_roles(bp).get(office.level, frozenset())
    people = conn.execute(
        select(POSITION.c.person_id)
        .join(PERSON, PERSON.c.id == POSITION.c.person_id)
        .where(
            POSITION.c.unit_code == office.code,
            POSITION.c.role.in_(sorted(roles)),
            PERSON.c.removed_at.is_(None),
        )
        .order_by(POSITION.c.seq)
    ).scalars()
    staff = list(dict.fromkeys(contacts_of(conn, people).values()))
    if not staff or carrier is None:
        raise RelayError(
            f"{office.name}还没有自己的工作群，办公室同志也没有登记微信号，上报无处可送",
            fix="请管理员为办公室同志登记微信号，或建立本单位的工作群",
        )
    return OfficeInbox(None, staff, carrier)


def submit_report(
    env: RelayEnv, room_id: str, contact_id: str, text: str, attachments: Sequence[str] = ()
) -> ReportReceipt:
    """``#上报 [T12] 内容`` from ``contact_id`` in ``room_id``."""
    body = text.strip()
    named = None
    head, _, rest = body.partition(" ")
    if rest and (nid := parse_code(head, "T")) is not None and head[:1] in "Tt":
        named, body = nid, rest.strip()
    if not body:
        raise BadCommand("上报没有内容", fix="请这样发送：#上报 内容")
    now = env.clock.now()
    with env.engine.connect() as conn:
        group = group_for_room(conn, room_id)
    enforce(env, body, attachments, actor=contact_id, unit_code=group.unit_code, what="上报")
    with env.engine.begin() as conn:
        leader = unit(conn, group.unit_code)
        asker = relay_asker(conn, env.blueprint, contact_id)
        reason = refusal(asker, Who.MEMBER)
        if reason is not None or asker.person_id is None or leader is None:
            raise refused("report", reason or STRANGER)
        person = PersonRef(asker.person_id, asker.person_name)
        held = [u for u, _ in positions(conn, person.id)]
        children = [u for u in held if u.parent_code == leader.code]
        ranked = children or [u for u in held if u.code == leader.code] or held
        if not ranked:
            raise refused("report", OUTSIDE)
        sender_unit = ranked[0]
        if named is not None:
            sent_here = conn.execute(
                select(DELIVERY.c.id).where(
                    DELIVERY.c.notice_id == named,
                    DELIVERY.c.group_id == group.id,
                    DELIVERY.c.kind == "notice",
                )
            ).first()
            if sent_here is None:
                raise UnknownCode(
                    f"本群没有收到过通知 {notice_code(named)}",
                    fix="请核对通知编号，或去掉编号直接上报",
                )
        notice_id = named if named is not None else latest_notice_for(conn, group.id, now)
        inbox = office_inbox(conn, env.blueprint, leader, group)
        inserted = conn.execute(
            insert(REPORT).values(
                group_id=group.id,
                unit_code=sender_unit.code,
                person_id=person.id,
                contact_id=contact_id,
                sender_name=person.name,
                body=body,
                notice_id=notice_id,
                holder_unit=leader.code,
                hops=0,
                created_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None
        report_id = int(inserted[0])
        code = report_code(report_id)
        ncode = notice_code(notice_id) if notice_id is not None else None
        inbox.send(
            conn,
            env,
            f"report:{report_id}:0",
            notice_id,
            {
                "code": code,
                "unit_name": sender_unit.name,
                "sender_name": person.name,
                "body": body,
                "notice_code": ncode,
                "from_group": group.name,
                "forwarded_by": None,
            },
        )
        audit_log.record(
            conn,
            contact_id,
            "relay.report",
            sender_unit.code,
            report=code,
            to=leader.code,
            via=inbox.group.name if inbox.group else "private",
        )
    return ReportReceipt(
        code,
        leader.name,
        sender_unit.name,
        person.name,
        ncode,
        False,
        inbox.group.name if inbox.group else None,
        len(inbox.staff),
    )


def forward_report(env: RelayEnv, contact_id: str, text: str) -> ReportReceipt:
    """``#转报 R5``: the office holding the report passes it to its parent unit's office."""
    report_id = parse_code(text, "R")
    if report_id is None:
        raise BadCommand("看不懂要转报的编号", fix="请这样发送：#转报 R5（编号见上报消息）")
    with env.engine.begin() as conn:
        report = conn.execute(select(REPORT).where(REPORT.c.id == report_id)).first()
        if report is None:
            raise UnknownCode(f"没有编号为 {report_code(report_id)} 的上报", fix="请核对编号")
        holder = unit(conn, report.holder_unit)
        asker = relay_asker(conn, env.blueprint, contact_id)
        code = holder.code if holder else report.holder_unit
        reason = refusal(asker, Who.OFFICE, code, exact=True)
        if holder is None or reason is not None or asker.person_id is None:
            where = holder.name if holder else report.holder_unit
            raise refused("forward", reason or OUTSIDE, code=report_code(report_id), unit=where)
        parent = unit(conn, holder.parent_code) if holder.parent_code else None
        if parent is None:
            raise RelayError(f"{holder.name}已是本矩阵的最高一级", fix="无法再向上转报")
        inbox = office_inbox(conn, env.blueprint, parent, None)
        sender_unit = unit(conn, report.unit_code)
        hops = report.hops + 1
        conn.execute(
            update(REPORT)
            .where(REPORT.c.id == report_id)
            .values(holder_unit=parent.code, hops=hops)
        )
        code = report_code(report_id)
        ncode = notice_code(report.notice_id) if report.notice_id is not None else None
        inbox.send(
            conn,
            env,
            f"report:{report_id}:{hops}",
            report.notice_id,
            {
                "code": code,
                "unit_name": sender_unit.name if sender_unit else report.unit_code,
                "sender_name": report.sender_name,
                "body": report.body,
                "notice_code": ncode,
                "from_group": None,
                "forwarded_by": holder.name,
            },
        )
        audit_log.record(
            conn, contact_id, "relay.report_forward", holder.code, report=code, to=parent.code
        )
    return ReportReceipt(
        code,
        parent.name,
        sender_unit.name if sender_unit else report.unit_code,
        report.sender_name,
        ncode,
        True,
        inbox.group.name if inbox.group else None,
        len(inbox.staff),
    )
