"""Running trial plans: one trial's outcome (run_one), the method registry, and launchers.

A `Launcher` takes the ordered plans and a per-trial function and returns one `Outcome`
per plan. `LocalLauncher` runs them one after another in this process; `RayLauncher` runs
each as a Ray task, several at once, on one machine or a cluster. A Slurm launcher would
implement the same `run(plans, fn)`. Trial folders, their lock and resume-from-checkpoint
make running trials on several machines safe: a trial another runner holds is reported as
"running elsewhere", not run twice.
"""
from __future__ import annotations

import copy
import importlib
import json
import os
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from contract.errors import Interrupted, NotAvailable
from contract.format import FORMAT, upgrade
from experiments.runner import TrialPlan
from nascore.intact import finished_problem, flat
from nascore.lock import TrialLocked

STATUSES = OK, SKIPPED, NOT_AVAILABLE, DIVERGED, BLOCKED, FAILED, ELSEWHERE = (
    "ok", "skipped", "not available", "diverged", "blocked", "failed", "running elsewhere")
# Only these make the run exit non-zero: the others are results (diverged) or known gaps.
FAILURES = (FAILED,)


@dataclass(frozen=True)
class Outcome:
    """What happened to one planned trial."""

    plan: TrialPlan  # the trial
    status: str  # ok | skipped | not available | diverged | blocked | running elsewhere | failed
    detail: str = ""  # one line: numbers, the reason, or the error
    seconds: float = 0.0  # wall time spent in the method
    result: dict | None = None  # result.json content when the method returned one

    @property
    def failed(self) -> bool:
        """Whether this outcome makes the run exit non-zero."""
        return self.status in FAILURES


@dataclass(frozen=True)
class RunContext:
    """Settings of this run that every trial gets (nascore.loop.RunSpec minus the trial)."""

    device: str = "auto"  # auto, cpu, cuda or cuda:N
    data_dir: str | None = None  # CIFAR-10 root (None: $NASIB_DATA, else ./data)
    download: bool = False  # let torchvision fetch missing data
    deterministic: bool = False  # deterministic kernels
    force: bool = False  # re-run finished trials (the method moves the old folder aside)

    def spec(self, plan: TrialPlan):
        """The nascore.loop.RunSpec of one trial (imports torch, so only when a trial runs)."""
        from nascore.data import DataConfig
        from nascore.loop import RunSpec

        return RunSpec(out=plan.folder, seed=plan.seed, device=self.device, deterministic=self.deterministic,
                       data=DataConfig(data_dir=self.data_dir, download=self.download), force=self.force,
                       experiment=plan.owner, plan=plan_record(plan))


# A method runs one trial: (plan, context) -> result.json content, or None when already finished.
MethodFn = Callable[[TrialPlan, RunContext], "dict | None"]


def _enas(plan: TrialPlan, ctx: RunContext) -> dict | None:
    """ENAS macro search (enas_ext.search)."""
    search = importlib.import_module("enas_ext.search")
    return search.search_trial(ctx.spec(plan), plan.space, plan.scale, copy.deepcopy(plan.overrides))


def _nasib(plan: TrialPlan, ctx: RunContext) -> dict | None:
    """NASIB-style one-shot search; overrides carry its strategy and budget, the parsed value (nasib.search)."""
    search = importlib.import_module("nasib.search")
    return search.search_trial(ctx.spec(plan), plan.space, plan.scale, copy.deepcopy(plan.overrides))


def _retrain(plan: TrialPlan, ctx: RunContext) -> dict | None:
    """Retrain the source's arch.json from scratch (retraining.train)."""
    train = importlib.import_module("retraining.train")
    return train.retrain_trial(ctx.spec(plan), plan.source, plan.scale, copy.deepcopy(plan.overrides))


METHODS: dict[str, MethodFn] = {"enas": _enas, "nasib": _nasib, "retrain": _retrain}


def get_method(name: str, methods: Mapping[str, MethodFn]) -> MethodFn:
    """A method callable by name, or an error listing the registered ones."""
    if name not in methods:
        raise KeyError(f"unknown method {name!r}; valid: {', '.join(methods)}")
    return methods[name]


def _read(path: Path) -> dict:
    """A JSON object, or {} when missing or unreadable (the method reports real damage)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def trial_state(folder: Path) -> str:
    """new (no folder records), partial (started, resumable) or finished (result.json)."""
    if (folder / "result.json").exists():
        return "finished"
    return "partial" if (folder / "config.json").exists() else "new"


def plan_record(plan: TrialPlan) -> dict:
    """What a trial's config.json records of the plan that started it (as JSON reads it back)."""
    fields = {"experiment": plan.owner, "trial_id": plan.trial_id, "family": plan.family, "space": plan.space,
              "strategy": plan.strategy, "budget": plan.budget, "seed": plan.seed, "scale": plan.scale,
              "overrides": plan.overrides}
    return json.loads(json.dumps(fields, default=str))


def _mismatch(plan: TrialPlan) -> str | None:
    """Why an existing folder holds a trial of other settings than this plan's, else None.

    A folder the runner started records its whole plan: it must equal this one. Older records
    (no plan) must match every field both sides set, every override of the plan, and come from
    this experiment: a trial run by hand (experiment null) is never adopted.
    """
    cfg = upgrade(_read(plan.folder / "config.json"))  # a format-1 record compares in format 2's names
    strict = isinstance(cfg.get("plan"), dict)
    have, want = (flat(cfg["plan"]), flat(plan_record(plan))) if strict else (_recorded(cfg), _planned(plan))
    for key in sorted(set(have) | set(want)):
        # Without a recorded plan only values both sides set count: a preset's own default is no choice.
        if not strict and not (key in have and key in want):
            continue
        a, b = have.get(key), want.get(key)
        if a != b and not _close(a, b):
            return (f"{plan.folder} holds a trial with {key} {a!r}, this plan wants {b!r}; use another "
                    f"--results folder (e.g. runs/{plan.scale}) or remove that folder")
    return None


_WHERE = ("data.data_dir", "data.download")  # where the data lives: the run's choice, not the plan's
_SHARED = {"scale": "scale", "budget": "budget_s", "experiment": "experiment", "seed": "seed",
           "family": "family", "strategy": "strategy", "space": "space",
           "trial_id": "trial_id"}  # plan field -> config.json key (after upgrade)


def _planned(plan: TrialPlan) -> dict:
    """A plan's side of the comparison with a config.json that records no plan."""
    out = {"scale": plan.scale, "experiment": plan.owner, "seed": plan.seed, "space": plan.space,
           "family": plan.family, "strategy": plan.strategy or ("enas" if plan.family == "enas" else None),
           "trial_id": plan.trial_id}
    if plan.budget:
        out["budget"] = plan.budget.seconds
    over = {f"config.{k}": v for k, v in flat(plan.overrides).items() if k not in ("budget", *_WHERE)}
    return {**out, **over}


def _recorded(cfg: dict) -> dict:
    """A config.json's side (fields it lacks are unknown, not different; a null budget is the preset's)."""
    out = {mine: cfg[theirs] for mine, theirs in _SHARED.items() if theirs in cfg}
    if out.get("budget") is None:
        out.pop("budget", None)
    config = cfg.get("config")
    return {**out, **flat(config if isinstance(config, dict) else {}, "config.")}


def _close(a: object, b: object) -> bool:
    """Two budgets in seconds equal to a millisecond (labels round-trip through floats)."""
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-3


def is_interrupt(err: BaseException) -> bool:
    """A Ctrl-C the trial loop turned into Interrupted: stop the whole run."""
    return isinstance(err, Interrupted)


def _save_traceback(plan: TrialPlan) -> Path:
    """Keep the current exception's traceback in <results>/_logs/ (analysis skips '_' folders)."""
    path = plan.folder.parent.parent / "_logs" / plan.owner / f"{plan.trial_id}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(traceback.format_exc())
    return path


def _source_problem(plan: TrialPlan) -> Outcome | None:
    """A retrain whose arch.json is missing: blocked by a diverged search, else failed."""
    if plan.source is None or plan.source.exists():
        return None
    result = _read(plan.source.parent / "result.json")
    if result.get("status") == "diverged":
        return Outcome(plan, BLOCKED, f"source {plan.source.parent} diverged; nothing to retrain")
    return Outcome(plan, FAILED, f"source {plan.source} is missing: its search failed or has not run")


def run_one(plan: TrialPlan, ctx: RunContext, methods: Mapping[str, MethodFn] = METHODS) -> Outcome:
    """Run one trial unless finished; classify what happened into an Outcome."""
    state, why = trial_state(plan.folder), _mismatch(plan)
    if why and not (ctx.force and state == "finished"):
        return Outcome(plan, FAILED, why)
    if state == "finished" and not ctx.force:
        damage = finished_problem(plan.folder)  # a broken record is no reason to skip a trial
        if damage:
            return Outcome(plan, FAILED, damage)
        status = _read(plan.folder / "result.json")["status"]
        return Outcome(plan, SKIPPED, f"finished earlier (status {status}); result.json exists")
    blocked = _source_problem(plan)
    if blocked:
        return blocked
    fn, t0 = get_method(plan.family, methods), time.perf_counter()
    try:
        result = fn(plan, ctx)
    except Exception as e:  # one trial's failure must not stop the others
        if is_interrupt(e):
            raise
        first = (str(e).splitlines() or [""])[0]
        if isinstance(e, TrialLocked):  # another live runner holds the folder: its trial, not a failure
            return Outcome(plan, ELSEWHERE, first, time.perf_counter() - t0)
        if isinstance(e, NotAvailable):  # a gap the method names; a plain NotImplementedError is a failure
            return Outcome(plan, NOT_AVAILABLE, first)
        detail = f"{type(e).__name__}: {first} (traceback: {_save_traceback(plan)})"
        return Outcome(plan, FAILED, detail, time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    if result is None:
        return Outcome(plan, SKIPPED, "finished (the method found result.json)", seconds)
    status = result.get("status")
    if status == "ok":
        return Outcome(plan, OK, _ok_detail(result), seconds, result)
    if status == "diverged":
        return Outcome(plan, DIVERGED, str(result.get("reason") or f"epoch {result.get('diverged_epoch')}"),
                       seconds, result)
    return Outcome(plan, FAILED, f"result status {status!r}", seconds, result)


def _ok_detail(result: dict) -> str:
    """A short summary of a finished trial's numbers."""
    parts = [f"{result.get('epochs', '?')} epoch(s)"]
    for key in ("best_valid_acc", "test_acc"):
        if isinstance(result.get(key), (int, float)):
            parts.append(f"{key} {result[key]:.4f}")
    return ", ".join(parts)


def write_manifests(per_experiment: dict[str, list[TrialPlan]], results: Path, scale: str) -> list[Path]:
    """results/<experiment>/trials.json: the folders of this run's plan (shared ones included), nothing older."""
    written = []
    for name, members in per_experiment.items():
        path = Path(results) / name / "trials.json"
        rows: dict[str, dict] = {}
        for p in members:
            rows[p.key] = {"folder": p.key, "trial_id": p.trial_id, "owner": p.owner, "family": p.family,
                           "space": p.space, "strategy": p.strategy, "budget": p.budget, "seed": p.seed}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "experiment": name, "scale": scale,
                                   "trials": list(rows.values())}, indent=1))
        os.replace(tmp, path)  # readers never see half a manifest
        written.append(path)
    return written


def dropped_from_manifests(per_experiment: dict[str, list[TrialPlan]], results: Path, scale: str) -> list[str]:
    """One line per manifest whose finished trials this plan no longer lists (a narrower --seeds, say)."""
    lines = []
    for name, members in per_experiment.items():
        path, keep = Path(results) / name / "trials.json", {p.key for p in members}
        old = _read(path)
        rows = [r for r in old.get("trials", []) if isinstance(r, dict)] if old.get("scale") == scale else []
        gone = [r for r in rows if r.get("folder") not in keep
                and (Path(results) / str(r.get("folder")) / "result.json").is_file()]
        if gone:
            seeds = ", ".join(sorted({str(r.get("seed")) for r in gone}))
            lines.append(f"{path}: {len(gone)} finished trial(s) of seed(s) {seeds} leave the manifest, so analysis "
                         f"will not read them; name those seeds in --seeds too to keep them (finished trials are "
                         f"adopted, not rerun)")
    return lines


TrialFn = Callable[[TrialPlan], Outcome]


class Launcher(ABC):
    """Runs planned trials somewhere and returns one outcome per plan, in plan order."""

    @abstractmethod
    def run(self, plans: Sequence[TrialPlan], fn: TrialFn) -> list[Outcome]:
        """Run `fn` on every plan; a retrain must start only after its source plan has finished."""


def start_line(n: int, plans: Sequence[TrialPlan]) -> str:
    """'[n/N] owner/trial: method space seed s budget b', said when a trial starts (n from 0)."""
    plan = plans[n]
    method = plan.strategy if plan.strategy not in (None, plan.family) else plan.family
    return (f"[{n + 1}/{len(plans)}] {plan.key}: {method} {plan.space} seed {plan.seed}"
            + (f" budget {plan.budget}" if plan.budget else ""))


def progress_line(n: int, plans: Sequence[TrialPlan], outcome: Outcome) -> str:
    """'[n/N] owner/trial: status: detail', said when a trial ends (n from 0)."""
    detail = f": {outcome.detail}" if outcome.detail else ""
    return f"[{n + 1}/{len(plans)}] {plans[n].key}: {outcome.status}{detail}"


class LocalLauncher(Launcher):
    """Sequential, in this process: plans are already ordered so retrains follow their sources."""

    def run(self, plans: Sequence[TrialPlan], fn: TrialFn) -> list[Outcome]:
        """Run the plans one by one, a progress line before and after each."""
        outcomes = []
        for n, _ in enumerate(plans):
            click.echo(start_line(n, plans), err=True)
            outcomes.append(fn(plans[n]))
            click.echo(progress_line(n, plans, outcomes[-1]), err=True)
        return outcomes


# --- Ray: trials packed on one machine's GPU (fractions of it) or spread over a Ray cluster ---------
#
# Each plan becomes one task asking for `cpus_per_trial` CPUs and `gpus_per_trial` GPUs, so four
# trials at 0.25 GPU share one card. A retrain's task takes its source search's task as an
# argument, so Ray starts it only once that search has ended. A worker that dies (killed, out of
# host memory) is retried by Ray; the retry resumes the trial from its last checkpoint, as a re-run
# of the local launcher would. Ctrl-C cancels every task (running trials stop at their last
# checkpoint). Ray is optional (`pip install .[ray]`): nothing imports it until a Ray run starts.

# name -> "module:class", imported on use so that Ray's module loads only when Ray is asked for.
LAUNCHERS = {"local": "experiments.launchers:LocalLauncher", "ray": "experiments.ray_launcher:RayLauncher"}
POOL = "experiments.pool:PoolLauncher"  # local with --jobs N > 1


def _load(where: str) -> type:
    """A class named "module:class", imported now."""
    module, cls = where.split(":")
    return getattr(importlib.import_module(module), cls)


def get_launcher(name: str, jobs: int = 1, threads: str = "auto", device: str = "auto", **options) -> Launcher:
    """A launcher by name with its options (None: unset), or an error listing the valid names.

    local with jobs > 1 is the pool (experiments/pool.py): that many trials at once on this machine,
    `threads` torch threads each (auto: the cores split between them), GPUs of `device` dealt round-robin."""
    if name not in LAUNCHERS:
        raise ValueError(f"unknown launcher {name!r}; valid: {', '.join(LAUNCHERS)}")
    given = {k: v for k, v in options.items() if v is not None}
    if name == "local":
        if given:
            flag = "--" + next(iter(given)).replace("_", "-")
            raise ValueError(f"{flag} is a ray launcher option; add --launcher ray")
        if jobs == 1:
            return LocalLauncher()
        return _load(POOL)(jobs, threads, device)
    if jobs != 1:
        raise ValueError(f"--jobs is for the local launcher; with --launcher {name}, "
                         "--cpus-per-trial and --gpus-per-trial decide how many trials run at once")
    return _load(LAUNCHERS[name])(**given)
