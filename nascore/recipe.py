"""The trial recipe every search and retraining runs: one order of steps, one set of checks.

Check --out and the folder, skip or refuse a finished trial, take the lock of a started
one, resolve the device, seed, load the data, build the searcher, and only then (with
--force) move the old trial aside, so bad input leaves every folder where it was; then
write the metadata and run the shared epoch loop. A CUDA out-of-memory error gets the
same hint for every method, and Ctrl-C during start-up exits 130 saying what was kept.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from contract.budget import Budget, budget_record
from contract.errors import OutOfMemory
from contract.format import IDENTITY
from nascore.data import DataConfig, Splits, load_splits, resolve_root
from nascore.lock import TrialLock
from nascore.loop import EpochClock, Interrupted, RunSpec, Searcher, run_trial, start_clock
from nascore.records import Trial
from nascore.runtime import resolve_device, seed_everything
from nascore.trial import (
    check_finished,
    check_movable,
    check_out,
    folder_state,
    kept_line,
    move_aside,
    oom_hint,
    trial_meta,
)


@dataclass(frozen=True)
class Recipe:
    """What one search or retraining hands the shared recipe."""

    family: str  # the program config.json records: enas | nasib | retrain
    strategy: str | None  # how it picks ops: enas (the controller), a NASIB strategy; None for a retraining
    space: str | None  # the search space recorded (a retraining: its architecture's)
    scale: str  # the search scale its settings came from (smoke | quick | paper)
    config: dict  # the resolved config, as recorded in config.json
    data: DataConfig  # the data it trains on (where it lives: the run's; which part: the config's)
    build: Callable[[Splits, torch.device], Searcher]  # the searcher, once the data and device are known
    batch_size: int  # named by the out-of-memory hint
    layers: int  # named by the out-of-memory hint
    budget: Budget | None = None  # the search budget, when there is one (config.json: budget_s, budget_label)
    clock: EpochClock | None = None  # the limit the epochs run under (a budget); None: the searcher's count
    extra: dict = field(default_factory=dict)  # more config.json fields (branch mode, source architecture)

    @property
    def identity(self) -> dict:
        """What a finished trial must share with this request to be skipped."""
        mine = {"family": self.family, "strategy": self.strategy, "space": self.space, "scale": self.scale,
                "budget_s": budget_record(self.budget)["budget_s"]}
        return {k: mine[k] for k in IDENTITY}  # the keys, in the order, every identity check uses


def data_location(spec: RunSpec) -> dict:
    """Where the data lives, from the run (which subset to use comes from the preset and overrides)."""
    data_dir = spec.data.data_dir
    return {"data_dir": None if data_dir is None else str(data_dir), "download": spec.data.download}


def run_recipe(spec: RunSpec, recipe: Recipe) -> dict | None:
    """Run (or resume) one trial; None when it is finished (with the same settings) and not forced."""
    try:
        return _run(spec, recipe)
    except torch.cuda.OutOfMemoryError as e:  # typed, so a runner in another process knows it by type
        raise OutOfMemory(oom_hint(recipe.batch_size, recipe.layers)) from e


def _open(spec: RunSpec, recipe: Recipe, trial: Trial) -> tuple[str, TrialLock | None]:
    """The folder's state and, for a started one, its lock (taken before anything else happens)."""
    check_out(spec.out, resolve_root(recipe.data.data_dir))
    state = folder_state(trial)
    if state == "finished" and not spec.force:
        check_finished(trial, recipe.identity)
        return state, None
    if spec.force and state != "new":
        check_movable(trial)
    if state == "new":
        return state, None  # nothing to protect yet: run_trial creates and locks the folder
    lock = TrialLock(trial)
    lock.acquire()
    return state, lock


def _start(spec: RunSpec, recipe: Recipe) -> tuple[torch.device, Splits, Searcher]:
    """Device, seeds, data and the searcher, in the same order for every method."""
    device = resolve_device(spec.device)
    seed_everything(spec.seed, spec.deterministic)
    splits = load_splits(recipe.data)
    return device, splits, recipe.build(splits, device)


def _run(spec: RunSpec, recipe: Recipe) -> dict | None:
    """The recipe's steps in order (see the module docstring)."""
    trial, lock, moved, running = Trial(spec.out), None, None, False
    try:
        state, lock = _open(spec, recipe, trial)
        if state == "finished" and not spec.force:
            print(f"{spec.out} is finished (result.json exists); skipping. Use --force to run it again.",
                  file=sys.stderr)
            return None
        device, splits, searcher = _start(spec, recipe)
        if spec.force and state != "new":
            if recipe.clock is not None:
                start_clock(recipe.clock, searcher)  # a budget plans here: one too small fails before the move
            lock, moved = move_aside(trial, lock)
        meta = trial_meta(spec, device, splits.source, family=recipe.family, strategy=recipe.strategy,
                          space=recipe.space, scale=recipe.scale, config=recipe.config,
                          **budget_record(recipe.budget), **recipe.extra)
        running = True
        return run_trial(trial, searcher, meta, lock, recipe.clock)
    except KeyboardInterrupt:  # start-up, or run_trial outside its epoch loop: say what is on disk
        raise Interrupted(kept_line(trial, not running, moved)) from None
    finally:
        if lock is not None:
            lock.release()
