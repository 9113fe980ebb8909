"""``#通知 … 公告``: the notice also becomes the 群公告 of each target group the bot owns.

WeChat lets only a group's owner (or an admin) set its announcement, so each group gets one
delivery row of kind ``announce`` for the account that owns it (``wgroup.owner_account``); a
group built by hand and adopted (认领) has no bot owner and is named to the issuer at once. Where
the platform cannot set it (``NotSupported``: not owner after all, a puppet without the call) the
row fails for good and the issuing group is told which group could not
(``relay/announce_failed.j2``, from the delivery engine's failure report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from matrix import audit_log
from matrix.relay.codes import notice_code
from matrix.relay.env import RelayEnv
from matrix.relay.outbox import Outbox
from matrix.relay.people import GroupRef, UnitRef
from matrix.relay.targets import Target
from matrix.tables import GROUP

ANNOUNCE_TEMPLATE = "relay/announcement.j2"


@dataclass(frozen=True)
class Announcing:
    """Who asks for the announcement, of which unit, and what it says."""

    actor: str
    unit: UnitRef
    body: str


def queue_announcements(
    conn: Connection, env: RelayEnv, notice_id: int, targets: Sequence[Target], what: Announcing
) -> list[str]:
    """Queue the notice's announcements (audit-logged) inside the caller's transaction, each for
    the account that owns its group, after every copy that account owes (rank 99); the names
    of the groups the bot does not own."""
    code = notice_code(notice_id)
    context = {"code": code, "unit_name": what.unit.name, "body": what.body}
    outbox = Outbox(conn, env)
    not_owned = []
    for r in conn.execute(
        select(GROUP).where(GROUP.c.id.in_([t.group_id for t in targets])).order_by(GROUP.c.id)
    ):
        if r.owner_account is None:
            not_owned.append(r.name)
            continue
        outbox.add(
            key=f"announce:{notice_id}:{r.id}",
            kind="announce",
            group=GroupRef(r.id, r.unit_code, r.kind, r.shard, r.name, r.room_id),
            template=ANNOUNCE_TEMPLATE,
            context=context,
            notice_id=notice_id,
            rank=99,
            account=r.owner_account,
        )
    queued = outbox.flush()
    audit_log.record(
        conn,
        what.actor,
        "relay.announce",
        what.unit.code,
        notice=code,
        groups=queued,
        not_owned=not_owned[:20],
        not_owned_count=len(not_owned),
    )
    return not_owned
