"""Spreading a notice's copies over the bot accounts: each group can only be sent by an account
that is in it, every account sends at its own pace, and the relay is done when the busiest
account is. That is scheduling unit jobs on machines with eligibility (P|M_j, p_j=1|C_max).

``assign`` starts greedily (most constrained groups first, each to the eligible account that
would finish soonest) and then moves copies along augmenting paths, away from the account that
finishes last, until no path can shorten it; with equal rates that is optimal. ``lower_bound``
is the fractional optimum ``max over account sets S of (copies only S can send) / (S's rate)``,
the makespan no assignment can beat.

>>> a = assign([["a"], ["a"], ["a", "b"], ["a", "b"]], {"a": 1.0, "b": 1.0})
>>> a.account_of, a.loads
(['a', 'a', 'b', 'b'], {'a': 2, 'b': 2})
>>> assign([["a", "b"]] * 5, {"a": 1.0, "b": 1.0}).account_of
['a', 'b', 'a', 'b', 'a']
>>> lower_bound([["a"], ["a"], ["a"], ["a", "b"]], {"a": 1.0, "b": 1.0})
3.0
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

EXACT_BOUND_ACCOUNTS = 14  # up to this many accounts the bound enumerates every account set


@dataclass(frozen=True)
class Assignment:
    """Per copy, the account that sends it (None: no account is in that group); the number of
    copies each account got; when each account will be done (seconds, backlog included)."""

    account_of: list[str | None]
    loads: dict[str, int]
    finish: dict[str, float]

    @property
    def makespan(self) -> float:
        """When the last account is done."""
        return max(self.finish.values(), default=0.0)

    @property
    def unreachable(self) -> int:
        """Copies no account can send."""
        return sum(1 for a in self.account_of if a is None)


def assign(
    eligible: Sequence[Sequence[str]],
    rates: Mapping[str, float],
    backlog: Mapping[str, int] | None = None,
) -> Assignment:
    """Assign each copy (given the accounts that may send it) to one account; ``rates`` are
    messages per second, ``backlog`` messages each account already owes."""
    backlog = backlog or {}
    # an unpaced account (rate 0) is balanced as if it sent one a second
    rate = {a: r if r > 0 else 1.0 for a, r in rates.items()}
    sigs: dict[frozenset[str], list[int]] = defaultdict(list)
    for i, accounts in enumerate(eligible):
        sigs[frozenset(a for a in accounts if a in rate)].append(i)
    load: Counter[str] = Counter()
    count: dict[str, Counter[frozenset[str]]] = {a: Counter() for a in rate}

    def finish(a: str, extra: int = 0) -> float:
        return (backlog.get(a, 0) + load[a] + extra) / rate[a]

    for sig in sorted(sigs, key=lambda s: (len(s), sorted(s))):
        if not sig:
            continue
        heap = [(finish(a, 1), a) for a in sorted(sig)]
        heapq.heapify(heap)
        for _ in sigs[sig]:
            _, a = heapq.heappop(heap)
            load[a] += 1
            count[a][sig] += 1
            heapq.heappush(heap, (finish(a, 1), a))
    while _shorten(count, load, finish):
        pass  # each round moves one copy off the account that finishes last
    account_of: list[str | None] = [None] * len(eligible)
    for sig, items in sigs.items():
        # deal the copies out in order, smooth weighted round-robin, so that every account's
        # share holds its part of each level and the top levels go out first everywhere
        quota = {a: count[a][sig] for a in sorted(sig) if count[a][sig]}
        if not quota:
            continue  # no account is in these groups
        credit = dict.fromkeys(quota, 0)
        for i in items:
            for a in quota:
                credit[a] += quota[a]
            pick = max(credit, key=lambda a: credit[a])
            credit[pick] -= len(items)
            account_of[i] = pick
    return Assignment(account_of, {a: load[a] for a in rate}, {a: finish(a) for a in rate})


def _shorten(
    count: dict[str, Counter[frozenset[str]]],
    load: Counter[str],
    fin: Callable[[str, int], float],
) -> bool:
    """Move one copy along an augmenting path away from the last-finishing account."""
    top = max(count, key=lambda a: (fin(a, 0), a), default=None)
    if top is None or load[top] == 0:
        return False
    target = fin(top, 0)
    parent: dict[str, tuple[str, frozenset[str]]] = {}
    queue = deque([top])
    seen = {top}
    while queue:
        a = queue.popleft()
        for sig, n in count[a].items():
            if n == 0:
                continue
            for b in sorted(sig):
                if b in seen:
                    continue
                seen.add(b)
                parent[b] = (a, sig)
                if fin(b, 1) < target - 1e-9:
                    while b != top:
                        a_, s_ = parent[b]
                        count[a_][s_] -= 1
                        count[b][s_] += 1
                        load[a_] -= 1
                        load[b] += 1
                        b = a_
                    return True
                queue.append(b)
    return False


def lower_bound(
    eligible: Sequence[Sequence[str]],
    rates: Mapping[str, float],
    backlog: Mapping[str, int] | None = None,
) -> float:
    """Seconds that any assignment needs at least (copies no account can send are ignored)."""
    backlog = backlog or {}
    rates = {a: r if r > 0 else 1.0 for a, r in rates.items()}
    accounts = sorted(rates)
    sigs = Counter(frozenset(a for a in e if a in rates) for e in eligible)
    sigs.pop(frozenset(), None)
    candidates: list[frozenset[str]]
    if len(accounts) <= EXACT_BOUND_ACCOUNTS:
        candidates = [
            frozenset(c)
            for k in range(1, len(accounts) + 1)
            for c in itertools.combinations(accounts, k)
        ]
    else:
        # every eligibility set, their unions with the whole, and single accounts: not exact, but
        # the sets that bind in practice
        candidates = [*sigs, frozenset(accounts), *(frozenset([a]) for a in accounts)]
    best = 0.0
    for s in candidates:
        work = sum(n for sig, n in sigs.items() if sig <= s) + sum(backlog.get(a, 0) for a in s)
        best = max(best, work / sum(rates[a] for a in s))
    return best
