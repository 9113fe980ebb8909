"""Room events in matrix groups, through the join review of ``matrix.provisioning.join_review``.

Someone joins: the room's member list is read once (names, 微信号), then everyone who joined
is reviewed in one transaction. A roster person the rules put in this group is welcomed and
asked for the 群昵称 format; anyone else is held, and the group's admins are @-mentioned with
the request numbers for #同意 / #拒绝. Joiners are recorded as actual members either way (the
audit lists a held one as waiting for review). Someone leaves: their held request needs no
decision any more, and they leave the stored members. A held request nobody decides on times
out by the configured policy on the bot's tick (``timeouts``). Topic changes are answered with
the group's official name.
"""

from __future__ import annotations

from loguru import logger
from sqlalchemy import Connection

from bot.chat.context import Reply, Services, group_of
from bot.chat.limits import cleaned_member
from bot.render.templates import render
from matrix.platform import Member, NotSupported, Platform, PlatformError, RoomEvent
from matrix.provisioning import actual, join_review
from matrix.provisioning.sharding import group_name
from matrix.relay import bind_claims
from matrix.relay.people import GroupRef


def office_contacts(conn: Connection, bot: Services, unit_code: str) -> tuple[str, ...]:
    """Contact ids of the unit's office (its admin roles), to @-mention them: each person's
    bound contact, else their 微信号."""
    return bind_claims.office_contacts(conn, bot.relay.env, unit_code)


async def joined(
    bot: Services, platform: Platform, group: GroupRef, event: RoomEvent
) -> Reply | None:
    """Review everyone who joined; None when only bot accounts joined."""
    ids = [cid for cid in event.contact_ids if cid not in bot.accounts]
    if not ids:
        return None
    # read the platform before writing: nothing may wait on the network inside a write
    present = {m.contact_id: cleaned_member(m) for m in await platform.list_members(event.room_id)}
    members = [present.get(cid) or Member(cid) for cid in ids]
    policy = bot.join_policy
    with bot.engine.begin() as conn:
        decisions = join_review.review_joins(
            conn,
            bot.blueprint,
            group.id,
            members,
            now=bot.now(),
            policy=policy,
            actor=f"bot:{platform.account_id}",
        )
        actual.seat(conn, group.id, members, bots=bot.accounts)
        # someone held again on a request already announced (join/leave churn) is not
        # announced again: one notice, one round of @-mentions, per request
        held = [d for d in decisions if d.outcome == "hold" and not d.repeat]
        mentions: tuple[str, ...] = ()
        if held:
            mentions = tuple(dict.fromkeys(c for d in held for c in d.notify))
            mentions = mentions or office_contacts(conn, bot, group.unit_code)
    welcomed = [d for d in decisions if d.outcome == "welcome"]
    if not welcomed and not held:
        return None
    return Reply(
        "joined.j2",
        {
            "welcomed": welcomed,
            "held": held,
            "hint": bot.blueprint.matrix.nickname_hint,
            "hours": policy.hours,
            "on_timeout": policy.on_timeout,
        },
        mentions,
    )


def left(bot: Services, group: GroupRef, event: RoomEvent) -> None:
    """Whoever left needs no decision any more and is no longer a member."""
    with bot.engine.begin() as conn:
        join_review.withdraw(conn, group.id, event.contact_ids, now=bot.now())
        actual.unseat(conn, group.id, event.contact_ids)


def topic_changed(bot: Services, group: GroupRef, event: RoomEvent) -> Reply | None:
    """Someone renamed a matrix group: say what its name should be. The name the blueprint
    gives it, not the one last read (an adopted room keeps the name people gave it until it
    is renamed: renaming it so is what the plan asks)."""
    by_bot = any(c in bot.accounts for c in event.contact_ids)
    spec = bot.blueprint.group(group.kind)
    official = group_name(spec.name, bot.tree.name(group.unit_code), group.unit_code, group.shard)
    if by_bot or event.topic == official:
        return None
    return Reply("topic_changed.j2", {"topic": event.topic, "official": official})


async def timeouts(bot: Services) -> int:
    """Apply the timeout policy to held requests whose time is up: remove the joiner (or keep
    them, or remind the admins again) and say so in the group. Returns how many."""
    policy = bot.join_policy
    with bot.engine.begin() as conn:
        due = join_review.expire(conn, now=bot.now(), policy=policy, actor="bot:timeout")
    for timeout in due:
        if timeout.room_id is None:
            continue
        platform = bot.platform_for(timeout.room_id)
        if platform is None:
            logger.warning("入群审核逾期，但没有账号在群 {} 中", timeout.room_id)
            continue
        removed = False
        if timeout.action == "remove":
            try:
                await platform.remove_member(timeout.room_id, timeout.contact_id)
                removed = True
            except NotSupported:
                pass  # the account is not owner or admin here: the text asks a person to
            except PlatformError as exc:
                logger.warning("逾期移出失败：{} {}：{}", timeout.room_id, timeout.contact_id, exc)
        mentions = timeout.notify
        if not mentions:
            with bot.engine.connect() as conn:
                group = group_of(conn, timeout.room_id)
                if group is not None:
                    mentions = office_contacts(conn, bot, group.unit_code)
        text = render("replies/join_timeout.j2", timeout=timeout, removed=removed).strip()
        await bot.outbox.send(platform, timeout.room_id, text, mentions)
    return len(due)
