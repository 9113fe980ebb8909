"""Room events in matrix groups: joins are reviewed, leaves close reviews, topic changes noted.

A joiner bound to the roster is welcomed and told the nickname format; anyone else is held
(``matrix.held_joiners``) and the group's office is @-mentioned with 同意/拒绝 and the number.
Interim until issue 3's join review, which decides by expected membership and a timeout policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from bot.calls import GroupRef, Reply
from bot.tables import PERSON, POSITION
from matrix import audit_log, held_joiners
from matrix.platform import Platform, RoomEvent

if TYPE_CHECKING:
    from bot.dispatch import Bot


def office_contacts(conn: Connection, bot: Bot, unit_code: str) -> tuple[str, ...]:
    """Contact ids of the unit's office (its admin roles), to @-mention them."""
    roles = bot.permissions.office_roles.get(bot.tree.level(unit_code), frozenset())
    rows = conn.execute(
        select(PERSON.c.wechat_id)
        .select_from(PERSON.join(POSITION, POSITION.c.person_id == PERSON.c.id))
        .where(
            POSITION.c.unit_code == unit_code,
            POSITION.c.role.in_(sorted(roles)),
            PERSON.c.wechat_id.is_not(None),
            PERSON.c.removed_at.is_(None),
        )
        .order_by(POSITION.c.seq, PERSON.c.id)
    )
    return tuple(dict.fromkeys(r[0] for r in rows))


async def joined(
    bot: Bot, platform: Platform, conn: Connection, group: GroupRef, event: RoomEvent
) -> Reply | None:
    """Welcome roster members, hold everyone else; None when only bot accounts joined."""
    welcomed: list[str] = []
    held: list[held_joiners.Held] = []
    names: dict[str, str] | None = None
    for cid in event.contact_ids:
        if cid in bot.accounts:
            continue
        asker = bot.permissions.asker(conn, cid)
        previous = held_joiners.latest(conn, group.id, cid)
        if asker.bound or (previous is not None and previous.state == held_joiners.APPROVED):
            welcomed.append(asker.person_name or (previous.name if previous else cid))
            continue
        if names is None:
            names = {m.contact_id: m.name for m in await platform.list_members(group.room_id)}
        entry = held_joiners.hold(conn, group.id, cid, names.get(cid, ""), event.inviter_id)
        audit_log.record(
            conn,
            f"bot:{platform.account_id}",
            "join.held",
            group.unit_code,
            group_id=group.id,
            joiner=cid,
            held_id=entry.id,
            inviter=event.inviter_id,
        )
        held.append(entry)
    if not welcomed and not held:
        return None
    mentions = office_contacts(conn, bot, group.unit_code) if held else ()
    return Reply(
        "joined.j2",
        {"welcomed": welcomed, "held": held, "hint": bot.blueprint.matrix.nickname_hint},
        mentions,
    )


def left(conn: Connection, group: GroupRef, event: RoomEvent) -> None:
    """A held joiner who leaves needs no decision any more."""
    for cid in event.contact_ids:
        held_joiners.left(conn, group.id, cid)


def topic_changed(bot: Bot, group: GroupRef, event: RoomEvent) -> Reply | None:
    """Someone renamed a matrix group: say what its name should be."""
    by_bot = any(c in bot.accounts for c in event.contact_ids)
    if by_bot or event.topic == group.name:
        return None
    return Reply("topic_changed.j2", {"topic": event.topic, "official": group.name})
