"""``#通知 … 公告``: the notice also becomes the 群公告 of each target group the bot owns.

WeChat lets only a group's owner (or an admin) set its announcement, so each group gets one
delivery row of kind ``announce`` for the account that owns it (``wgroup.owner_account``); a
group built by hand and adopted (认领) has no bot owner and is named to the issuer at once. Where
the platform cannot set it (``NotSupported``: not owner after all, a puppet without the call) the
row fails for good and the issuing group is told which group could not
(``relay/announce_failed.j2``, from the delivery engine's failure report).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from matrix import audit_log
from matrix.relay.codes import notice_code
from matrix.relay.people import UnitRef
from matrix.relay.targets import Target
from matrix.tables import DELIVERY, GROUP

ANNOUNCE_TEMPLATE = "relay/announcement.j2"


@dataclass(frozen=True)
class Announcing:
    """Who asks for the announcement, of which unit, what it says, and when."""

    actor: str
    unit: UnitRef
    body: str
    now: datetime  # UTC


def queue_announcements(
    conn: Connection, notice_id: int, targets: Sequence[Target], what: Announcing
) -> list[str]:
    """Queue the notice's announcements (audit-logged) inside the caller's transaction; the
    groups the bot does not own."""
    code = notice_code(notice_id)
    context = {"code": code, "unit_name": what.unit.name, "body": what.body}
    group_ids = [t.group_id for t in targets]
    rows, not_owned = announce_rows(conn, notice_id, group_ids, context, what.now)
    if rows:
        conn.execute(insert(DELIVERY), rows)
    audit_log.record(
        conn,
        what.actor,
        "relay.announce",
        what.unit.code,
        notice=code,
        groups=len(rows),
        not_owned=not_owned[:20],
        not_owned_count=len(not_owned),
    )
    return not_owned


def announce_rows(
    conn: Connection,
    notice_id: int,
    group_ids: Sequence[int],
    context: dict[str, Any],
    now: datetime,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``announce`` rows of a notice to ``group_ids`` (after its copies: rank 99), and the
    names of the groups the bot does not own, where no announcement can be set."""
    owners = {
        r.id: (r.owner_account, r.name)
        for r in conn.execute(
            select(GROUP.c.id, GROUP.c.owner_account, GROUP.c.name).where(
                GROUP.c.id.in_(list(group_ids))
            )
        )
    }
    payload = json.dumps(
        {"template": ANNOUNCE_TEMPLATE, "context": context, "mentions": [], "times": []},
        ensure_ascii=False,
    )
    rows, not_owned = [], []
    for group_id in group_ids:
        owner, name = owners[group_id]
        if owner is None:
            not_owned.append(name)
            continue
        rows.append(
            {
                "key": f"announce:{notice_id}:{group_id}",
                "kind": "announce",
                "notice_id": notice_id,
                "group_id": group_id,
                "rank": 99,  # after every copy the account owes: the text comes first
                "account_id": owner,
                "state": "pending",
                "attempts": 0,
                "resend": False,
                "next_at": now,
                "planned_at": now,
                "tried": "",
                "payload": payload,
            }
        )
    return rows, not_owned
