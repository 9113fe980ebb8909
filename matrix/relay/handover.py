"""Losing a bot account: one that logs out, stays offline too long or is restricted hands what
it still owes to the other accounts seated in those groups, and nobody is left to guess.

``hand_over`` runs in one transaction: the account is marked lost (new plans leave it out), its
pending messages are spread over the accounts that remain with the same planner as a fresh
notice (``assign``: the makespan stays near the bound for the accounts that remain), and
everyone who must act is told:

- the issuing group of each notice still owed: how many groups changed hands and which groups
  no other account is in (those stay with the lost account, which sends them if it comes back),
  with what to do (``relay/account_lost.j2``);
- every group the account served in which another account is seated, through that account,
  after every copy still owed
  (``relay/account_lost_group.j2``);
- the log, as a WARNING.

``#进度`` shows the same (``relay/progress.j2``: the groups that wait for a lost account).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from sqlalchemy import Connection, bindparam, func, select, update

from matrix.relay.accounts import (
    ACCOUNT_SEAT,
    accounts_in_groups,
    mark_lost,
    serving_rates,
)
from matrix.relay.assign import assign
from matrix.relay.codes import notice_code
from matrix.relay.env import RelayEnv
from matrix.relay.outbox import Outbox
from matrix.relay.people import GroupRef, group
from matrix.tables import DELIVERY, GROUP, MEMBERSHIP, NOTICE

REASONS = ("logged_out", "offline", "restricted")
# the groups' own notes go after every copy still owed: at national scale an account serves
# thousands of groups, and telling them must not delay the notices themselves
LAST = 1000


@dataclass
class HandOver:
    """What losing an account did: per account that took over, how many messages; the groups
    nobody else can reach (id → name); the notices concerned."""

    account: str
    reason: str
    moved: Counter[str] = field(default_factory=Counter)
    unserved: dict[int, str] = field(default_factory=dict)
    notices: list[int] = field(default_factory=list)
    moved_of: Counter[int] = field(default_factory=Counter)  # notice → copies handed over
    unserved_of: dict[int, list[int]] = field(default_factory=dict)  # notice → group ids
    told: int = 0  # messages queued to tell the groups and the issuers

    @property
    def happened(self) -> bool:
        """False when the account was already lost (another worker or process got there)."""
        return bool(self.reason)


def hand_over(env: RelayEnv, account: str, reason: str, *, offline_for: float = 0.0) -> HandOver:
    """Take ``account`` out of service for ``reason`` (one of ``REASONS``) and hand its pending
    messages over; see the module doc. Idempotent: a second call finds nothing to do."""
    assert reason in REASONS
    now = env.clock.now()
    with env.engine.begin() as conn:
        if not mark_lost(conn, account, reason, now):
            return HandOver(account, "")
        result = HandOver(account, reason)
        _move(conn, account, now, result)
        result.told = _tell(conn, env, result, offline_for)
    _log(result)
    return result


def _move(conn: Connection, account: str, now: datetime, result: HandOver) -> None:
    """Plan every pending message again over the accounts that remain: the lost account's go
    to whoever is in their groups, and the others' are rebalanced so that those who can take
    more do (the lost account's groups are shared with only some of them)."""
    rates = serving_rates(conn)
    rates.pop(account, None)
    rows = conn.execute(
        select(
            DELIVERY.c.id,
            DELIVERY.c.group_id,
            DELIVERY.c.notice_id,
            DELIVERY.c.tried,
            DELIVERY.c.account_id,
            DELIVERY.c.next_at,
        )
        .where(DELIVERY.c.state == "pending", DELIVERY.c.account_id.in_([account, *rates]))
        .order_by(DELIVERY.c.rank, DELIVERY.c.id)
        .with_for_update(skip_locked=True)
    ).all()
    if not any(r.account_id == account for r in rows):
        return
    holders = accounts_in_groups(conn, rates, {r.group_id for r in rows})
    # only what is on the wire right now stays where it is
    busy: dict[str, int] = dict(
        conn.execute(
            select(DELIVERY.c.account_id, func.count())
            .where(DELIVERY.c.state == "sending", DELIVERY.c.account_id.in_(list(rates)))
            .group_by(DELIVERY.c.account_id)
        ).all()
    )
    plan = assign([holders.get(r.group_id, []) for r in rows], rates, busy)
    position: Counter[str] = Counter()
    moves = []
    unserved_ids: set[int] = set()
    for row, to in zip(rows, plan.account_of, strict=True):
        if to is None:  # only the lost account is in this group
            _unserved(row, result, unserved_ids)
            continue
        ahead = busy.get(to, 0) + position[to]
        position[to] += 1
        planned = now + timedelta(seconds=ahead / rates[to] if rates[to] > 0 else 0.0)
        move = {"_id": row.id, "v_account": to, "v_planned": planned}
        if row.account_id == account:
            if row.notice_id is not None:
                result.moved_of[row.notice_id] += 1
                _concerns(row.notice_id, result)
            result.moved[to] += 1
            tried = [a for a in row.tried.split(",") if a] + [account]
            move.update(v_tried=",".join(tried)[:500], v_next=now)
        else:  # rebalanced between accounts that serve: nothing to tell, backoff kept
            move.update(v_tried=row.tried, v_next=row.next_at)
        moves.append(move)
    if moves:
        conn.execute(
            update(DELIVERY)
            .where(DELIVERY.c.id == bindparam("_id"), DELIVERY.c.state == "pending")
            .values(
                account_id=bindparam("v_account"),
                tried=bindparam("v_tried"),
                planned_at=bindparam("v_planned"),
                next_at=bindparam("v_next"),
            ),
            moves,
        )
    if unserved_ids:
        result.unserved = dict(
            conn.execute(
                select(GROUP.c.id, GROUP.c.name)
                .where(GROUP.c.id.in_(unserved_ids))
                .order_by(GROUP.c.id)
            ).all()
        )


def _concerns(notice_id: int, result: HandOver) -> None:
    if notice_id not in result.notices:
        result.notices.append(notice_id)


def _unserved(row: Any, result: HandOver, unserved_ids: set[int]) -> None:
    unserved_ids.add(row.group_id)
    if row.notice_id is not None:
        _concerns(row.notice_id, result)
        result.unserved_of.setdefault(row.notice_id, []).append(row.group_id)


def _tell(conn: Connection, env: RelayEnv, result: HandOver, offline_for: float) -> int:
    outbox = Outbox(conn, env)
    stamp = env.clock.now().strftime("%Y%m%d%H%M%S")
    base = {
        "account": result.account,
        "reason": result.reason,
        "minutes": round(offline_for / 60),
    }
    limit = env.options.list_limit
    for notice_id in result.notices:
        issued_in = conn.execute(select(NOTICE.c.group_id).where(NOTICE.c.id == notice_id)).scalar()
        if issued_in is None:
            continue
        names = [result.unserved[g] for g in result.unserved_of.get(notice_id, [])]
        outbox.add(
            key=f"lost:{result.account}:{stamp}:{notice_id}"[:96],
            kind="alert",
            group=group(conn, issued_in),
            notice_id=notice_id,
            template="relay/account_lost.j2",
            context={
                **base,
                "code": notice_code(notice_id),
                "moved": result.moved_of[notice_id],
                "unserved": names[:limit],
                "unserved_more": max(0, len(names) - limit),
            },
        )
    seats = select(MEMBERSHIP.c.group_id).where(
        MEMBERSHIP.c.state == ACCOUNT_SEAT, MEMBERSHIP.c.contact_id == result.account
    )
    for row in conn.execute(select(GROUP).where(GROUP.c.id.in_(seats)).order_by(GROUP.c.id)):
        if outbox.holders(row.id):  # someone else is there to say it
            outbox.add(
                key=f"lost:{result.account}:{stamp}:g{row.id}"[:96],
                kind="alert",
                group=GroupRef(row.id, row.unit_code, row.kind, row.shard, row.name, row.room_id),
                template="relay/account_lost_group.j2",
                context=base,
                rank=LAST,
            )
    return outbox.flush()


def _log(result: HandOver) -> None:
    moved = sum(result.moved.values())
    logger.warning(
        "机器人账号 {} 已停止服务（{}）：{} 条待发消息转给 {}；{} 个群没有其他账号：{}",
        result.account,
        result.reason,
        moved,
        "、".join(f"{a} {n} 条" for a, n in sorted(result.moved.items())) or "无",
        len(result.unserved),
        "、".join(list(result.unserved.values())[:20]) or "无",
    )
