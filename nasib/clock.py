"""The budget clock of a NASIB search: one object that owns the budget while the search runs.

Lightning's `Timer` callback is the model: the limit is an object handed to the loop, and the
searcher never counts the budget's seconds itself. The clock owns the planner (`nasib.budget`),
the reserve, the time left, p for an epoch, whether an epoch may start and whether one must stop
early. It is handed measurements (the timing run, each step's and each epoch's seconds) and
never calls the searcher back: the loop (`nascore.loop`) and the searcher call it, it calls
nothing of theirs, so neither the imports nor the calls close a circle.

Reserve (one rule): max(1% of the budget, 1 s) for the end of the search (records, the last
checkpoint), plus the strategy's derivation passes as the timing run measured them, x1.1.
Out of time (one rule): one more step, the evaluation pass and a checkpoint would reach into
the reserve; the searcher then ends the epoch early (`cut_short` in its record).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contract.budget import Budget, BudgetError
from nasib.budget import BudgetConfig, BudgetPlanner, FixedSchedule, resolve_budget, summarize

FINISH_SAFETY = 1.1  # headroom on the measured derivation passes that the reserve covers


@dataclass(frozen=True)
class Measured:
    """What a timing run hands the clock."""

    timing: dict[str, float]  # seconds per step kind and the projected epoch (checkpoints keep it as is)
    step_s: float  # one training step: a weight step and its share of alpha steps
    finish_s: float  # the strategy's derivation passes at the end of the search


class BudgetClock:
    """The limit a search runs under: a budget (planned after a timing run) or a fixed number of epochs.

    `clock` returns seconds (a fake one in tests); `used_s` is time the budget already paid for
    before the clock existed."""

    def __init__(self, budget: Budget | None, k: float, epochs: int | None = None,
                 clock: Callable[[], float] = time.monotonic, used_s: float = 0.0) -> None:
        self.budget, self.k, self.now = budget, k, clock
        self._t0 = clock() - used_s  # when the budget started counting
        self.timing: dict[str, float] | None = None  # the timing run's seconds (None: --epochs, or not yet)
        self.reserve_s: float | None = None  # set with the plan
        self.budget_s = None if budget is None else budget.seconds  # target epochs: from the timing run
        self.planner: BudgetPlanner | FixedSchedule | None = None if budget else FixedSchedule(epochs, k, clock)
        self._pauses_before = 0  # pauses told apart before the running epoch began

    @property
    def started(self) -> bool:
        """Whether there is a plan (a budget has one only after `start`)."""
        return self.planner is not None

    @property
    def planned_epochs(self) -> int:
        """Epochs in the current plan (0 before a budget is planned)."""
        return 0 if self.planner is None else self.planner.planned_epochs

    def start(self, measured: Measured) -> None:
        """Plan the epochs that fit from the timing run (its time is charged: the clock ran through it)."""
        if self.planner is not None:
            raise BudgetError("the budget clock is planned already; it re-plans itself after every epoch")
        t, extra = measured.timing, measured.finish_s * FINISH_SAFETY
        self.timing = t
        self.budget_s = resolve_budget(self.budget, t["epoch_s"], self._since_t0(), extra)
        self.reserve_s = BudgetConfig(self.budget_s, k=self.k).reserve + extra
        self.planner = BudgetPlanner(self._config(), self.now, used_s=self._since_t0())
        self.planner.start(t["epoch_s"], measured.step_s)

    def may_start(self, epoch: int) -> bool:
        """Whether `epoch` may run; with a budget, a pause since the last epoch re-plans first."""
        if self.planner is None:
            raise BudgetError("the budget has no plan yet: hand the clock a timing run first (start)")
        if self.budget is not None:
            before = self.planner.pauses.count
            self.planner.resync()
            self._say_pauses(before)
        return not (self.planner.done or epoch >= self.planner.planned_epochs)

    def begin_epoch(self, epoch: int) -> tuple[float, int]:
        """(p, planned epochs) of `epoch`, which starts now."""
        self._pauses_before = self.planner.pauses.count
        return self.planner.p_for(epoch), self.planner.planned_epochs

    def must_stop(self, step_s: float) -> bool:
        """True when another step plus the evaluation and a checkpoint would eat into the reserve (host
        time of a step is its real time: the next draw's .tolist() waits for the device)."""
        if self.budget is None:
            return False
        work = self.planner.step(step_s)  # a pause inside is charged by left_s, not projected onto the next step
        timing = self.timing or {}
        ahead = work + timing.get("eval_pass_s", 0.0) + timing.get("checkpoint_s", 0.0)
        return self.planner.left_s - self.reserve_s < ahead

    def end_epoch(self, epoch: int, epoch_s: float) -> dict[str, Any]:
        """Charge an epoch's measured seconds, re-plan, and return its budget record fields."""
        self.planner.end_epoch(epoch, epoch_s)
        self._say_pauses(self._pauses_before)
        fields = {"budget_used_s": self.planner.used_s, "planned_epochs": self.planner.planned_epochs}
        if self.budget is not None:  # without a budget (--epochs) there is no budget_left_s
            fields.update(budget_left_s=self.planner.left_s, pauses=self.planner.pauses.count,
                          paused_s=self.planner.pauses.seconds)
        return fields

    def result_fields(self) -> dict[str, Any]:
        """The budget's result.json fields (pauses None: --epochs does not watch for them)."""
        watched = self.budget is not None
        return {"budget_s": self.budget_s, "budget_used_s": self.planner.used_s,
                "pauses": self.planner.pauses.count if watched else None,
                "paused_s": self.planner.pauses.seconds if watched else None,
                "planned_epochs": self.planner.planned_epochs}

    def summary(self) -> dict[str, Any]:
        """What the budget buys (`nasib plan`): epochs, beta, the p schedule, the reserve."""
        return summarize(self.planner, self.timing["epoch_s"])

    def state_dict(self) -> dict[str, Any]:
        """The plan (with the seconds used), the reserve, the timing run and the budget's seconds."""
        plan = None if self.planner is None else self.planner.state_dict()  # None: not planned yet
        return {"planner": plan, "reserve_s": self.reserve_s, "timing": self.timing, "budget_s": self.budget_s}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume exactly; the time between the kill and now is not charged, this run's start-up is."""
        self.timing, self.reserve_s = state["timing"], state["reserve_s"]
        self.budget_s = state.get("budget_s", self.budget_s)
        if state["planner"] is None:
            return
        if self.budget is not None and self.planner is None:
            self.planner = BudgetPlanner(self._config(), self.now)
        self.planner.load_state_dict(state["planner"])
        if self.budget is not None:
            self.planner.charge(self._since_t0())  # this run's own start-up (data, build, load)

    def _since_t0(self) -> float:
        """Seconds since the budget started counting."""
        return self.now() - self._t0

    def _config(self) -> BudgetConfig:
        """The planner's settings: the budget's seconds, k, and the reserve."""
        return BudgetConfig(self.budget_s, k=self.k, reserve_s=self.reserve_s)

    def _say_pauses(self, before: int) -> None:
        """One stderr line once the plan has taken in pauses told apart since `before` (records count them too)."""
        watch, plan = self.planner.pauses, self.planner
        if watch.count > before:
            print(f"paused: {watch.count} pause(s), {watch.seconds:.1f}s in all, charged to the budget; re-planned "
                  f"to {plan.planned_epochs} epochs with {plan.left_s:.0f}s left", file=sys.stderr, flush=True)
