"""Spreading copies over accounts: optimal for equal rates (the makespan is the lower bound
rounded up), never worse than the bound, and respectful of who is in which group."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from matrix.relay.assign import assign, lower_bound

ACCOUNTS = ["a", "b", "c", "d"]
eligibility = st.lists(
    st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=4, unique=True), max_size=60
)


@given(eligibility)
def test_with_equal_rates_the_assignment_is_optimal(eligible: list[list[str]]):
    rates = dict.fromkeys(ACCOUNTS, 1.0)
    plan = assign(eligible, rates)
    assert all(a in e for a, e in zip(plan.account_of, eligible, strict=True))
    # unit jobs, integer capacities: the optimum is the fractional bound rounded up
    assert plan.makespan == math.ceil(lower_bound(eligible, rates) - 1e-9)


@given(eligibility, st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=4, max_size=4))
def test_never_faster_than_the_bound_and_close_to_it(
    eligible: list[list[str]], speeds: list[float]
):
    rates = dict(zip(ACCOUNTS, speeds, strict=True))
    plan = assign(eligible, rates, {"a": 3})
    bound = lower_bound(eligible, rates, {"a": 3})
    assert bound - 1e-9 <= plan.makespan <= bound + 1 / min(speeds) + 1e-9


def test_backlog_shifts_new_work_to_idle_accounts():
    plan = assign([["a", "b"]] * 4, {"a": 1.0, "b": 1.0}, backlog={"a": 4})
    assert plan.account_of == ["b"] * 4 and plan.finish == {"a": 4.0, "b": 4.0}


def test_groups_no_account_is_in_are_left_unassigned():
    plan = assign([["a"], [], ["zz"]], {"a": 1.0})
    assert plan.account_of == ["a", None, None] and plan.unreachable == 2
