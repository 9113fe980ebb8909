"""Sharding: big groups split into 一群, 二群 …, and nobody moves when a few people come and go."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from matrix.provisioning.sharding import assign_shards, group_name, shard_label


def blocks_of(schools: dict[str, list[int]]) -> list[tuple[str, list[int]]]:
    return [(unit, people) for unit, people in schools.items()]


def where(shards: dict[int, list[int]]) -> dict[int, int]:
    return {p: s for s, members in shards.items() for p in members}


def test_a_group_that_fits_is_one_unnumbered_room():
    assert assign_shards([("s1", [1, 2, 3])], room=3) == {0: [1, 2, 3]}


def test_a_big_group_splits_evenly_and_keeps_schools_together():
    schools = {f"s{i}": [10 * i + k for k in range(4)] for i in range(10)}  # 40 people
    shards = assign_shards(blocks_of(schools), room=25)
    assert sorted(shards) == [1, 2]
    assert all(len(m) <= 25 for m in shards.values())
    assert abs(len(shards[1]) - len(shards[2])) <= 4
    for people in schools.values():
        assert len({where(shards)[p] for p in people}) == 1


def test_when_a_single_room_must_split_it_becomes_the_first_shard():
    prior = dict.fromkeys(range(10), 0)
    shards = assign_shards([("s1", list(range(10))), ("s2", list(range(10, 16)))], 12, prior, {0})
    assert shards[1][:10] == list(range(10))  # the room's members stay: it is renamed 一群
    assert set(shards) == {1, 2}


def test_newcomers_fill_holes_before_a_new_room_opens():
    prior = {1: 1, 2: 1, 3: 2}
    shards = assign_shards([("a", [1, 2]), ("b", [3]), ("c", [4])], 2, prior, {1, 2})
    assert shards == {1: [1, 2], 2: [3, 4]}
    shards = assign_shards(
        [("a", [1, 2]), ("b", [3, 4]), ("c", [5])], 2, {1: 1, 2: 1, 3: 2, 4: 2}, {1, 2}
    )
    assert shards == {1: [1, 2], 2: [3, 4], 3: [5]}


def test_names_carry_the_numeral():
    assert shard_label(0) == "" and shard_label(1) == "一" and shard_label(12) == "十二"
    assert (
        group_name("{unit.name}少先队大队辅导员{shard}群", "乙县", "K1", 0)
        == "乙县少先队大队辅导员群"
    )
    assert (
        group_name("{unit.name}少先队大队辅导员{shard}群", "乙县", "K1", 3)
        == "乙县少先队大队辅导员三群"
    )
    assert group_name("{unit.code}委员群", "乙县", "K1", 2) == "K1委员群（二）"


school_sizes = st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    sizes=school_sizes,
    room=st.integers(min_value=3, max_value=40),
    leaving=st.sets(st.integers(min_value=0, max_value=400), max_size=15),
    new_schools=st.lists(st.integers(min_value=1, max_value=5), max_size=8),
    new_in_old=st.dictionaries(
        st.integers(min_value=0, max_value=59), st.integers(1, 2), max_size=8
    ),
)
def test_random_joins_and_departures_move_nobody_else(
    sizes, room, leaving, new_schools, new_in_old
):
    """Property: after any adds and removes, everyone who stayed is in the shard they were in,
    and every shard stays within its seats."""
    ids = iter(range(1, 10_000))
    before = {f"s{i:03d}": [next(ids) for _ in range(n)] for i, n in enumerate(sizes)}
    first = assign_shards(blocks_of(before), room)
    placed = where(first)

    after = {u: [p for p in people if p not in leaving] for u, people in before.items()}
    for i, extra in new_in_old.items():
        unit = f"s{i % len(sizes):03d}"
        after[unit] = after[unit] + [next(ids) for _ in range(extra)]
    for j, n in enumerate(new_schools):
        after[f"t{j:03d}"] = [next(ids) for _ in range(n)]
    after = {u: p for u, p in after.items() if p}

    second = assign_shards(blocks_of(after), room, placed, set(first))
    moved = where(second)
    stayed = set(placed) & set(moved)
    renamed = {0: 1} if 0 in first and 0 not in second else {}
    assert all(moved[p] == renamed.get(placed[p], placed[p]) for p in stayed)
    assert all(len(m) <= room for m in second.values())
    assert set(moved) == {p for people in after.values() for p in people}


def test_when_seats_shrink_only_the_overflow_moves():
    """More office staff pinned in every shard means fewer free seats: only as many people
    as no longer fit leave a full shard."""
    people = list(range(1, 21))
    first = assign_shards([("a", people)], room=10)
    placed = where(first)
    second = assign_shards([("a", people)], 9, placed, set(first))
    moved = [p for p in people if where(second)[p] != placed[p]]
    assert len(moved) == sum(max(0, len(m) - 9) for m in first.values())


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=400),
    room=st.integers(min_value=8, max_value=60),
)
def test_a_fresh_split_is_the_fewest_shards_of_near_equal_size(sizes, room):
    """⌈n/room⌉ shards, none a tiny leftover: sizes differ by less than two schools' worth."""
    blocks, pid = [], 0
    for i, n in enumerate(sizes):
        blocks.append((f"s{i}", list(range(pid, pid + n))))
        pid += n
    shards = assign_shards(blocks, room)
    total = sum(sizes)
    assert len(shards) == max(1, math.ceil(total / room))
    lengths = [len(m) for m in shards.values()]
    assert max(lengths) <= room
    if len(shards) > 1:
        assert max(lengths) - min(lengths) <= 2 * max(sizes)


def test_a_county_of_502_counselors_is_two_rooms_of_about_251():
    blocks = [(f"s{i}", list(range(i * 2, i * 2 + 2))) for i in range(251)]
    shards = assign_shards(blocks, room=500)
    assert sorted(len(m) for m in shards.values()) == [250, 252] or sorted(
        len(m) for m in shards.values()
    ) == [251, 251]
