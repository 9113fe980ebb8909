"""#匹配 and #确认匹配 in chat: ``matrix.provisioning.matching`` behind two executors.

``#匹配 [本群]`` (an office of the group's unit or above, by the one authority policy) reads the
room's members from the platform, records them (``actual.sync_members``), suggests a roster
person for each one bound to nobody and keeps the numbered suggestions; it answers with the
counts and sends the suggestions as a CSV file, as #汇总 sends its tables.

``#确认匹配 [全部|1,3,5-9]`` binds the chosen suggestions as office decisions (the binding path
of #同意, one audit entry per binding). A person with office authority, or one candidate of two
same-name persons, is confirmed only by a number typed alone; an office person only by an office
of their unit or above, and their office is told of it in its own group, as #同意 tells it. Then the members nobody was found for are held by the join review (the
admins are @-mentioned, as when someone joins), and everyone just bound whose 群昵称 is
off-pattern is asked, in the same one message, to fix it.

Both read the platform first and do their database work in a worker thread with a connection of
their own (``Services.offload``): a group of 500 must not hold up the other groups' commands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.chat.commands import Command, Kind, Param, Who, number
from bot.chat.context import Call, Reply, Services
from bot.chat.review import announce_bound
from bot.render.match import file_name, suggestions_csv
from matrix.errors import MatrixError
from matrix.platform import Member
from matrix.provisioning import matching
from matrix.provisioning.actual import sync_members
from matrix.relay.bind_claims import office_contacts

TEMPLATE = "match.j2"  # replies/match.j2 includes the one of templates/match/ named
ALL_WORDS = ("全部", "所有", "all")
MAX_TEXT = 200  # characters of a selection: 1,3,5-9 needs few
_SPLIT = re.compile(r"[\s,，、;；]+")
_RANGE = re.compile(r"^([^-－—–~～至到]+)[-－—–~～至到]([^-－—–~～至到]+)$")
_HOW = "请写 #确认匹配 全部，或 #确认匹配 1,3,5-9（编号见 #匹配 的表格）"


def selection(text: str | None) -> list[int] | None:
    """The numbers ``#确认匹配`` names, in order, each once; None for 全部 (or nothing). Typed
    by anyone: bounded in length and count, every token read whole before anything is done.

    >>> selection("1,3，5-7 3"), selection("全部"), selection("２～３")
    ([1, 3, 5, 6, 7], None, [2, 3])
    """
    if text is None or text.strip().casefold() in ALL_WORDS:
        return None
    if len(text) > MAX_TEXT:
        raise MatrixError(f"编号写得太长（{len(text)} 字）", fix=_HOW)
    out: list[int] = []
    for token in _SPLIT.split(text.strip()):
        if not token:
            continue
        found = _RANGE.match(token)
        try:
            if found is None:
                out.append(number(token))
                continue
            low, high = number(found[1]), number(found[2])
        except ValueError:
            raise MatrixError(f"看不懂编号“{token[:20]}”", fix=_HOW) from None
        if high < low or high - low >= matching.MAX_SELECTED:
            raise MatrixError(f"编号范围“{token[:20]}”不对", fix=_HOW)
        out.extend(range(low, high + 1))
        if len(out) > matching.MAX_SELECTED:
            break
    if len(out) > matching.MAX_SELECTED:
        raise MatrixError(f"一次最多确认 {matching.MAX_SELECTED} 条", fix="请分几次确认")
    if not out:
        raise MatrixError("没有写编号", fix=_HOW)
    return list(dict.fromkeys(out))


def _suggest(
    bot: Services,
    group_id: int,
    group_name: str,
    members: Sequence[Member],
    *,
    actor: str,
    now: datetime,
) -> tuple[matching.Shown, Path | None]:
    """#匹配's work, in a worker thread: record the members, suggest, keep, write the file.
    Three transactions, the suggesting a read between two short writes: SQLite has one writer,
    and every other group's command writes its message claim."""
    with bot.engine.begin() as conn:
        sync_members(conn, group_id, members, bots=frozenset(bot.accounts), actor=actor)
    names = {m.contact_id: m.name for m in members}
    with bot.engine.connect() as conn:
        found = matching.suggest(conn, bot.blueprint, group_id, names)
    with bot.engine.begin() as conn:
        shown = matching.store(
            conn, group_id, found, actor=actor, now=now, hours=bot.join_policy.hours
        )
    if not shown.rows:
        return shown, None
    path = bot.summaries.new_folder() / file_name(group_name, bot.summaries.today(now))
    path.write_bytes(suggestions_csv([(group_id, group_name, shown)]))
    return shown, path


async def match(call: Call) -> Reply:
    """#匹配 [本群]: suggestions for the group's unbound members, counted, and the file."""
    group = call.require_group()
    bot = call.core
    # read the platform first: nothing may wait on the network inside a write
    members = await call.platform.list_members(call.message.room_id)
    shown, path = await bot.offload(
        _suggest, bot, group.id, group.name, members, actor=call.asker.contact_id, now=bot.now()
    )
    data = {
        "template": "match/shown.j2",
        "s": shown,
        "group": group.name,
        "hours": bot.join_policy.hours,
        "attached": path is not None,
    }
    audit = {
        "sure": len(shown.sure),
        "ambiguous": shown.ambiguous_members,
        "unmatched": len(shown.unmatched),
    }
    return Reply(TEMPLATE, data, audit=audit, files=(str(path),) if path else ())


def _confirm(
    bot: Services, group_id: int, numbers: list[int] | None, asker: Any, now: datetime
) -> matching.Confirmed:
    """#确认匹配's work, in a worker thread, in transactions of its own."""
    authority = bot.authority

    def may_confirm_office(units: Any) -> bool:
        # an office of the person's unit or above: every unit where they hold office
        return all(authority.covers(asker, u) for u in units)

    return matching.confirm(
        bot.engine,
        bot.blueprint,
        group_id,
        numbers,
        actor=asker.contact_id,
        now=now,
        may_confirm_office=may_confirm_office,
        policy=bot.join_policy,
    )


async def confirm_match(call: Call) -> Reply:
    """#确认匹配 [全部|1,3,5-9]: bind the chosen suggestions; hold the strangers; one request
    to fix the 群昵称."""
    group = call.require_group()
    bot = call.core
    numbers = selection(call.args["numbers"])
    done = await bot.offload(_confirm, bot, group.id, numbers, call.asker, bot.now())
    for row in done.bound:
        # an office person's binding is told to their office, as #同意 tells it; the persons
        # bound in bulk hold no office and are listed to the office that typed this
        if row.person is not None and row.person.office:
            announce_bound(call, row.person.person_id, row.contact_id)
    held = [d for d in done.held if not d.repeat]  # announced once, as joins are
    mentions = tuple(dict.fromkeys(c for d in held for c in d.notify))
    if held and not mentions:
        with bot.engine.connect() as conn:
            mentions = office_contacts(conn, bot.relay.env, group.unit_code)
    fix = done.fix_nickname
    mentions = tuple(dict.fromkeys([*mentions, *(contact for contact, _ in fix)]))
    policy = bot.join_policy
    data = {
        "template": "match/confirmed.j2",
        "c": done,
        "held": held,
        "welcomed": [],
        "fix": fix,
        "hint": bot.blueprint.matrix.nickname_hint,
        "hours": policy.hours,
        "on_timeout": policy.on_timeout,
    }
    audit = {
        "selection": "all" if numbers is None else numbers[:50],
        "bound": len(done.bound),
        "held": len(done.held),
    }
    return Reply(TEMPLATE, data, mentions, audit)


MATCH = Command(
    "match",
    "匹配",
    "match",
    (Param("here", "本群", Kind.CHOICE, required=False, choices=("本群",)),),
    Who.OFFICE,
    "按群昵称把本群未绑定的成员与名册对应起来，列出可确认、重名待定和未匹配的（附表格）",
    "#匹配",
    templates=(TEMPLATE,),
    executor=match,
)
CONFIRM_MATCH = Command(
    "confirm_match",
    "确认匹配",
    "confirm-match",
    (Param("numbers", "全部|编号", Kind.TEXT, required=False),),
    Who.OFFICE,
    "确认 #匹配 的建议并绑定名册（有办公室权限的人须单独写其编号）",
    "#确认匹配 1,3,5-9",
    templates=(TEMPLATE,),
    executor=confirm_match,
)
