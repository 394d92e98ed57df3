"""Budget parsing (contract.budget), the exploration schedule and the re-planning budget planner."""

from __future__ import annotations

import json
import math
import re
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.budget import MAX_BUDGET_S, MAX_EPOCHS, Budget, BudgetError, BudgetTooSmall
from nasib.budget import (
    BudgetConfig,
    BudgetPlanner,
    FixedSchedule,
    beta_for,
    exploration_schedule,
    plan_summary,
)


def seconds_of(text: str) -> float:
    """The seconds of a wall-clock budget, read by the one parser."""
    return Budget.parse(text).wall_seconds()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def run_search(planner: BudgetPlanner, clock: FakeClock, epoch_time, max_epochs: int = 10_000) -> list[float]:
    """Simulate epochs until the planner is done; return the simulated epoch times."""
    times = []
    while not planner.done and len(times) < max_epochs:
        e = planner.epochs_done
        planner.p_for(e)
        t = epoch_time(e)
        clock.advance(t)
        planner.end_epoch(e, t)
        times.append(t)
    return times


def started(budget: float, warmup: float, clock: FakeClock, **kw) -> BudgetPlanner:
    """A planner whose timing run took `warmup` seconds and measured a `warmup`-second epoch."""
    planner = BudgetPlanner(BudgetConfig(budget_s=budget, **kw), clock=clock)
    clock.advance(warmup)
    planner.start(warmup)
    return planner


def assert_schedule_ok(schedule: list[float], k: float) -> None:
    assert schedule[0] == 1.0
    assert schedule[-1] == k
    assert all(a >= b for a, b in pairwise(schedule))


# --- Budget.parse ----------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("90s", 90.0), ("45m", 2700.0), ("2h", 7200.0), ("1.5d", 129600.0), ("3600", 3600.0),
    ("3600.5", 3600.5), (" 2 H ", 7200.0), ("10MIN", 600.0), ("1 hour", 3600.0), ("3 hours", 10800.0),
    ("2hr", 7200.0), ("1day", 86400.0), ("5 sec", 5.0), (".5h", 1800.0), ("1.m", 60.0), ("+2m", 120.0),
])
def test_parse_budget_good(text: str, seconds: float) -> None:
    assert seconds_of(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "", "  ", "2 horus", "h", "1.5.2h", "30m2h", "2h2h", "1e3", "nan", "inf", "-5m", "0", "0.0s", "abc",
    "2 h x", "9" * 400, "1_000", "٣h", "90ſ", "1,5h", "\n",
])
def test_parse_budget_bad(text: str) -> None:
    with pytest.raises(BudgetError) as err:
        seconds_of(text)
    message = str(err.value)
    assert "\n" not in message and "90s, 45m, 2h, 1.5d" in message


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_parse_budget_total(text: str) -> None:
    try:
        value = Budget.parse(text)
    except BudgetError:
        return
    assert value == text and (value.seconds is None) != (value.epochs is None)
    assert (math.isfinite(value.seconds) and value.seconds > 0) if value.epochs is None else \
        1 <= value.epochs <= MAX_EPOCHS


@given(st.floats(min_value=1e-3, max_value=1e6), st.sampled_from(["s", "m", "h", "d", ""]))
def test_parse_budget_numbers(number: float, unit: str) -> None:
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}[unit]
    text = f"{number:.6f}{unit}"
    seconds = float(f"{number:.6f}") * factor
    if seconds > MAX_BUDGET_S:  # refused with one line, never silently capped
        with pytest.raises(BudgetError, match="more than the planner takes"):
            seconds_of(text)
    else:
        assert seconds_of(text) == pytest.approx(seconds)


# --- schedule --------------------------------------------------------------------------

@settings(deadline=None)
@given(st.integers(min_value=2, max_value=2000), st.floats(min_value=1e-6, max_value=0.999))
def test_schedule_ends(n: int, k: float) -> None:
    schedule = exploration_schedule(n, k)
    assert len(schedule) == n
    assert_schedule_ok(schedule, k)
    assert beta_for(n, k) ** (n - 1) == pytest.approx(k, rel=1e-9)
    assert schedule[1] == pytest.approx(beta_for(n, k), rel=1e-9)


def test_schedule_single_epoch_explores() -> None:
    assert exploration_schedule(1, 0.1) == [1.0]
    assert beta_for(1, 0.1) == 1.0


@pytest.mark.parametrize("k", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_bad_k_names_k(k: float) -> None:
    with pytest.raises(BudgetError, match="^k must be in"):
        exploration_schedule(5, k)
    with pytest.raises(BudgetError, match="^k must be in"):
        BudgetConfig(budget_s=100, k=k)


@pytest.mark.parametrize("budget", [0, -5, float("inf"), float("nan")])
def test_bad_budget(budget: float) -> None:
    with pytest.raises(BudgetError, match="budget_s"):
        BudgetConfig(budget_s=budget)


def test_bad_n() -> None:
    with pytest.raises(BudgetError, match="n must be"):
        exploration_schedule(0, 0.1)


# --- planner ---------------------------------------------------------------------------

def test_initial_plan_counts_warmup_and_reserve() -> None:
    clock = FakeClock()
    planner = started(1000.0, 10.0, clock)  # reserve 10 s, estimate 11 s
    assert planner.used_s == 10.0
    assert planner.planned_epochs == math.floor((1000 - 10 - 10) / 11.0)
    assert_schedule_ok(planner.schedule, 0.1)
    assert planner.schedule == exploration_schedule(planner.planned_epochs, 0.1)


def test_steady_epochs_keep_the_plan() -> None:
    clock = FakeClock()
    planner = started(1000.0, 10.0, clock)
    first = planner.schedule
    times = run_search(planner, clock, lambda e: 10.0)
    assert planner.done
    assert 10.0 + sum(times) <= 1000.0
    assert len(times) >= len(first)  # the safety factor only ever leaves room for more
    assert_schedule_ok(planner.schedule, 0.1)
    assert planner.schedule[-1] == 0.1  # steady epochs never cut the planned last one


@pytest.mark.parametrize("factor", [2.0, 5.0])
@pytest.mark.parametrize("at", [1, 20, 60, 80])
def test_slowdown_ends_inside_budget(factor: float, at: int) -> None:
    clock = FakeClock()
    planner = started(1000.0, 10.0, clock)
    before = planner.planned_epochs
    times = run_search(planner, clock, lambda e: 10.0 * (factor if e >= at else 1.0))
    assert 10.0 + sum(times) <= 1000.0
    assert planner.used_s <= 1000.0
    assert len(times) < before
    schedule = planner.schedule
    assert len(schedule) == len(times)
    assert_schedule_ok(schedule, 0.1)


def test_gradual_slowdown_ends_inside_budget() -> None:
    clock = FakeClock()
    planner = started(3600.0, 5.0, clock)
    times = run_search(planner, clock, lambda e: 5.0 * 1.05 ** e)
    assert 5.0 + sum(times) <= 3600.0
    assert_schedule_ok(planner.schedule, 0.1)  # growth within the safety factor still ends at k


@settings(deadline=None, max_examples=40)
@given(st.lists(st.floats(min_value=0.2, max_value=1.1), min_size=1, max_size=50),
       st.floats(min_value=2.0, max_value=50.0))
def test_bounded_changes_end_inside_budget(steps: list[float], first: float) -> None:
    # Any run whose epochs grow by at most the safety factor (1.1) per epoch ends in budget.
    clock = FakeClock()
    planner = started(2000.0, first, clock)
    times: list[float] = []

    def epoch_time(e: int) -> float:
        prev = times[-1] if times else first
        return min(max(prev * steps[e % len(steps)], 2.0), 50.0)

    run_search(planner, clock, lambda e: times.append(epoch_time(e)) or times[-1])
    assert planner.done
    assert first + sum(times) <= 2000.0
    schedule = planner.schedule
    assert schedule[0] == 1.0 and all(a >= b for a, b in pairwise(schedule))


def test_speedup_plans_more_epochs() -> None:
    clock = FakeClock()
    planner = started(1000.0, 10.0, clock)
    before = planner.planned_epochs
    times = run_search(planner, clock, lambda e: 10.0 if e < 10 else 2.0)
    assert planner.planned_epochs > before
    assert len(times) > before
    assert 10.0 + sum(times) <= 1000.0
    assert_schedule_ok(planner.schedule, 0.1)


def test_replanning_keeps_history_and_never_rises() -> None:
    clock = FakeClock()
    planner = started(1000.0, 10.0, clock)
    seen: list[float] = []
    while not planner.done:
        e = planner.epochs_done
        seen.append(planner.p_for(e))
        t = 10.0 if e % 7 else 25.0  # jittery
        clock.advance(t)
        planner.end_epoch(e, t)
        assert planner.schedule[: e + 1] == seen
        if not planner.done:
            assert planner.schedule[-1] == 0.1
    # A 2.5x spike may cut the planned last epoch: the search then ends early, p never rising.
    assert all(a >= b for a, b in pairwise(seen))


def test_overhead_between_epochs_is_charged() -> None:
    clock = FakeClock()
    planner = started(1000.0, 10.0, clock)
    clock.advance(30.0)  # an evaluation the caller did not count in epoch_s
    planner.end_epoch(0, 10.0)
    assert planner.epoch_times == [30.0]
    assert planner.estimate_s() == pytest.approx(33.0)


def test_budget_too_small_message() -> None:
    clock = FakeClock()
    planner = BudgetPlanner(BudgetConfig(budget_s=15.0), clock=clock)
    clock.advance(3.0)
    with pytest.raises(BudgetTooSmall) as err:
        planner.start(12.5)
    message = str(err.value)
    assert "12.5s" in message
    minimum = float(re.search(r"smallest budget that works is ([0-9.]+)s", message).group(1))
    assert minimum == pytest.approx(3.0 + 12.5 * 1.1 + 1.0, abs=0.011)
    ok = BudgetPlanner(BudgetConfig(budget_s=seconds_of(f"{minimum}s")), clock=FakeClock(), used_s=3.0)
    ok.start(12.5)
    assert ok.planned_epochs == 1 and ok.schedule == [1.0]
    low = BudgetPlanner(BudgetConfig(budget_s=minimum - 0.02), clock=FakeClock(), used_s=3.0)
    with pytest.raises(BudgetTooSmall):
        low.start(12.5)


def test_minimum_budget_with_percent_reserve() -> None:
    planner = BudgetPlanner(BudgetConfig(budget_s=500.0), clock=FakeClock())
    with pytest.raises(BudgetTooSmall) as err:
        planner.start(1000.0)
    minimum = float(re.search(r"works is ([0-9.]+)s", str(err.value)).group(1))
    BudgetPlanner(BudgetConfig(budget_s=minimum), clock=FakeClock()).start(1000.0)


def test_state_round_trip_mid_run() -> None:
    clock = FakeClock()
    planner = started(1000.0, 10.0, clock)
    for e in range(5):
        clock.advance(12.0)
        planner.end_epoch(e, 12.0)
    state = json.loads(json.dumps(planner.state_dict()))
    used = planner.used_s
    later = FakeClock(now=clock.now + 1e6)  # downtime between kill and restart is not charged
    resumed = BudgetPlanner(BudgetConfig(budget_s=1000.0), clock=later)
    resumed.load_state_dict(state)
    assert resumed.used_s == used
    assert resumed.schedule == planner.schedule
    assert resumed.epoch_times == planner.epoch_times
    for e in range(5, 9):
        for c, p in ((clock, planner), (later, resumed)):
            c.advance(11.0)
            p.end_epoch(e, 11.0)
        assert resumed.schedule == planner.schedule
        assert resumed.used_s == pytest.approx(planner.used_s)


def test_resume_with_bigger_budget_replans() -> None:
    clock = FakeClock()
    planner = started(500.0, 10.0, clock)
    for e in range(3):
        clock.advance(10.0)
        planner.end_epoch(e, 10.0)
    bigger = BudgetPlanner(BudgetConfig(budget_s=1000.0), clock=FakeClock())
    bigger.load_state_dict(planner.state_dict())
    assert bigger.planned_epochs > planner.planned_epochs
    assert bigger.schedule[:4] == planner.schedule[:4] or bigger.schedule[:3] == planner.schedule[:3]
    assert bigger.schedule[-1] == 0.1


def test_resume_rejects_other_k_and_kind() -> None:
    clock = FakeClock()
    state = started(500.0, 10.0, clock).state_dict()
    with pytest.raises(BudgetError, match="k differs"):
        BudgetPlanner(BudgetConfig(budget_s=500.0, k=0.2), clock=clock).load_state_dict(state)
    with pytest.raises(BudgetError, match="cannot load"):
        FixedSchedule(5).load_state_dict(state)


def test_misuse_errors() -> None:
    clock = FakeClock()
    planner = BudgetPlanner(BudgetConfig(budget_s=100.0), clock=clock)
    with pytest.raises(BudgetError, match="start"):
        planner.p_for(0)
    planner.start(1.0)
    with pytest.raises(BudgetError, match="already"):
        planner.start(1.0)
    with pytest.raises(BudgetError, match="out of order"):
        planner.end_epoch(3, 1.0)
    with pytest.raises(BudgetError, match="outside the plan"):
        planner.p_for(10_000)
    with pytest.raises(BudgetError, match="epoch_s"):
        planner.end_epoch(0, float("nan"))


def test_time_left() -> None:
    clock = FakeClock()
    planner = started(100.0, 10.0, clock)
    assert planner.left_s == 90.0
    clock.advance(89.5)
    assert planner.left_s == 0.5  # whether that is out of time is the budget clock's rule (test_budget_value)


def test_fixed_schedule_ignores_time() -> None:
    clock = FakeClock()
    fixed = BudgetPlanner.fixed(6, 0.1, clock=clock)
    fixed.start()
    assert fixed.schedule == exploration_schedule(6, 0.1)
    for e in range(6):
        clock.advance(1e9)
        fixed.end_epoch(e, 1e9)
    assert fixed.done and fixed.left_s == math.inf
    with pytest.raises(BudgetError):
        fixed.end_epoch(6, 1.0)
    again = FixedSchedule(6, 0.1, clock=clock)
    again.load_state_dict(fixed.state_dict())
    assert again.done and again.used_s == fixed.used_s


def test_plan_summary() -> None:
    summary = plan_summary(BudgetConfig(budget_s=seconds_of("2h")), epoch_s=60.0)
    assert summary["n"] == math.floor((7200 - 72) / 66.0)
    assert summary["beta"] == pytest.approx(0.1 ** (1 / (summary["n"] - 1)))
    assert summary["schedule"][0] == 1.0 and summary["schedule"][-1] == 0.1
    assert len(summary["schedule"]) == summary["n"]
    json.dumps(summary)
