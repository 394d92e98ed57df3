"""The epoch driver every search and retraining shares: resume, checkpoint, progress, divergence.

A searcher implements the small `Searcher` protocol; the loop runs epochs while its
`EpochClock` lets them start (a budget, `nasib.clock.BudgetClock`; else the searcher's own
count), as Lightning's Trainer runs under a `Timer`. This module owns everything that
must behave the same for all of them: the lock, exact resume from `checkpoint.pt`,
fsynced epoch records, `result.json` last, a clean stop on Ctrl-C, and `diverged`.
A resume, and a start-over of a folder that already holds records, must pass the same
settings and data check; records that are damaged or missing stop the run with one line
instead of being rewritten (docs/records.md).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from contract.errors import Interrupted  # noqa: F401 (raised here; importers may take it from the loop)
from contract.format import CHECKPOINT_FORMAT, IDENTITY
from nascore.data import DataConfig
from nascore.intact import RERUN, flat, missing_epochs, spans
from nascore.lock import TrialLock
from nascore.records import (
    CHECKPOINT,
    CONFIG,
    EPOCHS,
    CheckpointWriter,
    RecordError,
    RecordFormatError,
    Trial,
    read_json,
)
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
    plan: dict | None = None  # the experiment runner's plan of this trial, recorded in config.json (None: by hand)


class Diverged(RuntimeError):
    """A non-finite number in a trial's loss or architecture parameters."""


class Searcher(Protocol):
    """What the driver needs from a search or a retraining."""

    device: torch.device

    def state_dict(self) -> dict: ...  # everything needed to resume exactly

    def load_state_dict(self, state: dict) -> None: ...

    def done(self, epoch: int) -> bool: ...  # True when `epoch` should not run (count or budget reached)

    def planned_epochs(self) -> int: ...  # current plan, for progress display

    def run_epoch(self, epoch: int) -> dict: ...  # train + evaluate one epoch, return its record fields

    def finish(self, trial: Trial, epochs: list[dict]) -> dict: ...  # write method records, result fields


class EpochClock(Protocol):
    """The limit the loop runs epochs under; it is handed measurements and never calls the searcher."""

    @property
    def started(self) -> bool: ...  # False until it has the timing run it plans from

    @property
    def planned_epochs(self) -> int: ...  # current plan, for progress display

    def start(self, measured: object) -> None: ...  # plan from a `TimedSearcher.measure_epoch()`

    def may_start(self, epoch: int) -> bool: ...  # whether `epoch` may run


class TimedSearcher(Searcher, Protocol):
    """A searcher whose clock plans from a timing run."""

    def measure_epoch(self) -> object: ...  # time an epoch on this machine (state restored)


class _Counted:
    """The clock of a searcher that counts its own epochs (ENAS, retraining)."""

    started = True

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher

    @property
    def planned_epochs(self) -> int:
        """The searcher's count."""
        return self.searcher.planned_epochs()

    def start(self, measured: object) -> None:
        """Nothing to plan."""

    def may_start(self, epoch: int) -> bool:
        """Until the searcher is done."""
        return not self.searcher.done(epoch)


def start_clock(clock: EpochClock, searcher: TimedSearcher) -> None:
    """Hand a clock with no plan yet the searcher's timing run (the explicit step before the first epoch)."""
    if not clock.started:
        clock.start(searcher.measure_epoch())


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


# Where the data lives may change between runs (the same files, moved); nothing else may. That
# the files are the same is checked on their digest (check_same_data).
IGNORED = ("data.data_dir", "data.download")
START_OVER = "pass --force to start over (the old folder is moved aside)"


def _started_with(trial: Trial) -> dict:
    """The config.json a trial was started with; unreadable or missing is one line with the next step."""
    try:
        return read_json(trial.file(CONFIG), need_format=True)
    except RecordFormatError:  # its message already says what to do
        raise
    except RecordError as e:
        raise RecordError(f"{e}; the settings this trial was started with cannot be checked: restore "
                          f"{CONFIG}, or {START_OVER}") from None


def check_same_run(trial: Trial, meta: dict) -> dict:
    """Refuse to resume a trial with settings or data other than those it was started with; returns config.json."""
    old = _started_with(trial)
    now = {**{k: meta.get(k) for k in IDENTITY}, **flat(meta.get("config", {}), "config.")}
    then = {**{k: old.get(k) for k in IDENTITY}, **flat(old.get("config", {}) or {}, "config.")}
    for key in sorted(set(now) | set(then)):
        if key.removeprefix("config.") in IGNORED or now.get(key) == then.get(key):
            continue
        raise RecordError(f"{trial.path} was started with {key}={then.get(key)!r}, this run asks "
                          f"{key}={now.get(key)!r}; resume with the original arguments, or {START_OVER}")
    check_same_data(trial, old, meta)
    return old


def _data(record: dict) -> tuple[str | None, str | None, str | None]:
    """(data_source, data_digest, data_copy) from a config's provenance."""
    prov = record.get("provenance")
    prov = prov if isinstance(prov, dict) else {}
    return prov.get("data_source"), prov.get("data_digest"), prov.get("data_copy")


def check_same_data(trial: Trial, old: dict, meta: dict) -> None:
    """Refuse a run that reads other data than the trial started with: the digest decides, else the folder."""
    (src0, dig0, copy0), (src1, dig1, copy1) = _data(old), _data(meta)
    if dig0 and dig1:
        same = dig0 == dig1  # the same files, wherever they now are
    elif copy0 and copy1 and copy0 != copy1:
        same = False
    else:
        same = None in (src0, src1) or src0 == src1
    if not same:
        raise RecordError(f"{trial.path} was started on the data in {src0} (digest {dig0 or 'not recorded'}), "
                          f"this run reads {src1} (digest {dig1 or 'unknown'}); resume with the original "
                          f"--data-dir, or {START_OVER}")


class Progress:
    """A tqdm bar on a terminal (epoch / planned, budget left, valid accuracy); plain lines otherwise;
    TensorBoard scalars under <trial>/tb/ when asked for (nascore/tensorboard.py)."""

    def __init__(self, start: int, planned: int, trial_dir: Path | None = None):
        from nascore.tensorboard import open_scalars

        self.bar, self.scalars = None, open_scalars(trial_dir)
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=planned, initial=start, unit="epoch", dynamic_ncols=True, file=sys.stderr)

    def update(self, rec: dict, planned: int) -> None:
        """Show one finished epoch; the total follows the (re-)planned epoch count."""
        if self.scalars is not None:
            self.scalars.add(rec)
        if self.bar is None:
            _say(_line(rec, planned))
            return
        self.bar.total = planned
        shown = {k: rec[k] for k in ("valid_acc", "test_acc", "budget_left_s", "p_explore")
                 if isinstance(rec.get(k), (int, float))}
        self.bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """Finish the bar and the event file, if any."""
        if self.bar is not None:
            self.bar.close()
        if self.scalars is not None:
            self.scalars.close()


def _resume(trial: Trial, searcher: Searcher, meta: dict) -> tuple[int, float]:
    """Restore from the checkpoint, or start fresh; returns (first epoch, wall seconds so far)."""
    state = trial.load_checkpoint()
    if state is None:
        return _start(trial, meta), 0.0
    old = check_same_run(trial, meta)
    start = _restore(trial, searcher, state)
    trial.truncate_epochs(start)
    _note_moved_data(trial, old, meta, start)
    _say(f"resuming {trial.path} at epoch {start + 1} from its checkpoint")
    return start, state["wall_s"]


def _start(trial: Trial, meta: dict) -> int:
    """No checkpoint: epoch 0, after the same settings check as a resume when records exist already."""
    if trial.file(CONFIG).exists() or trial.file(EPOCHS).exists():
        check_same_run(trial, meta)  # a lost checkpoint is no licence to rewrite another run's records
        dropped = len(trial.read_epochs())
        if dropped:
            _say(f"{trial.path}: no {CHECKPOINT} to resume from; starting again at epoch 1 "
                 f"(the {dropped} epoch line(s) it does not cover are dropped)")
    trial.write_config(meta)
    trial.truncate_epochs(0)
    return 0


def _restore(trial: Trial, searcher: Searcher, state: object) -> int:
    """Load a checkpoint into the searcher and the RNGs; returns the first epoch to run."""
    path = trial.file(CHECKPOINT)
    fmt = CHECKPOINT_FORMAT
    if not (isinstance(state, dict) and state.get("format") == fmt and isinstance(state.get("epoch"), int)
            and {"searcher", "rng", "wall_s"} <= set(state)):
        raise RecordError(f"{path} is no checkpoint of this kit's trial loop (format {fmt}); restore it, "
                          f"or {RERUN}")
    try:
        searcher.load_state_dict(state["searcher"])
        set_rng_state(state["rng"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise RecordError(f"{path} does not fit this trial ({type(e).__name__}: {first}); it comes from "
                          f"another run or kit version: restore it, or {RERUN}") from None
    return state["epoch"] + 1


def _note_moved_data(trial: Trial, old: dict, meta: dict, start: int) -> None:
    """Record in config.json that the same data files were read from another folder from epoch `start`."""
    now, then = _data(meta)[0], _data(old)[0]
    if None in (now, then) or now == then:
        return
    prov = old["provenance"]
    prov["data_moved"] = [*prov.get("data_moved", []), {"from_epoch": start, "data_source": now}]
    trial.write_config({k: v for k, v in old.items() if k != "format"})
    _say(f"{trial.path}: the same data files (digest {_data(old)[1]}) are now read from {now}; "
         f"recorded in {CONFIG}")


def _epochs(trial: Trial, searcher: Searcher, clock: EpochClock, start: int,
            wall0: float) -> tuple[float, int]:
    """Run epochs while the clock lets them start; returns (checkpoint seconds waited for, epochs in all)."""
    start_clock(clock, searcher)
    t_run, ckpt_s, epoch = time.perf_counter(), 0.0, start
    progress, writer = Progress(start, clock.planned_epochs, trial.path), CheckpointWriter(trial)
    try:
        while clock.may_start(epoch):
            ckpt_s += _one_epoch(trial, searcher, clock, writer, epoch, wall0, t_run, progress)
            epoch += 1
    finally:
        progress.close()
        t0 = time.perf_counter()
        writer.wait()  # the last checkpoint lands before result.json (or before a Ctrl-C exits)
        ckpt_s += time.perf_counter() - t0
    return ckpt_s, epoch


def _one_epoch(trial: Trial, searcher: Searcher, clock: EpochClock, writer: CheckpointWriter, epoch: int,
               wall0: float, t_run: float, progress: Progress) -> float:
    """Run, record and checkpoint one epoch; returns what the checkpoint cost this thread (the write
    itself overlaps the next epoch, which the budget's clock and the next epoch's time then include)."""
    t0 = time.perf_counter()
    rec = searcher.run_epoch(epoch)
    sync(searcher.device)
    check_finite(rec, epoch)
    now = time.perf_counter()
    rec = {"epoch": epoch, "epoch_s": now - t0, "wall_s": wall0 + now - t_run, **rec}
    trial.append_epoch(rec)  # before the checkpoint: a crash between them drops this line on resume
    writer.save({"format": CHECKPOINT_FORMAT, "epoch": epoch, "wall_s": rec["wall_s"],
                 "searcher": searcher.state_dict(), "rng": rng_state()})
    progress.update(rec, clock.planned_epochs)
    return time.perf_counter() - now


def run_trial(trial: Trial, searcher: Searcher, meta: dict, lock: TrialLock | None = None,
              clock: EpochClock | None = None) -> dict:
    """Run (or resume) a trial to its end and return what result.json holds (`lock`: one already held;
    `clock`: the limit its epochs run under, None: the searcher's own count)."""
    trial.prepare()
    with lock or TrialLock(trial):
        try:
            return _run_locked(trial, searcher, meta, clock or _Counted(searcher))
        except KeyboardInterrupt:
            if trial.finished:  # the stop came after result.json landed
                raise Interrupted(f"interrupted; {trial.path} was already finished (result.json is "
                                  f"written)") from None
            raise Interrupted(f"interrupted; {trial.path} keeps its last checkpoint; "
                              f"run the same command to resume") from None


def _run_locked(trial: Trial, searcher: Searcher, meta: dict, clock: EpochClock) -> dict:
    """run_trial's work once the folder is ours: check, resume, run the epochs, write the results."""
    trial.remove_stale_temps()
    damage = trial.damage()
    if damage:  # a result.json that claims more than the folder holds is never taken or overwritten
        raise RecordError(damage)
    start, wall0 = _resume(trial, searcher, meta)
    base = {k: meta.get(k) for k in ("trial_id", "family", "strategy", "space", "seed", "budget_s")}
    try:
        ckpt_s, end = _epochs(trial, searcher, clock, start, wall0)
    except Diverged as e:
        return _diverged(trial, base, e)
    epochs = _whole_log(trial, end)
    fields = searcher.finish(trial, epochs)
    result = {**base, "status": "ok", "epochs": len(epochs), "diverged_epoch": None,
              "search_s": epochs[-1]["wall_s"] if epochs else 0.0,
              "checkpoint_s_per_epoch": ckpt_s / max(1, len(epochs) - start), **fields}
    trial.write_result(result)
    return result


def _whole_log(trial: Trial, end: int) -> list[dict]:
    """The epoch records 0..end-1, refusing a log that lost some while the trial ran."""
    epochs = trial.read_epochs()
    missing = missing_epochs(epochs, end)
    if missing or len(epochs) != end:
        raise RecordError(f"{trial.file(EPOCHS)} holds {len(epochs)} epoch line(s) but this trial ran {end}"
                          + (f" (epoch(s) {spans(missing)} missing)" if missing else "")
                          + f": it was deleted or replaced while the trial ran; no result.json was written; "
                          f"restore the file and run the same command, or {RERUN}")
    return epochs


def _diverged(trial: Trial, base: dict, err: Diverged) -> dict:
    """Write the diverged result; say truly what was kept."""
    done = trial.read_epochs()
    result = {**base, "status": "diverged", "diverged_epoch": len(done), "reason": str(err),
              "epochs": len(done)}
    trial.write_result(result)
    kept = (f"the last good checkpoint (epoch {len(done)}) is kept" if trial.file(CHECKPOINT).is_file()
            else "no checkpoint was written (it diverged before one was saved)")
    _say(f"{trial.path}: diverged: {err}; {kept}")
    return result
