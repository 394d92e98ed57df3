"""Pauses told apart from slow work, so the budget charges them without shrinking the plan.

A paused process (SIGSTOP, a frozen container, a preempted VM) loses wall-clock time that
says nothing about how long the remaining epochs take. The budget clock is time.monotonic
(CLOCK_MONOTONIC on Linux): it runs on while the process is stopped, so such a pause is
charged like any other time, and it stands still while the whole machine is suspended, so
a laptop's sleep is not charged at all (as with a kill and resume, the search did not run;
CLOCK_BOOTTIME would charge it, and the planner could not re-plan any better). A pause the
clock does not see is no pause for the budget.

Rule: an interval (a training step, the gap between two epochs, or the rest of an epoch:
its evaluation and checkpoint) holds a pause when it lasts more than
max(PAUSE_FACTOR x its usual length, PAUSE_FLOOR_S); the pause is the excess over the usual
length. The usual length is the median of the last few pause-free intervals of that kind
(seeded by the timing run). A slow-down below the factor is work, and the estimate feels it.
"""
from __future__ import annotations

import statistics
from collections import deque
from typing import Any

PAUSE_FACTOR = 10.0  # an interval this many times its usual length holds a pause, not a slow-down
PAUSE_FLOOR_S = 2.0  # ... and only when longer than this: GC, page faults and a busy scheduler are not pauses


def pause_in(seconds: float, usual_s: float | None) -> float:
    """Seconds of a pause inside an interval of `seconds` whose usual length is `usual_s` (0.0: none)."""
    if usual_s is None or seconds <= max(PAUSE_FACTOR * usual_s, PAUSE_FLOOR_S):
        return 0.0
    return seconds - usual_s


class UsualTime:
    """The usual length of one repeated interval: the median of its recent pause-free times."""

    def __init__(self, keep: int = 5) -> None:
        self.seed_s: float | None = None  # used until a pause-free time is seen
        self._recent: deque[float] = deque(maxlen=keep)

    def split(self, seconds: float) -> float:
        """The pause inside `seconds` (0.0 when none); a pause-free time joins the history."""
        pause = pause_in(seconds, statistics.median(self._recent) if self._recent else self.seed_s)
        if not pause:
            self._recent.append(seconds)
        return pause


class PauseWatch:
    """Counts pauses across a search and takes them out of each epoch's working time."""

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0  # pauses told apart, all runs of a resumed search together
        self.step_time, self.gap_time, self.rest_time = UsualTime(), UsualTime(), UsualTime()
        self._epoch_pause_s = self._epoch_steps_s = 0.0  # since the last epoch ended

    def note(self, seconds: float) -> None:
        """Count a pause of `seconds`."""
        self.count += 1
        self.seconds += seconds
        self._epoch_pause_s += seconds

    def step(self, seconds: float) -> float:
        """A training step's working seconds: any pause inside is noted and taken out."""
        pause = self.step_time.split(seconds)
        if pause:
            self.note(pause)
        self._epoch_steps_s += seconds - pause
        return seconds - pause

    def gap(self, seconds: float) -> bool:
        """Whether the time since the last epoch ended held a pause (noted if so)."""
        pause = self.gap_time.split(seconds)
        if pause:
            self.note(pause)
        return bool(pause)

    def epoch_work(self, charged_s: float, usual_epoch_s: float | None) -> float:
        """An epoch's working seconds out of `charged_s`: pauses already noted, and one in the part
        no step accounted for (evaluation, checkpoint), are taken out; starts the next epoch's tally.
        `usual_epoch_s` None: nothing is watched (`--epochs` has no budget to protect)."""
        work = charged_s - self._epoch_pause_s
        self.rest_time.seed_s = usual_epoch_s
        extra = 0.0 if usual_epoch_s is None else self.rest_time.split(work - self._epoch_steps_s)
        if extra:
            self.note(extra)
        self._epoch_pause_s = self._epoch_steps_s = 0.0
        return work - extra

    def state_dict(self) -> dict[str, Any]:
        """The counts a resumed search carries on (usual lengths are re-learnt)."""
        return {"pauses": self.count, "paused_s": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output; checkpoints older than pause counting hold none."""
        self.count, self.seconds = int(state.get("pauses", 0)), float(state.get("paused_s", 0.0))
