"""Splitting a group too big for one WeChat room into shards (分群: 一群, 二群 …), stably.

A county with 600 schools has about 2,000 counselors; a room holds 500. The group is split into
shards, each a room of its own. The leading office's staff, the admins and the responsible person
are *pinned*: they sit in every shard. Everyone else fills the free seats.

Stability is the point: once people are in a shard, re-planning after a few joins and departures
must not move them. So the assignment starts from where everyone already is (``prior``) and
only places the newcomers; nobody is moved unless their shard no longer has a seat for them
(which happens only when the free seats per shard shrink, e.g. more office staff to pin).

>>> assign_shards([("s1", [1, 2]), ("s2", [3, 4])], room=10)
{0: [1, 2, 3, 4]}
>>> assign_shards([("s1", [1, 2]), ("s2", [3, 4]), ("s3", [5])], room=3)
{1: [1, 2], 2: [3, 4, 5]}

A newcomer joins the shard where their school already is, if it has a seat; nobody else moves:

>>> assign_shards([("s1", [1, 2]), ("s2", [3, 4, 6]), ("s3", [5])], room=3,
...               prior={1: 1, 2: 1, 3: 2, 4: 2, 5: 1})
{1: [1, 2, 5], 2: [3, 4, 6]}
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from matrix.numerals import chinese_number

Block = tuple[str, Sequence[int]]  # (the unit the people come from, person ids in roster order)


def shard_label(shard: int) -> str:
    """How ``{shard}`` renders in a group name: "" when not split, else 一, 二, ….

    >>> shard_label(0), shard_label(2), shard_label(11)
    ('', '二', '十一')
    """
    return chinese_number(shard) if shard else ""


@dataclass(frozen=True)
class _UnitRef:
    name: str
    code: str


def group_name(template: str, unit_name: str, unit_code: str, shard: int) -> str:
    """The room name for one shard, from the blueprint's template.

    A template without ``{shard}`` gets the numeral appended when the group is split, so that
    shards never share a name.

    >>> group_name("{unit.name}少先队大队辅导员{shard}群", "乙县", "K1", 2)
    '乙县少先队大队辅导员二群'
    >>> group_name("{unit.name}委员群", "乙县", "K1", 1)
    '乙县委员群（一）'
    """
    name = template.format(unit=_UnitRef(unit_name, unit_code), shard=shard_label(shard))
    if shard and "{shard}" not in template:
        name += f"（{shard_label(shard)}）"
    return name


def split_number(used: Collection[int]) -> int:
    """The number the unsplit room (shard 0) takes when its group splits: 1, unless taken.

    >>> split_number({0}), split_number({0, 1, 2})
    (1, 3)
    """
    return 1 if 1 not in used else max(used) + 1


def assign_shards(
    blocks: Sequence[Block],
    room: int,
    prior: Mapping[int, int] | None = None,
    existing: Collection[int] = (),
) -> dict[int, list[int]]:
    """Place the unpinned members into shards of at most ``room`` members each.

    ``blocks`` are the members by the unit they come from (a school's counselors), in roster
    order, no one in two blocks; a block is kept in one shard when it fits. ``prior`` maps a person to the shard they
    are in now (actually in the room, or assigned by the last applied plan); ``existing`` are
    shard numbers that already have rooms, even if empty of unpinned members now.
    Returns shard number → members, with 0 meaning "not split" (one room, no numeral).
    Shard 0 becomes shard 1 when a group that was one room must split: the same room, renamed.
    """
    if room < 1:
        raise ValueError("a shard needs at least one free seat")
    prior = prior or {}
    if not prior and not existing and sum(len(people) for _, people in blocks) <= room:
        # the common case, a group never built that fits one room (blocks are disjoint)
        return {0: [pid for _, people in blocks for pid in people]}
    order: dict[int, int] = {}
    for _, people in blocks:
        for pid in people:
            order.setdefault(pid, len(order))
    used = {prior[p] for p in order if p in prior} | set(existing)
    if used <= {0} and len(order) <= room:
        return {0: list(order)}
    if 0 in used:  # the single room becomes 一群
        renamed = split_number(used)
        prior = {p: (renamed if s == 0 else s) for p, s in prior.items()}
        used = (used - {0}) | {renamed}

    shards: dict[int, list[int]] = {s: [] for s in sorted(used)}
    placed: set[int] = set()
    for pid in order:
        s = prior.get(pid)
        if s is not None and s in shards and len(shards[s]) < room:
            shards[s].append(pid)
            placed.add(pid)
    home: dict[str, dict[int, int]] = {}  # unit -> shard -> how many of its people sit there
    newcomers: list[Block] = []
    for unit, people in blocks:
        fresh = []
        for pid in people:
            if pid not in placed:
                placed.add(pid)  # a person selected twice is placed once
                fresh.append(pid)
            elif pid in prior and prior[pid] in shards:
                counts = home.setdefault(unit, {})
                counts[prior[pid]] = counts.get(prior[pid], 0) + 1
        if fresh:
            newcomers.append((unit, fresh))
    if not shards:
        _fill_fresh(shards, newcomers, room)
    else:
        for unit, people in newcomers:
            _place_block(shards, people, room, home.get(unit, {}))
    for members in shards.values():
        members.sort(key=order.__getitem__)
    return shards


def _fill_fresh(shards: dict[int, list[int]], blocks: list[Block], room: int) -> None:
    """First assignment: exactly ⌈n/room⌉ shards of near-equal size (no tiny leftover shard),
    each with room to grow, and no unit's block split across shards when it can be helped.

    Blocks are laid out in order; a block goes to the next shard once most of it would lie past
    the current shard's fair share of the cumulative count (i·n/k) and the shards left can seat
    everyone left, so sizes differ by about a block. A block is cut only where a shard is full.
    """
    total = sum(len(people) for _, people in blocks)
    count = math.ceil(total / room)
    current, laid = 1, 0
    shards[current] = []
    for _, people in blocks:
        boundary = current * total / count
        past = laid + len(people) / 2 > boundary
        # ... but only while the shards left can still seat everyone left
        if (
            past
            and current < count
            and shards[current]
            and total - laid <= (count - current) * room
        ):
            current += 1
            shards[current] = []
        for pid in people:
            if len(shards[current]) >= room:
                current += 1
                shards[current] = []
            shards[current].append(pid)
        laid += len(people)


def _place_block(
    shards: dict[int, list[int]], people: Sequence[int], room: int, home: Mapping[int, int]
) -> None:
    """A newcomer block goes whole into the shard where most of its unit already sits, else
    into the one with the most free seats; if no shard can take it whole it is spread over the
    free seats; a new shard opens only when none are left (each new room costs a day's
    creation quota)."""
    free = {s: room - len(m) for s, m in shards.items()}
    best = max(free, key=lambda s: (free[s] >= len(people), home.get(s, 0), free[s], -s))
    if free[best] >= len(people):
        shards[best].extend(people)
        return
    for pid in people:
        open_ = [s for s, m in shards.items() if len(m) < room]
        if not open_:
            shards[max(shards) + 1] = []
            open_ = [max(shards)]
        target = max(open_, key=lambda s: (room - len(shards[s]), -s))
        shards[target].append(pid)
