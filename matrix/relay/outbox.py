"""The relay's outbox: single messages (reminders, escalations, reports, flags, office
messages) queued inside the caller's transaction for the delivery workers to send. Apart from
``matrix.relay.delivery`` so that the hand-over, the reminders and the reports can queue
messages without importing the delivery engine, which imports them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, text

from matrix.relay.accounts import accounts_in_groups, backlog, serving_rates
from matrix.relay.env import RelayEnv
from matrix.relay.people import GroupRef
from matrix.tables import DELIVERY

QUEUE_BURST = 1000  # copies queued at once that make the planner's picture of the queue stale


class Outbox:
    """Queues single messages (reminders, escalations, reports, flags) inside the caller's
    transaction, each with the least-busy account that is in its group. Who is in which group
    and what each account owes are read once and the rows written together by ``flush``, so a
    job can queue thousands at national scale."""

    def __init__(self, conn: Connection, env: RelayEnv) -> None:
        self.conn = conn
        self.env = env
        self.rates = serving_rates(conn)
        self.owed = backlog(conn)
        self._holders: dict[int, list[str]] | None = None
        self._rows: list[dict[str, Any]] = []

    def holders(self, group_id: int) -> list[str]:
        """The registered accounts in a group."""
        if self._holders is None:
            self._holders = accounts_in_groups(self.conn, self.rates)
        return self._holders.get(group_id, [])

    def add(
        self,
        *,
        key: str,
        kind: str,
        group: GroupRef,
        template: str,
        context: dict[str, Any],
        mentions: Sequence[str] = (),
        notice_id: int | None = None,
        times: Sequence[str] = (),
        rank: int = 0,
        to: str = "",
        account: str | None = None,
    ) -> None:
        """Queue one message; ``context`` must be JSON, keys in ``times`` hold ISO datetimes
        (``a.b`` for nested ones) that reach the template as local datetimes. ``rank`` orders
        it among what its account owes (0: first; notice copies rank by level depth). ``to``:
        a private message (私聊) to that contact, sent by an account in ``group``. ``account``:
        only that one can send it (the group's owner sets its 群公告)."""
        rates, owed = self.rates, self.owed
        if account is None:
            account = min(
                self.holders(group.id),
                key=lambda a: (owed.get(a, 0) / (rates[a] or 1.0), a),
                default=None,
            )
        if account is not None:
            owed[account] = owed.get(account, 0) + 1
        now = self.env.clock.now()
        payload = {"template": template, "context": context, "mentions": list(mentions)}
        if to:
            payload["to"] = to
        self._rows.append(
            {
                "key": key,
                "kind": kind,
                "notice_id": notice_id,
                "group_id": group.id,
                "rank": rank,
                "account_id": account,
                "state": "pending",
                "attempts": 0,
                "resend": False,
                "next_at": now,
                "planned_at": now,
                "tried": "",
                "payload": json.dumps({**payload, "times": list(times)}, ensure_ascii=False),
            }
        )

    def flush(self) -> int:
        """Write what was queued; a key queued before (a job run twice) is skipped. Returns how
        many messages were written."""
        rows, self._rows = self._rows, []
        keys = [r["key"] for r in rows]
        seen: set[str] = set()
        for i in range(0, len(keys), 500):
            seen.update(
                self.conn.execute(
                    select(DELIVERY.c.key).where(DELIVERY.c.key.in_(keys[i : i + 500]))
                ).scalars()
            )
        fresh = [r for r in rows if r["key"] not in seen]
        if fresh:
            self.conn.execute(insert(DELIVERY), fresh)
        if len(fresh) >= QUEUE_BURST and self.conn.dialect.name == "postgresql":
            # a reminder round or an escalation at national scale: as ``refresh_queue_stats``,
            # but inside the caller's transaction, whose ANALYZE counts its own new rows
            self.conn.execute(text(f"ANALYZE {DELIVERY.name}"))
        return len(fresh)


def enqueue(conn: Connection, env: RelayEnv, **message: Any) -> bool:
    """Queue one message now (see ``Outbox.add``); False if it was queued before."""
    outbox = Outbox(conn, env)
    outbox.add(**message)
    return outbox.flush() == 1
