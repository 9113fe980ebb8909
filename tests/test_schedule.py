"""The schedule: shortest under the quotas, checked against brute force on small cases."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest

from matrix.provisioning.schedule import (
    AccountQuota,
    Job,
    Schedule,
    ScheduleError,
    account_days,
    lower_bound,
    schedule,
)


def quota(name: str, creations: int, ops: int) -> AccountQuota:
    """An account doing ``ops`` operations a day at one per second."""
    return AccountQuota(name, creations, 1.0, ops / 3600)


def check_quotas(s: Schedule, jobs: list[Job], accounts: list[AccountQuota]) -> None:
    """Every quota honoured: creations and operations per account per day, each group's work
    after its creation on that one account, fixed owners kept, all work done by ``s.days``."""
    by_id = {a.id: a for a in accounts}
    made: dict[tuple[str, int], int] = defaultdict(int)
    ops: dict[tuple[str, int], int] = defaultdict(int)
    for job, p in zip(jobs, s.placements, strict=True):
        if job.work == 0:
            assert p is None
            continue
        assert p is not None
        if job.account is not None:
            assert p.account == job.account
        days = list(p.each_day())
        assert len(days) == job.work
        assert days == sorted(days)
        assert days[-1] <= s.days
        if job.create:
            made[(p.account, days[0])] += 1
        for d in days:
            ops[(p.account, d)] += 1
    for (acc, _), n in made.items():
        assert n <= by_id[acc].daily_creations
    for (acc, _), n in ops.items():
        assert n <= by_id[acc].daily_ops


def brute_force(jobs: list[Job], accounts: list[AccountQuota], horizon: int) -> int:
    """The fewest days over every choice of account and creation day for every group,
    each account then working without idling (simulated day by day)."""
    options = []
    for j in jobs:
        accs = [a for a in accounts if (j.account is None or a.id == j.account)]
        accs = [a for a in accs if not j.create or a.daily_creations > 0]
        days = range(1, horizon + 1) if j.create else [1]
        options.append([(a, d) for a in accs for d in days])
    best = horizon + 1
    for choice in itertools.product(*options):
        per_day: dict[tuple[str, int], int] = defaultdict(int)
        for j, (a, d) in zip(jobs, choice, strict=True):
            if j.create:
                per_day[(a.id, d)] += 1
        if any(
            n > next(a for a in accounts if a.id == k[0]).daily_creations
            for k, n in per_day.items()
        ):
            continue
        span = 0
        for a in accounts:
            released: dict[int, int] = defaultdict(int)
            for j, (acc, d) in zip(jobs, choice, strict=True):
                if acc.id == a.id and j.work:
                    released[d] += j.work
            if not released:
                continue
            left, day = 0, 0
            while day < max(released) or left:
                day += 1
                left += released.get(day, 0)
                left -= min(left, a.daily_ops)
            span = max(span, day)
        best = min(best, span)
    return best


def random_case(rng: random.Random) -> tuple[list[Job], list[AccountQuota]]:
    accounts = [
        quota(f"a{i}", rng.randint(1, 3), rng.randint(3, 12)) for i in range(rng.randint(1, 2))
    ]
    jobs = []
    for _ in range(rng.randint(1, 4)):
        fixed = rng.random() < 0.2
        create = not fixed and rng.random() < 0.8
        jobs.append(Job(rng.randint(1, 14), create, rng.choice(accounts).id if fixed else None))
    return jobs, accounts


def test_shortest_on_random_small_cases_equals_brute_force():
    rng = random.Random(20170328)
    checked = 0
    for _ in range(250):
        jobs, accounts = random_case(rng)
        s = schedule(jobs, accounts)
        check_quotas(s, jobs, accounts)
        assert s.lower_bound <= s.days
        assert s.optimal, (jobs, accounts)
        if s.days <= 6:
            assert s.days == brute_force(jobs, accounts, s.days), (jobs, accounts)
            checked += 1
    assert checked > 150


def test_one_account_ten_groups_a_day():
    s = schedule([Job(20, True)] * 25, [AccountQuota("bot")])
    assert (s.days, s.lower_bound, s.proof) == (3, 3, "lower_bound")
    assert [a.creations for a in s.accounts] == [25]
    check_quotas(s, [Job(20, True)] * 25, [AccountQuota("bot")])


def test_a_second_account_halves_the_days():
    jobs = [Job(300, True)] * 40
    accounts = [AccountQuota("a"), AccountQuota("b")]
    s = schedule(jobs, accounts)
    assert s.days == 2
    assert sorted(a.creations for a in s.accounts) == [20, 20]
    check_quotas(s, jobs, accounts)


def test_pace_limits_a_big_room_of_an_existing_owner():
    """A room the bots already run stays with its owner, even if the other account is idle."""
    slow = quota("slow", 10, 100)
    jobs = [Job(450, False, "slow"), Job(5, True)]
    s = schedule(jobs, [slow, quota("fast", 10, 1000)])
    assert s.days == 5 and s.placements[0] is not None and s.placements[0].account == "slow"
    assert s.placements[1] is not None and s.placements[1].account == "fast"


def test_when_the_bound_is_not_met_exhaustive_search_proves_the_schedule():
    """Three groups of 6 operations, two accounts doing 9 a day: the work (18) fits the pooled
    capacity in one day, but no split of whole groups does — two days is optimal."""
    accounts = [quota("a", 5, 9), quota("b", 5, 9)]
    jobs = [Job(6, True)] * 3
    s = schedule(jobs, accounts)
    assert s.lower_bound == 1
    assert (s.days, s.optimal, s.proof) == (2, True, "search")
    assert brute_force(jobs, accounts, 2) == 2


def test_claim_a_heaviest_first_is_never_worse_than_any_creation_order():
    rng = random.Random(7)
    checked = 0
    for _ in range(200):
        a = quota("a", rng.randint(1, 3), rng.randint(2, 10))
        works = [rng.randint(1, 12) for _ in range(rng.randint(1, 5))]
        days, _ = account_days(a, [(i, w, True) for i, w in enumerate(works)])
        if days <= 6:
            assert days == brute_force([Job(w, True) for w in works], [a], days)
            checked += 1
    assert checked > 100


def test_lower_bound_counts_creations_and_operations():
    accounts = [quota("a", 2, 10), quota("b", 3, 10)]
    assert lower_bound([Job(1, True)] * 11, accounts) == 3  # 11 groups at 5 a day
    assert lower_bound([Job(25, False)] * 2, accounts) == 3  # 50 operations at 20 a day
    assert lower_bound([], accounts) == 0


def test_nothing_to_do_takes_no_days():
    s = schedule([Job(0, False)], [AccountQuota("a")])
    assert (s.days, s.placements) == (0, [None])


def test_quotas_that_cannot_carry_the_plan_are_a_clear_error():
    with pytest.raises(ScheduleError, match="没有可以建群的账号"):
        schedule([Job(3, True)], [AccountQuota("a", daily_group_creations=0)])
    with pytest.raises(ScheduleError, match="没有配置机器人账号"):
        schedule([Job(3, True)], [])
    with pytest.raises(ScheduleError, match="不在配置的账号中"):
        schedule([Job(3, False, "ghost")], [AccountQuota("a")])
