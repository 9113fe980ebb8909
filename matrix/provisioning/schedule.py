"""Which bot account carries out each step of a plan, on which day: the shortest schedule the
WeChat quotas allow, with a proof that it is the shortest.

The model
---------
* Each bot account *i* may create at most ``c_i`` groups a day (WeChat allows about 10) and
  carries out at most ``o_i`` operations a day: it paces itself at ``ops_per_second`` (about one
  per second) during ``active_hours`` a day, so ``o_i = ⌊ops_per_second · active_hours · 3600⌋``.
  Creating a group is one operation too, and uses one of the day's creations.
* All the work on a group (its creation, invitations, removals, admins, renaming) is done by one
  account, the group's owner: a room the bots already run stays with its owner; the scheduler
  picks the owner of every new group. (Invitations to a group above 40 members need the invitee
  to accept; that does not hold the account up, it is counted and shown, not waited for.)
* A group's work cannot start before the day it is created; within a day an account does that
  day's creations first, then the rest in the order it became possible.
* The schedule's length is the number of days until the last operation is done.

Why the result is the shortest (the proof the scheduler returns)
----------------------------------------------------------------
*Claim A: one account.* For a given set of groups, an account finishes soonest by creating the
heaviest groups first (``c_i`` a day) and never idling. Whatever the order, with work released
on day *t* only usable from day *t*, the last day is ``max_t (t − 1 + ⌈W_{≥t} / o_i⌉)`` where
``W_{≥t}`` is the work released on day *t* or later; any order that never idles reaches it.
Putting the heaviest groups in the earliest creation slots leaves the lightest in the late slots,
which makes every ``W_{≥t}`` as small as it can be at once, so every term and the maximum are
minimal. ``account_days`` computes exactly this.

*Claim B: lower bounds.* No schedule can be shorter than any of:
  1. ``⌈new groups / Σ c_i⌉`` — the creations alone;
  2. ``⌈all operations / Σ o_i⌉`` — the operations alone, even if shared perfectly;
  3. for each account, the days its fixed rooms' work needs (claim A);
  4. for each new group, the days the best account needs for that group plus its fixed work.

*The certificate.* ``schedule`` builds a schedule greedily (largest groups first, each to the
account with the most room left) at the smallest day count where that works. If that equals
the lower bound it is optimal by claim B. If not, and the instance is small (``search_limit``
new groups), it searches all assignments of groups to accounts, each evaluated exactly by claim
A, pruning branches that cannot beat the best found; what remains is optimal because every
assignment was either evaluated or shown not better. Otherwise the schedule says
``optimal=False`` with the gap to the bound. A certificate is returned rather than claimed
because the general problem is NP-hard: two accounts with no creation limit and equal speed
finish in ``W/2o`` days exactly when the groups' work splits evenly, which is PARTITION.

In practice the creation quota dominates: a day's ten creations bring at most ten groups of
about 500 operations, far below the 28,800 operations an account paces through in eight hours,
so the greedy meets bound 1 and the proof is the bound (e.g. the national matrix with one
account: every group created at ten a day, all invitations done the day the group is made).

>>> s = schedule([Job(work=30, create=True)] * 25, [AccountQuota("a"), AccountQuota("b")])
>>> s.days, s.lower_bound, s.optimal
(2, 2, True)
>>> sorted({p.account for p in s.placements})
['a', 'b']
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from matrix.errors import MatrixError

SECONDS_PER_HOUR = 3600
SEARCH_NODES = 200_000  # exact search budget; small instances finish far below it


class ScheduleError(MatrixError):
    """The quotas cannot carry out the plan at all (e.g. no account may create groups)."""


@dataclass(frozen=True)
class AccountQuota:
    """One bot account and what WeChat lets it do."""

    id: str
    daily_group_creations: int = 10
    ops_per_second: float = 1.0
    active_hours: float = 8.0

    @property
    def daily_ops(self) -> int:
        """Operations per day at the account's pace (at least one).

        >>> AccountQuota("a").daily_ops
        28800
        """
        return max(1, math.floor(self.ops_per_second * self.active_hours * SECONDS_PER_HOUR))

    @property
    def daily_creations(self) -> int:
        # a creation is an operation too
        return max(0, min(self.daily_group_creations, self.daily_ops))


@dataclass(frozen=True)
class Job:
    """The work on one group: ``work`` operations (its creation included when ``create``),
    all by one account; ``account`` is the owner when the room already has one."""

    work: int
    create: bool = False
    account: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where one job went: its account and, in order, (day, operations that day)."""

    account: str
    days: tuple[tuple[int, int], ...]

    def each_day(self) -> Iterator[int]:
        """The day of each of the job's operations, in order.

        >>> list(Placement("a", ((1, 2), (3, 1))).each_day())
        [1, 1, 3]
        """
        for day, n in self.days:
            for _ in range(n):
                yield day


@dataclass
class AccountLoad:
    """What one account does over the whole schedule."""

    id: str
    creations: int = 0
    operations: int = 0
    days: int = 0
    seconds: float = 0.0


@dataclass
class Schedule:
    placements: list[Placement | None]  # per job; None for a job with no work
    days: int
    lower_bound: int
    optimal: bool
    proof: str  # "lower_bound", "search" or "" (not proven)
    accounts: list[AccountLoad] = field(default_factory=list)


def account_days(
    quota: AccountQuota, jobs: Sequence[tuple[int, int, bool]]
) -> tuple[int, dict[int, tuple[tuple[int, int], ...]]]:
    """Claim A: the fewest days ``quota``'s account needs for ``jobs`` (index, work, create),
    and each job's (day, operations) — heaviest creations first, never idle.

    >>> account_days(AccountQuota("a", daily_group_creations=1, active_hours=1 / 360),
    ...              [(0, 3, True), (1, 25, True)])
    (3, {1: ((1, 10), (2, 9), (3, 6)), 0: ((2, 1), (3, 2))})
    """
    cap = quota.daily_ops
    per_day = quota.daily_creations
    fixed = [j for j in jobs if not j[2] and j[1] > 0]
    created = sorted((j for j in jobs if j[2]), key=lambda j: (-j[1], j[0]))
    if created and per_day == 0:
        raise ScheduleError(f"账号 {quota.id} 不能建群", fix="请为该账号设置 daily_group_creations")
    segments: dict[int, list[tuple[int, int]]] = {}
    queue: list[list[int]] = [[i, w] for i, w, _ in fixed]  # [job, work left], release order
    head = 0
    next_create = 0
    day = 0
    while next_create < len(created) or head < len(queue):
        day += 1
        left = cap
        for i, w, _ in created[next_create : next_create + per_day]:
            segments[i] = [(day, 1)]
            left -= 1
            queue.append([i, w - 1])
        next_create += min(per_day, len(created) - next_create)
        while left > 0 and head < len(queue):
            item = queue[head]
            if item[1] == 0:
                head += 1
                continue
            n = min(left, item[1])
            segs = segments.setdefault(item[0], [])
            if segs and segs[-1][0] == day:
                segs[-1] = (day, segs[-1][1] + n)
            else:
                segs.append((day, n))
            item[1] -= n
            left -= n
            if item[1] == 0:
                head += 1
        while head < len(queue) and queue[head][1] == 0:
            head += 1
    return day, {i: tuple(s) for i, s in segments.items()}


def lower_bound(jobs: Sequence[Job], accounts: Sequence[AccountQuota]) -> int:
    """Claim B: no schedule of ``jobs`` under ``accounts`` takes fewer days than this."""
    live = [j for j in jobs if j.work > 0]
    if not live:
        return 0
    by_id = {a.id: a for a in accounts}
    creations = sum(a.daily_creations for a in accounts)
    new = sum(1 for j in live if j.create)
    bound = max(1, math.ceil(sum(j.work for j in live) / sum(a.daily_ops for a in accounts)))
    if new:
        bound = max(bound, math.ceil(new / creations))
    fixed = _fixed_jobs(live, by_id)
    for a in accounts:
        if fixed[a.id]:
            bound = max(bound, account_days(a, fixed[a.id])[0])
    for j in live:
        if j.account is None:
            bound = max(
                bound,
                min(
                    account_days(a, [*fixed[a.id], (-1, j.work, j.create)])[0]
                    for a in _eligible(j, accounts)
                ),
            )
    return bound


def schedule(
    jobs: Sequence[Job], accounts: Sequence[AccountQuota], *, search_limit: int = 12
) -> Schedule:
    """The shortest schedule of ``jobs`` under ``accounts``, with its proof (see the module)."""
    if not accounts:
        raise ScheduleError(
            "没有配置机器人账号", fix="请在 config.toml 的 [[accounts]] 中至少配置一个"
        )
    by_id = {a.id: a for a in accounts}
    for j in jobs:
        if j.account is not None and j.account not in by_id:
            raise ScheduleError(
                f"群主账号 {j.account} 不在配置的账号中", fix="请在 [[accounts]] 中加入该账号"
            )
    if any(j.create and j.work > 0 for j in jobs) and not any(a.daily_creations for a in accounts):
        raise ScheduleError("没有可以建群的账号", fix="请为至少一个账号设置 daily_group_creations")
    bound = lower_bound(jobs, accounts)
    if bound == 0:
        return Schedule([None] * len(jobs), 0, 0, True, "lower_bound", _loads({}, accounts, jobs))
    assignment = _search_days(jobs, accounts, bound)
    days = _days_of(assignment, jobs, accounts)
    proof = "lower_bound" if days == bound else ""
    flexible = [i for i, j in enumerate(jobs) if j.account is None and j.work > 0]
    if not proof and len(flexible) <= search_limit:
        best = _exact(jobs, accounts, flexible, assignment, days, bound)
        if best is not None:
            assignment, days = best
            proof = "search" if days > bound else "lower_bound"
    placements = _placements(assignment, jobs, accounts)
    return Schedule(placements, days, bound, bool(proof), proof, _loads(assignment, accounts, jobs))


def _eligible(job: Job, accounts: Sequence[AccountQuota]) -> list[AccountQuota]:
    return [a for a in accounts if not job.create or a.daily_creations > 0]


def _fixed_jobs(
    jobs: Sequence[Job], by_id: dict[str, AccountQuota]
) -> dict[str, list[tuple[int, int, bool]]]:
    fixed: dict[str, list[tuple[int, int, bool]]] = {a: [] for a in by_id}
    for i, j in enumerate(jobs):
        if j.account is not None and j.work > 0:
            fixed[j.account].append((i, j.work, j.create))
    return fixed


def _per_account(
    assignment: dict[int, str], jobs: Sequence[Job], accounts: Sequence[AccountQuota]
) -> dict[str, list[tuple[int, int, bool]]]:
    out: dict[str, list[tuple[int, int, bool]]] = {a.id: [] for a in accounts}
    for i, acc in assignment.items():
        out[acc].append((i, jobs[i].work, jobs[i].create))
    return out


def _days_of(
    assignment: dict[int, str], jobs: Sequence[Job], accounts: Sequence[AccountQuota]
) -> int:
    split = _per_account(assignment, jobs, accounts)
    return max(account_days(a, split[a.id])[0] if split[a.id] else 0 for a in accounts)


def _greedy(
    jobs: Sequence[Job], accounts: Sequence[AccountQuota], days: int
) -> dict[int, str] | None:
    """Largest groups first, each to the account that stays least loaded; None if it does
    not fit in ``days`` (by the account-day counts, then checked exactly by claim A)."""
    assignment = {i: j.account for i, j in enumerate(jobs) if j.account and j.work > 0}
    load = {a.id: 0 for a in accounts}
    made = {a.id: 0 for a in accounts}
    for i, acc in assignment.items():
        load[acc] += jobs[i].work
        made[acc] += jobs[i].create
    flexible = sorted(
        (i for i, j in enumerate(jobs) if j.account is None and j.work > 0),
        key=lambda i: (-jobs[i].work, i),
    )
    for i in flexible:
        job = jobs[i]
        best: AccountQuota | None = None
        best_key: tuple[float, float, int] | None = None
        for n, a in enumerate(accounts):
            if job.create and made[a.id] >= a.daily_creations * days:
                continue
            if load[a.id] + job.work > a.daily_ops * days:
                continue
            key = (
                (load[a.id] + job.work) / a.daily_ops,
                made[a.id] / a.daily_creations if a.daily_creations else 0.0,
                n,
            )
            if best_key is None or key < best_key:
                best, best_key = a, key
        if best is None:
            return None
        assignment[i] = best.id
        load[best.id] += job.work
        made[best.id] += job.create
    if _days_of(assignment, jobs, accounts) > days:
        return None
    return assignment


def _search_days(
    jobs: Sequence[Job], accounts: Sequence[AccountQuota], bound: int
) -> dict[int, str]:
    """The smallest day count from ``bound`` up at which the greedy fits."""
    found = _greedy(jobs, accounts, bound)
    if found is not None:
        return found
    low, step = bound, 1
    while True:
        high = bound + step
        found = _greedy(jobs, accounts, high)
        if found is not None:
            break
        low, step = high, step * 2
    while high - low > 1:
        mid = (low + high) // 2
        attempt = _greedy(jobs, accounts, mid)
        if attempt is not None:
            high, found = mid, attempt
        else:
            low = mid
    return found


def _exact(
    jobs: Sequence[Job],
    accounts: Sequence[AccountQuota],
    flexible: list[int],
    start: dict[int, str],
    start_days: int,
    bound: int,
) -> tuple[dict[int, str], int] | None:
    """Exhaustive search over assignments of the flexible jobs (branch and bound); None when
    the node budget runs out before the search completes."""
    fixed = {i: acc for i, acc in start.items() if i not in flexible}
    order = sorted(flexible, key=lambda i: (-jobs[i].work, i))
    best: list[Any] = [dict(start), start_days]
    nodes = [0]
    signature = {a.id: (a.daily_creations, a.daily_ops) for a in accounts}

    def days_with(current: dict[int, str], acc: AccountQuota) -> int:
        mine = [(i, jobs[i].work, jobs[i].create) for i, a in current.items() if a == acc.id]
        return account_days(acc, mine)[0] if mine else 0

    def dfs(k: int, current: dict[int, str], spans: dict[str, int]) -> bool:
        nodes[0] += 1
        if nodes[0] > SEARCH_NODES:
            return False
        if max(spans.values()) >= best[1]:
            return True
        if k == len(order):
            best[0], best[1] = dict(current), max(spans.values())
            return True
        i = order[k]
        idle_tried: set[tuple[int, int]] = set()
        for acc in _eligible(jobs[i], accounts):
            # two idle accounts with the same quotas are interchangeable: try only the first
            if acc.id not in current.values():
                if signature[acc.id] in idle_tried:
                    continue
                idle_tried.add(signature[acc.id])
            current[i] = acc.id
            old = spans[acc.id]
            spans[acc.id] = days_with(current, acc)
            ok = dfs(k + 1, current, spans)
            spans[acc.id] = old
            del current[i]
            if not ok:
                return False
            if best[1] == bound:
                return True
        return True

    current = dict(fixed)
    spans = {a.id: days_with(current, a) for a in accounts}
    if not dfs(0, current, spans):
        return None
    return best[0], best[1]


def _placements(
    assignment: dict[int, str], jobs: Sequence[Job], accounts: Sequence[AccountQuota]
) -> list[Placement | None]:
    out: list[Placement | None] = [None] * len(jobs)
    split = _per_account(assignment, jobs, accounts)
    for a in accounts:
        if split[a.id]:
            for i, segs in account_days(a, split[a.id])[1].items():
                out[i] = Placement(a.id, segs)
    return out


def _loads(
    assignment: dict[int, str], accounts: Sequence[AccountQuota], jobs: Sequence[Job]
) -> list[AccountLoad]:
    loads = {a.id: AccountLoad(a.id) for a in accounts}
    split = _per_account(assignment, jobs, accounts)
    for a in accounts:
        load = loads[a.id]
        mine = split[a.id]
        load.creations = sum(1 for _, _, c in mine if c)
        load.operations = sum(w for _, w, _ in mine)
        load.days = account_days(a, mine)[0] if mine else 0
        load.seconds = load.operations / a.ops_per_second
    return list(loads.values())
