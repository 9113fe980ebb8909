"""The bot accounts that send relay messages: their pacing, the rooms they are in, and what
they still owe. Each worker registers its account and its rooms when it starts; the planner
reads them back to spread copies over the accounts that are in each group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from matrix.provisioning.actual import ACCOUNT_SEAT
from matrix.tables import DELIVERY, GROUP, MEMBERSHIP, RELAY_ACCOUNT

OPEN_STATES = ("pending", "sending")


def register_account(
    conn: Connection,
    account_id: str,
    rate: float,
    room_ids: Iterable[str],
    now: datetime,
    *,
    out_for: str | None = None,
) -> int:
    """Record the account, its pace and the matrix groups it is in (as ``ACCOUNT_SEAT`` rows);
    memberships of rooms it has left are dropped. Returns how many matrix groups it is in.
    A login (or a restart) puts a lost account back into service; with ``out_for`` (a
    ``handover.REASONS``: it logged out again meanwhile, or rests) it stays out, and an
    account seen for the first time is recorded as out of service for that reason."""
    back = {"lost_at": None, "lost_reason": None} if out_for is None else {}
    if (
        conn.execute(
            update(RELAY_ACCOUNT)
            .where(RELAY_ACCOUNT.c.account_id == account_id)
            .values(rate=rate, seen_at=now, **back)
        ).rowcount
        == 0
    ):
        lost = {} if out_for is None else {"lost_at": now, "lost_reason": out_for}
        conn.execute(
            insert(RELAY_ACCOUNT).values(account_id=account_id, rate=rate, seen_at=now, **lost)
        )
    rooms = set(room_ids)
    groups = {
        r.id
        for r in conn.execute(
            select(GROUP.c.id, GROUP.c.room_id).where(GROUP.c.room_id.is_not(None))
        )
        if r.room_id in rooms
    }
    mine = MEMBERSHIP.c.contact_id == account_id
    have = {
        r.group_id
        for r in conn.execute(
            select(MEMBERSHIP.c.group_id).where(mine, MEMBERSHIP.c.state == ACCOUNT_SEAT)
        )
    }
    if gone := have - groups:
        conn.execute(
            delete(MEMBERSHIP).where(
                mine, MEMBERSHIP.c.state == ACCOUNT_SEAT, MEMBERSHIP.c.group_id.in_(gone)
            )
        )
    if new := groups - have:
        conn.execute(
            insert(MEMBERSHIP),
            [
                {
                    "group_id": g,
                    "state": ACCOUNT_SEAT,
                    "person_id": None,
                    "contact_id": account_id,
                    "is_admin": False,
                    "nickname": None,
                    "source": "platform",
                    "updated_at": now,
                }
                for g in sorted(new)
            ],
        )
    return len(groups)


def account_rates(conn: Connection) -> dict[str, float]:
    """Every registered account and its messages per second."""
    return {
        r.account_id: r.rate
        for r in conn.execute(select(RELAY_ACCOUNT.c.account_id, RELAY_ACCOUNT.c.rate))
    }


def serving_rates(conn: Connection) -> dict[str, float]:
    """The accounts that serve now (not lost: logged out, offline too long, restricted) and
    their messages per second: the ones a plan may give messages to."""
    rows = conn.execute(
        select(RELAY_ACCOUNT.c.account_id, RELAY_ACCOUNT.c.rate).where(
            RELAY_ACCOUNT.c.lost_at.is_(None)
        )
    )
    return {r.account_id: r.rate for r in rows}


def mark_lost(conn: Connection, account_id: str, reason: str, now: datetime) -> bool:
    """Take an account out of service; False if it already was."""
    return bool(
        conn.execute(
            update(RELAY_ACCOUNT)
            .where(RELAY_ACCOUNT.c.account_id == account_id, RELAY_ACCOUNT.c.lost_at.is_(None))
            .values(lost_at=now, lost_reason=reason)
        ).rowcount
    )


def restore(conn: Connection, account_id: str) -> bool:
    """Put a lost account back into service; False if it was serving."""
    return bool(
        conn.execute(
            update(RELAY_ACCOUNT)
            .where(RELAY_ACCOUNT.c.account_id == account_id, RELAY_ACCOUNT.c.lost_at.is_not(None))
            .values(lost_at=None, lost_reason=None)
        ).rowcount
    )


def accounts_in_groups(
    conn: Connection, accounts: Iterable[str], group_ids: Iterable[int] | None = None
) -> dict[int, list[str]]:
    """Per group, the registered accounts that are in it."""
    query = select(MEMBERSHIP.c.group_id, MEMBERSHIP.c.contact_id).where(
        MEMBERSHIP.c.state == ACCOUNT_SEAT, MEMBERSHIP.c.contact_id.in_(list(accounts))
    )
    if group_ids is not None:
        query = query.where(MEMBERSHIP.c.group_id.in_(list(group_ids)))
    found: dict[int, list[str]] = defaultdict(list)
    for r in conn.execute(query.order_by(MEMBERSHIP.c.contact_id)):
        found[r.group_id].append(r.contact_id)
    return found


def backlog(conn: Connection) -> dict[str, int]:
    """Messages each account still owes."""
    rows = conn.execute(
        select(DELIVERY.c.account_id, func.count())
        .where(DELIVERY.c.state.in_(OPEN_STATES), DELIVERY.c.account_id.is_not(None))
        .group_by(DELIVERY.c.account_id)
    )
    return {r[0]: r[1] for r in rows}


def owed_copies(conn: Connection) -> tuple[int, datetime | None]:
    """How many copies are still owed (pending or being sent) and when the oldest of them was
    planned (None when nothing is owed), for the health endpoint."""
    count, first = conn.execute(
        select(func.count(), func.min(DELIVERY.c.planned_at)).where(
            DELIVERY.c.state.in_(OPEN_STATES)
        )
    ).one()
    return int(count), first
