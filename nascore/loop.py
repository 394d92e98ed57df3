"""The epoch driver every search and retraining shares: resume, checkpoint, progress, divergence.

A searcher implements the small `Searcher` protocol; this module owns everything that
must behave the same for all of them: the lock, exact resume from `checkpoint.pt`,
fsynced epoch records, `result.json` last, a clean stop on Ctrl-C, and `diverged`.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from nascore.data import DataConfig
from nascore.lock import TrialLock
from nascore.records import CONFIG, FORMAT, CheckpointWriter, RecordError, Trial, read_json
from nascore.runtime import rng_state, set_rng_state, sync


@dataclass(frozen=True)
class RunSpec:
    """How and where to run one trial; the same for every method."""

    out: Path  # the trial folder
    seed: int = 0  # seeds python, numpy and torch
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    data: DataConfig = field(default_factory=DataConfig)  # where CIFAR-10 is and which subsets to use
    deterministic: bool = False  # deterministic kernels: same seed, same numbers on CPU
    force: bool = False  # re-run a finished trial, moving the old folder aside
    experiment: str | None = None  # experiment name recorded in config.json (None: standalone run)


class Diverged(RuntimeError):
    """A non-finite number in a trial's loss or architecture parameters."""


class Interrupted(RuntimeError):
    """The user stopped the run (SIGINT); the last checkpoint is kept."""


class Searcher(Protocol):
    """What the driver needs from a search or a retraining."""

    device: torch.device

    def state_dict(self) -> dict: ...  # everything needed to resume exactly

    def load_state_dict(self, state: dict) -> None: ...

    def done(self, epoch: int) -> bool: ...  # True when `epoch` should not run (count or budget reached)

    def planned_epochs(self) -> int: ...  # current plan, for progress display

    def run_epoch(self, epoch: int) -> dict: ...  # train + evaluate one epoch, return its record fields

    def finish(self, trial: Trial, epochs: list[dict]) -> dict: ...  # write method records, result fields


def check_finite(record: dict, epoch: int) -> None:
    """Raise Diverged naming the first non-finite number in an epoch record."""
    for key, val in record.items():
        if isinstance(val, float) and not math.isfinite(val):
            raise Diverged(f"{key} became {val} in epoch {epoch}")


def _say(msg: str) -> None:
    """Progress for people: stderr, one line."""
    print(msg, file=sys.stderr, flush=True)


def _line(rec: dict, planned: int) -> str:
    """One human line per epoch."""
    parts = [f"epoch {rec['epoch'] + 1}/{planned}", f"{rec['epoch_s']:.1f}s"]
    for key in ("train_loss", "valid_acc", "test_acc"):
        if isinstance(rec.get(key), (int, float)):
            parts.append(f"{key} {rec[key]:.3f}")
    if rec.get("budget_left_s") is not None:
        parts.append(f"budget left {rec['budget_left_s']:.0f}s")
    if rec.get("p_explore") is not None:
        parts.append(f"p {rec['p_explore']:.2f}")
    return "  ".join(parts)


IGNORED = ("data.data_dir", "data.download")  # where the data lives may change between runs; nothing else may


def _flat(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}, after a JSON round trip so tuples compare equal to lists."""
    out = {}
    for key, val in json.loads(json.dumps(d, default=str)).items():
        if isinstance(val, dict):
            out.update(_flat(val, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = val
    return out


def check_same_run(trial: Trial, meta: dict) -> None:
    """Refuse to resume a trial with settings other than those it was started with."""
    old = read_json(trial.file(CONFIG), need_format=True)
    keys = ("method", "space", "preset", "budget_s")
    now = {**{k: meta.get(k) for k in keys}, **_flat(meta.get("config", {}), "config.")}
    then = {**{k: old.get(k) for k in keys}, **_flat(old.get("config", {}), "config.")}
    for key in sorted(set(now) | set(then)):
        if key.removeprefix("config.") in IGNORED or now.get(key) == then.get(key):
            continue
        raise RecordError(f"{trial.path} was started with {key}={then.get(key)!r}, this run asks "
                          f"{key}={now.get(key)!r}; resume with the original arguments, or pass --force to "
                          f"start over (the old folder is moved aside)")


class Progress:
    """A tqdm bar on a terminal (epoch / planned, budget left, valid accuracy); plain lines otherwise."""

    def __init__(self, start: int, planned: int):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=planned, initial=start, unit="epoch", dynamic_ncols=True, file=sys.stderr)

    def update(self, rec: dict, planned: int) -> None:
        """Show one finished epoch; the total follows the (re-)planned epoch count."""
        if self.bar is None:
            _say(_line(rec, planned))
            return
        self.bar.total = planned
        shown = {k: rec[k] for k in ("valid_acc", "test_acc", "budget_left_s", "p_explore")
                 if isinstance(rec.get(k), (int, float))}
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Finish the bar, if any."""
        if self.bar is not None:
            self.bar.close()


def _resume(trial: Trial, searcher: Searcher, meta: dict) -> tuple[int, float]:
    """Restore from the checkpoint, or start fresh; returns (first epoch, wall seconds so far)."""
    state = trial.load_checkpoint()
    if state is None:
        trial.write_config(meta)
        trial.truncate_epochs(0)  # lines from a run that died before its first checkpoint
        return 0, 0.0
    check_same_run(trial, meta)
    searcher.load_state_dict(state["searcher"])
    set_rng_state(state["rng"])
    start = state["epoch"] + 1
    trial.truncate_epochs(start)
    _say(f"resuming {trial.path} at epoch {start + 1} from its checkpoint")
    return start, state["wall_s"]


def _epochs(trial: Trial, searcher: Searcher, start: int, wall0: float) -> float:
    """Run epochs until the searcher is done; returns the checkpoint seconds the run waited for."""
    t_run, ckpt_s, epoch = time.perf_counter(), 0.0, start
    progress, writer = Progress(start, searcher.planned_epochs()), CheckpointWriter(trial)
    try:
        while not searcher.done(epoch):
            ckpt_s += _one_epoch(trial, searcher, writer, epoch, wall0, t_run, progress)
            epoch += 1
    finally:
        progress.close()
        t0 = time.perf_counter()
        writer.wait()  # the last checkpoint lands before result.json (or before a Ctrl-C exits)
        ckpt_s += time.perf_counter() - t0
    return ckpt_s


def _one_epoch(trial: Trial, searcher: Searcher, writer: CheckpointWriter, epoch: int, wall0: float,
               t_run: float, progress: Progress) -> float:
    """Run, record and checkpoint one epoch; returns what the checkpoint cost this thread (the write
    itself overlaps the next epoch, which the budget's clock and the next epoch's time then include)."""
    t0 = time.perf_counter()
    rec = searcher.run_epoch(epoch)
    sync(searcher.device)
    check_finite(rec, epoch)
    now = time.perf_counter()
    rec = {"epoch": epoch, "epoch_s": now - t0, "wall_s": wall0 + now - t_run, **rec}
    trial.append_epoch(rec)  # before the checkpoint: a crash between them drops this line on resume
    writer.save({"format": FORMAT, "epoch": epoch, "wall_s": rec["wall_s"],
                 "searcher": searcher.state_dict(), "rng": rng_state()})
    progress.update(rec, searcher.planned_epochs())
    return time.perf_counter() - now


def run_trial(trial: Trial, searcher: Searcher, meta: dict, lock: TrialLock | None = None) -> dict:
    """Run (or resume) a trial to its end and return what result.json holds (`lock`: one already held)."""
    trial.prepare()
    with lock or TrialLock(trial):
        start, wall0 = _resume(trial, searcher, meta)
        base = {k: meta.get(k) for k in ("trial_id", "method", "space", "seed", "budget_s")}
        try:
            ckpt_s = _epochs(trial, searcher, start, wall0)
        except Diverged as e:
            done = trial.read_epochs()
            result = {**base, "status": "diverged", "diverged_epoch": len(done), "reason": str(e),
                      "epochs": len(done)}
            trial.write_result(result)
            _say(f"{trial.path}: diverged: {e}; the last good checkpoint is kept")
            return result
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; {trial.path} keeps its last checkpoint; "
                              f"run the same command to resume") from None
        epochs = trial.read_epochs()
        fields = searcher.finish(trial, epochs)
        result = {**base, "status": "ok", "epochs": len(epochs), "diverged_epoch": None,
                  "search_s": epochs[-1]["wall_s"] if epochs else 0.0,
                  "checkpoint_s_per_epoch": ckpt_s / max(1, len(epochs) - start), **fields}
        trial.write_result(result)
        return result
