"""Wall-clock budget -> epochs -> exploration schedule, re-planned every epoch.

Schedule. Epochs are indexed e = 0..n-1 and the exploration probability is
p_e = beta^e with beta = k^(1/(n-1)), so p_0 = 1 (explore everything first) and
p_{n-1} = k (the last epoch). The paper writes beta = exp(ln k / n) with p_i = beta^i,
which cannot give both p = 1 at the first epoch and p = k at the last one: with epochs
counted 1..n it starts at beta, with epochs counted 0..n-1 it ends at k^((n-1)/n).
We keep the two end points the paper states and adjust beta. With n = 1 the only
epoch explores (p_0 = 1) and beta is reported as 1.

Budget. The user gives wall-clock seconds. A short timed run measures an epoch; the
planner fits n = floor((budget - used - reserve) / estimate) epochs, where the estimate
is the measured time times a safety factor. After each epoch it re-estimates from the
measured times (max of the last epoch and the mean of recent ones, so a slow-down is
felt at once) and re-plans the remaining epochs, continuing geometrically from the
current p so the (new) last epoch still gets exactly k and p never increases.
An epoch is charged the larger of the time the caller measured and the planner's clock
since the previous epoch ended, so evaluation and checkpoints between epochs count too.

Guarantees. The search ends inside the budget as long as no single epoch runs longer
than the current estimate plus the reserve; the budget clock (`nasib.clock`) also cuts an
epoch short when a step would reach into the reserve. Every plan ends at p = k, but a slow-down beyond the safety
factor can remove epochs that were planned after the current one: the search then
ends early, at the p it had reached (p never rises, and the budget wins over k).

Reserve. By default max(1% of the budget, 1 s) is held back for the end of the search
(derivation, samples, records, a final checkpoint): that work has a fixed part (the 1 s
floor, enough for smoke runs) and a part that grows with the model (72 s of a 2 h search).

Resume. Only time inside runs is charged: the planner's clock counts from its construction
or `load_state_dict`, added to the seconds carried in the state. The time between a kill and
the restart is not charged, nor work after the last saved state: search time, not calendar time.

Pauses (`nasib.pauses`): charged, kept out of the estimate, counted; the remaining epochs are
re-planned from the time left, still ending at k.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contract.budget import MAX_EPOCHS, Budget, BudgetError, BudgetTooSmall
from nasib.pauses import PauseWatch


def budget_for_epochs(n: int, epoch_s: float, used_s: float = 0.0, extra_reserve_s: float = 0.0,
                      safety: float = 1.1) -> float:
    """Seconds that make a planner started after `used_s` plan exactly n epochs of the measured `epoch_s`.

    The default reserve is max(1% of the budget, 1 s) plus `extra_reserve_s`; half an epoch of slack keeps
    the floor in the planner at n."""
    _check_seconds("epoch_s", epoch_s)
    need = used_s + extra_reserve_s + (n + 0.5) * epoch_s * safety
    return max(need + 1.0, need / 0.99)


def resolve_budget(budget: Budget, epoch_s: float, used_s: float, extra_reserve_s: float) -> float:
    """Seconds of a budget once an epoch has been measured (target epochs turn into time here)."""
    if budget.epochs is None:
        return budget.wall_seconds()
    return budget_for_epochs(budget.epochs, epoch_s, used_s, extra_reserve_s)


def _check_k(k: float) -> None:
    """Reject an exploration floor outside (0, 1)."""
    if not (isinstance(k, (int, float)) and 0.0 < k < 1.0):
        raise BudgetError(f"k must be in (0, 1) (the exploration probability of the last epoch), got {k!r}")


def beta_for(n: int, k: float) -> float:
    """Decay factor so that p_0 = 1 and p_{n-1} = k; 1.0 when n = 1."""
    _check_k(k)
    if not isinstance(n, int) or n < 1:
        raise BudgetError(f"number of epochs n must be an integer >= 1, got {n!r}")
    return 1.0 if n == 1 else k ** (1.0 / (n - 1))


def _geometric(start: float, k: float, steps: int) -> list[float]:
    """The next `steps` probabilities after `start`, geometric, ending exactly at k, never rising."""
    if start <= k:
        return [k] * steps
    out, prev = [], start
    for j in range(1, steps + 1):
        # Clamp against rounding so the list is monotone and stays within [k, start].
        prev = max(k, min(prev, start * (k / start) ** (j / steps)))
        out.append(prev)
    if out:
        out[-1] = k
    return out


def exploration_schedule(n: int, k: float) -> list[float]:
    """p_e for e = 0..n-1: 1 at the first epoch, k at the last, geometric between."""
    beta_for(n, k)  # validates n and k
    return [1.0] + _geometric(1.0, k, n - 1)


@dataclass(frozen=True)
class BudgetConfig:
    """How a wall-clock budget is turned into epochs."""

    budget_s: float  # total search seconds, the timing run included
    k: float = 0.1  # exploration probability of the last epoch, in (0, 1)
    reserve_s: float | None = None  # seconds kept for the end of the search; None: max(1% budget, 1 s)
    safety: float = 1.1  # multiplier on the epoch-time estimate (>= 1) to absorb jitter
    window: int = 3  # recent epochs averaged in the estimate

    def __post_init__(self) -> None:
        budget = self.budget_s
        if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
            raise BudgetError(f"budget_s must be a finite number of seconds > 0, got {self.budget_s!r}")
        _check_k(self.k)
        if self.reserve_s is not None and not (math.isfinite(self.reserve_s) and self.reserve_s >= 0):
            raise BudgetError(f"reserve_s must be finite and >= 0, got {self.reserve_s!r}")
        if not (math.isfinite(self.safety) and self.safety >= 1.0):
            raise BudgetError(f"safety must be a finite factor >= 1, got {self.safety!r}")
        if not (isinstance(self.window, int) and self.window >= 1):
            raise BudgetError(f"window must be an integer >= 1, got {self.window!r}")

    @property
    def reserve(self) -> float:
        """Seconds held back for the end of the search."""
        return max(0.01 * self.budget_s, 1.0) if self.reserve_s is None else float(self.reserve_s)

    def min_budget(self, used_s: float, estimate_s: float) -> float:
        """Smallest budget (rounded up to 0.01 s) that fits one epoch of `estimate_s` after `used_s`."""
        need = used_s + estimate_s
        budget = max(need + 1.0, need / 0.99) if self.reserve_s is None else need + self.reserve_s
        return math.ceil(budget * 100.0) / 100.0


def _check_seconds(name: str, value: float) -> float:
    """A measured time must be a finite positive number."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise BudgetError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


class _EpochPlan:
    """Shared bookkeeping: charged run time, measured epochs and the p schedule."""

    def __init__(self, k: float, clock: Callable[[], float], used_s: float) -> None:
        _check_k(k)
        self.k = k
        self._clock = clock
        self._used_before = float(used_s)
        self._t0 = self._mark = clock()
        self._epoch_s: list[float] = []
        self._schedule: list[float] = []
        self._started = False
        self.pauses = PauseWatch()  # pauses told apart from work, charged but kept out of the estimate

    @property
    def used_s(self) -> float:
        """Seconds charged so far: earlier runs plus this run's clock time."""
        return self._used_before + (self._clock() - self._t0)

    @property
    def epochs_done(self) -> int:
        """Epochs recorded with `end_epoch`."""
        return len(self._epoch_s)

    @property
    def planned_epochs(self) -> int:
        """Total epochs in the current plan, done ones included."""
        return len(self._schedule)

    @property
    def schedule(self) -> list[float]:
        """Exploration probability of every planned epoch (a copy)."""
        return list(self._schedule)

    @property
    def epoch_times(self) -> list[float]:
        """Working seconds of each finished epoch, pauses taken out (a copy)."""
        return list(self._epoch_s)

    @property
    def done(self) -> bool:
        """True when every planned epoch has been run."""
        return self._started and self.epochs_done >= self.planned_epochs

    def p_for(self, epoch: int) -> float:
        """Exploration probability of `epoch` under the current plan."""
        if not self._started:
            raise BudgetError("the plan is not made yet: call start(measured_epoch_s) first")
        if not (0 <= epoch < self.planned_epochs):
            raise BudgetError(f"epoch {epoch} is outside the plan of {self.planned_epochs} epochs")
        return self._schedule[epoch]

    def _record(self, epoch: int, epoch_s: float) -> None:
        """Charge an epoch: the larger of the caller's measure and the clock since the last epoch."""
        if self.done or not self._started:
            raise BudgetError(f"end_epoch({epoch}) but no epoch is planned (done={self.done})")
        if epoch != self.epochs_done:
            raise BudgetError(f"end_epoch({epoch}) out of order: epoch {self.epochs_done} is next")
        now = self._clock()
        # Work between epochs (evaluation, checkpoints) is charged too, so it enters the estimate.
        charged = max(_check_seconds("epoch_s", epoch_s), now - self._mark)
        self._epoch_s.append(self.pauses.epoch_work(charged, self._usual_epoch_s()))
        self._mark = now

    def _usual_epoch_s(self) -> float | None:
        """An epoch's expected length before any has run, for telling a pause apart (None: unknown)."""
        return None

    def _base_state(self, kind: str) -> dict[str, Any]:
        """State common to both plan kinds; plain JSON types."""
        return {"kind": kind, "k": self.k, "used_s": self.used_s, "epoch_s": list(self._epoch_s),
                "schedule": list(self._schedule), "started": self._started, **self.pauses.state_dict()}

    def charge(self, seconds: float) -> None:
        """Count `seconds` spent outside the clock's view (a resumed run's start-up) as used."""
        self._used_before += max(0.0, float(seconds))

    def _load_base(self, state: dict[str, Any], kind: str) -> None:
        """Restore common state; the clock restarts now, so downtime is not charged."""
        if state.get("kind") != kind:
            raise BudgetError(f"cannot load a {state.get('kind')!r} plan state into a {kind!r} plan")
        if state["k"] != self.k:
            raise BudgetError(f"k differs from the saved plan: saved k={state['k']}, now k={self.k}")
        self._used_before = float(state["used_s"])
        self._t0 = self._mark = self._clock()
        self._epoch_s = [float(t) for t in state["epoch_s"]]
        self._schedule = [float(p) for p in state["schedule"]]
        self._started = bool(state["started"])
        self.pauses.load_state_dict(state)


class FixedSchedule(_EpochPlan):
    """The plain n-epoch schedule with no time checks (the `--epochs N` bypass)."""

    def __init__(self, n: int, k: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(k, clock, 0.0)
        self._schedule = exploration_schedule(n, k)
        self._started = True

    @property
    def left_s(self) -> float:
        """No budget: always infinite."""
        return math.inf

    def start(self, measured_epoch_s: float | None = None) -> None:
        """Nothing to plan; accepted so callers treat both plan kinds alike."""

    def end_epoch(self, epoch: int, epoch_s: float) -> None:
        """Record an epoch's time."""
        self._record(epoch, epoch_s)

    def state_dict(self) -> dict[str, Any]:
        """Resumable state."""
        return self._base_state("fixed")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from `state_dict()` output."""
        self._load_base(state, "fixed")


class BudgetPlanner(_EpochPlan):
    """Fits epochs into a wall-clock budget and re-plans them from measured epoch times.

    `clock` returns seconds (a fake one in tests); `used_s` is time spent before this
    planner existed that the budget must still pay for (e.g. a separately timed run).
    """

    def __init__(self, config: BudgetConfig, clock: Callable[[], float] = time.monotonic,
                 used_s: float = 0.0) -> None:
        super().__init__(config.k, clock, used_s)
        self.config = config
        self._warmup_s: float | None = None
        self._gap_seen = False  # the gap before the next epoch was already checked for a pause

    @classmethod
    def fixed(cls, n: int, k: float = 0.1, clock: Callable[[], float] = time.monotonic) -> FixedSchedule:
        """A plan of exactly n epochs with no time checks (`--epochs N`)."""
        return FixedSchedule(n, k, clock)

    @property
    def left_s(self) -> float:
        """Budget seconds not yet used (the reserve included; negative when over)."""
        return self.config.budget_s - self.used_s

    def estimate_s(self) -> float:
        """Expected seconds of the next epoch: max(last, recent mean) times the safety factor."""
        recent = self._epoch_s[-self.config.window:]
        if not recent:
            if self._warmup_s is None:
                raise BudgetError("no epoch time measured yet: call start(measured_epoch_s) first")
            recent = [self._warmup_s]
        return max(recent[-1], sum(recent) / len(recent)) * self.config.safety

    def _fit(self) -> int:
        """How many more epochs fit before the reserve."""
        room = (self.config.budget_s - self.used_s - self.config.reserve) / self.estimate_s()
        if room > MAX_EPOCHS:  # refused, not capped: a capped plan would not be the budget asked for
            raise BudgetError(f"budget {self.config.budget_s:g}s holds {room:.3g} epochs of "
                              f"{self.estimate_s():.3g}s, more than the {MAX_EPOCHS} a plan allows; give a "
                              f"smaller budget or --epochs")
        # The tiny slack keeps a budget of exactly min_budget() from rounding down to zero.
        return math.floor(max(room + 1e-9, 0.0))

    def _too_small(self) -> BudgetTooSmall:
        """The error for a budget that holds no epoch, with the smallest one that would."""
        est, used = self.estimate_s(), self.used_s
        measured = self._epoch_s[-1] if self._epoch_s else self._warmup_s
        return BudgetTooSmall(
            f"budget {self.config.budget_s:g}s is too small: one epoch measured {measured:.4g}s "
            f"(estimate {est:.4g}s with safety x{self.config.safety:g}), {used:.4g}s already used, "
            f"{self.config.reserve:.4g}s reserve; the smallest budget that works is "
            f"{self.config.min_budget(used, est):.2f}s")

    def _replan(self) -> None:
        """Re-derive the remaining epochs from the time left; p still reaches k at the last one."""
        more, done = self._fit(), self.epochs_done
        if done == 0:
            if more < 1:
                raise self._too_small()
            self._schedule = exploration_schedule(more, self.k)
        elif more != self.planned_epochs - done:  # an unchanged count keeps the plan as it is
            self._schedule = self._schedule[:done] + _geometric(self._schedule[done - 1], self.k, more)

    def start(self, measured_epoch_s: float, step_s: float | None = None) -> None:
        """Plan from a measured epoch time (the timing run is already in used_s); `step_s`, a training
        step's measured time, lets the first steps tell a pause apart."""
        if self._started:
            raise BudgetError("start() was already called; the plan re-plans itself in end_epoch()")
        self._warmup_s = _check_seconds("measured_epoch_s", measured_epoch_s)
        self.pauses.step_time.seed_s = step_s
        self.pauses.gap_time.seed_s = self._warmup_s  # until gaps are seen: only a pause of many epochs
        self._replan()
        self._started = True
        self._mark = self._clock()

    def end_epoch(self, epoch: int, epoch_s: float) -> None:
        """Record an epoch's time and re-plan the remaining epochs to end inside the budget."""
        self._record(epoch, epoch_s)
        self._gap_seen = False
        self._replan()

    def step(self, seconds: float) -> float:
        """A training step's working seconds (a pause inside is noted and taken out)."""
        return self.pauses.step(seconds)

    def resync(self) -> None:
        """Before an epoch: a pause since the last one ended is noted and the rest re-planned from the time left."""
        if self._gap_seen or not self._epoch_s or self.done:
            return
        self._gap_seen = True
        if self.pauses.gap(self._clock() - self._mark):
            self._replan()

    def _usual_epoch_s(self) -> float | None:
        """The timing run's epoch."""
        return self._warmup_s

    def state_dict(self) -> dict[str, Any]:
        """Resumable state: used seconds, measured times, plan and p so far."""
        return {**self._base_state("budget"), "budget_s": self.config.budget_s, "warmup_s": self._warmup_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume; a changed budget re-plans the remaining epochs at once."""
        self._load_base(state, "budget")
        self._warmup_s = state["warmup_s"]
        self.pauses.gap_time.seed_s = self._warmup_s
        if self._started and state["budget_s"] != self.config.budget_s:
            self._replan()


def summarize(planner: BudgetPlanner, epoch_s: float) -> dict[str, Any]:
    """What a started plan buys: epochs, beta and the p schedule (`nasib plan` shows it)."""
    n, config = planner.planned_epochs, planner.config
    return {"budget_s": config.budget_s, "used_s": planner.used_s, "reserve_s": config.reserve,
            "epoch_s": epoch_s, "estimate_s": planner.estimate_s(), "n": n, "k": config.k,
            "beta": beta_for(n, config.k), "schedule": planner.schedule}


def plan_summary(config: BudgetConfig, epoch_s: float, used_s: float = 0.0) -> dict[str, Any]:
    """What a budget buys for a measured epoch time: epochs, beta and the p schedule."""
    planner = BudgetPlanner(config, clock=lambda: 0.0, used_s=used_s)
    planner.start(epoch_s)
    return summarize(planner, epoch_s)
