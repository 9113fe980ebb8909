"""The watch list (舆情监控): a message in any matrix group that contains a watch word is flagged
to that group's admins, in the leading unit's office group, without blocking anything. At most
``watch_limit`` alerts per group per window go out; the rest are only recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, insert, select

from matrix.relay.accounts import account_rates
from matrix.relay.env import RelayEnv
from matrix.relay.errors import NotInMatrix
from matrix.relay.guard import watch_match
from matrix.relay.outbox import enqueue
from matrix.relay.people import group_for_room, office_group, office_roles, person_for_contact, unit
from matrix.tables import MEMBERSHIP, PERSON, POSITION, WATCH_FLAG

EXCERPT = 60


@dataclass(frozen=True)
class WatchAlert:
    """A watch-list match: the word, the group, whether the admins were alerted."""

    word: str
    group_name: str
    notified: bool  # False: recorded only, the window's alerts are used up


def watch_message(env: RelayEnv, room_id: str, contact_id: str, text: str) -> WatchAlert | None:
    """Check one incoming message against the watch list; flag it if it matches."""
    word = watch_match(env.options, text)
    if word is None:
        return None
    now = env.clock.now()
    with env.engine.begin() as conn:
        try:
            group = group_for_room(conn, room_id)
        except NotInMatrix:
            return None
        since = now - timedelta(minutes=env.options.watch_window_minutes)
        recent = conn.execute(
            select(func.count()).where(
                WATCH_FLAG.c.group_id == group.id, WATCH_FLAG.c.notified, WATCH_FLAG.c.at >= since
            )
        ).scalar_one()
        notify = recent < env.options.watch_limit
        excerpt = text.strip()[:EXCERPT]
        inserted = conn.execute(
            insert(WATCH_FLAG).values(
                group_id=group.id,
                contact_id=contact_id,
                word=word,
                excerpt=excerpt,
                notified=notify,
                at=now,
            )
        ).inserted_primary_key
        assert inserted is not None
        if notify:
            person = person_for_contact(conn, contact_id)
            bots = set(account_rates(conn))
            admins = [
                c
                for c in conn.execute(
                    select(MEMBERSHIP.c.contact_id).where(
                        MEMBERSHIP.c.group_id == group.id,
                        MEMBERSHIP.c.state == "actual",
                        MEMBERSHIP.c.is_admin,
                    )
                ).scalars()
                if c and c not in bots
            ]
            leader = unit(conn, group.unit_code)
            roles = office_roles(env.blueprint).get(leader.level, frozenset()) if leader else ()
            admins += (
                conn.execute(
                    select(PERSON.c.wechat_id)
                    .join(POSITION, POSITION.c.person_id == PERSON.c.id)
                    .where(
                        POSITION.c.unit_code == group.unit_code,
                        POSITION.c.role.in_(list(roles)),
                        PERSON.c.wechat_id.is_not(None),
                        PERSON.c.removed_at.is_(None),
                    )
                )
                .scalars()
                .all()
            )
            target = office_group(conn, env.blueprint, group.unit_code) or group
            enqueue(
                conn,
                env,
                key=f"flag:{inserted[0]}",
                kind="flag",
                group=target,
                template="relay/watch_flag.j2",
                context={
                    "word": word,
                    "flagged_group": group.name,
                    "sender_name": person.name if person else contact_id,
                    "excerpt": excerpt,
                    "limit": env.options.watch_limit,
                    "window": env.options.watch_window_minutes,
                    "last": recent + 1 == env.options.watch_limit,
                },
                mentions=list(dict.fromkeys(admins)),
            )
    return WatchAlert(word, group.name, notify)
