"""Opening a trial folder: which folders may be written, skipped, resumed or moved aside.

`--out` must name a trial folder: never empty, never the data root or the kit's checkout
(nor a folder above them), and never a non-empty folder holding files that are not a
trial's. A finished folder is skipped only when it ran what is asked now (method, space,
scale, budget); otherwise it is refused with a pointer to `--force`. `--force` moves a
trial aside only under its lock and after every other input was checked (nascore.recipe).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from contract.errors import RecordError
from contract.format import IDENTITY, aside_suffix
from contract.names import ALPHAS, ARCH, CHECKPOINT, CONFIG, EPOCHS, LOCK, RESULT, SAMPLES
from nascore.lock import TrialLock
from nascore.loop import RunSpec
from nascore.records import Trial, provenance, read_json

KIT_ROOT = Path(__file__).resolve().parents[1]  # the kit's checkout (or installed tree): never a trial
RECORDS = (CONFIG, EPOCHS, RESULT, CHECKPOINT, ARCH, ALPHAS, SAMPLES, LOCK)  # what a trial folder holds


def _is_kit_file(name: str) -> bool:
    """A record, or a temp/probe file a killed run of the kit leaves behind."""
    return name in RECORDS or name.startswith(".probe") or (name.startswith(".") and ".tmp" in name)


def _has_record(path: Path) -> bool:
    """Whether the folder holds a config.json/result.json or an epoch line written by this kit."""
    for name, key in ((CONFIG, "format"), (RESULT, "format"), (EPOCHS, "epoch")):
        try:
            with open(path / name) as f:
                first = json.loads(f.read() if name != EPOCHS else f.readline())
        except (OSError, ValueError):
            continue
        if isinstance(first, dict) and key in first:
            return True
    return False


def check_out(out: Path, data_root: Path) -> None:
    """Refuse an --out that is empty, the data root or the kit's checkout (or a folder above either)."""
    if str(out).strip() in ("", "."):
        raise RecordError("--out is empty: name the trial folder to write, e.g. --out runs/my-trial")
    here = Path(out).resolve()
    for what, root in (("the data root", Path(data_root).resolve()), ("the kit's checkout", KIT_ROOT)):
        if root == here or root.is_relative_to(here):
            raise RecordError(f"--out {out} is {what} {root} or a folder above it; name a trial folder "
                              f"of its own, e.g. --out runs/my-trial")


def folder_state(trial: Trial) -> str:
    """new (absent or empty), partial (started) or finished; refuses a folder that is not a trial's."""
    path = trial.path
    if path.exists() and not path.is_dir():
        raise RecordError(f"--out {path} is a file, not a folder; name a trial folder")
    names = [p.name for p in path.iterdir()] if path.is_dir() else []
    if not names:
        return "new"
    if not (_has_record(path) or all(_is_kit_file(n) for n in names)):
        raise RecordError(f"{path} holds files that are not a trial's (no config.json, epochs.jsonl or "
                          f"result.json of this kit); nothing was written or moved; choose a new folder for --out")
    return "finished" if trial.finished else "partial"


def _same(a: object, b: object) -> bool:
    """Equal values; budgets in seconds equal to a millisecond (labels round-trip through floats)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) < 1e-3
    return a == b


def check_finished(trial: Trial, request: dict) -> None:
    """Refuse a finished trial that ran other settings than those asked now (family, strategy, space, scale, budget)."""
    then = read_json(trial.file(CONFIG), need_format=True)
    for key in IDENTITY:
        if not _same(then.get(key), request.get(key)):
            raise RecordError(f"{trial.path} is a finished trial with {key}={then.get(key)!r}, this run asks "
                              f"{key}={request.get(key)!r}; choose another --out, or pass --force to run it "
                              f"again (the old folder is moved aside)")


def check_movable(trial: Trial) -> None:
    """Refuse early when `<name>.old-<stamp>` would be too long a name for the file system."""
    dest = trial.path.name + aside_suffix()
    try:
        limit = os.pathconf(trial.path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(dest)) > limit:
        raise RecordError(f"--force: {trial.path} cannot be moved aside as {dest} (a name of {len(dest)} "
                          f"characters, this file system allows {limit}); rename or remove it yourself")


def move_aside(trial: Trial, lock: TrialLock) -> tuple[TrialLock, Path]:
    """Move a locked trial to <name>.old-<stamp> and lock the fresh folder; returns that lock and where
    the old trial went."""
    try:
        moved = trial.archive()
    except OSError as e:
        raise RecordError(f"--force: cannot move {trial.path} aside: {e.strerror or e}; it was left "
                          f"where it was") from None
    lock.moved_to(moved)
    print(f"--force: the earlier trial was moved to {moved}", file=sys.stderr)
    trial.prepare()
    fresh = TrialLock(trial)
    try:
        fresh.acquire()
    finally:
        lock.release()
    return fresh, moved


def kept_line(trial: Trial, start_up: bool, moved: Path | None = None) -> str:
    """A true line, for Ctrl-C, about what the trial folder keeps now."""
    when = "interrupted during start-up" if start_up else "interrupted"
    if trial.finished:
        said = f"{trial.path} is finished (result.json)"
    elif trial.file(CHECKPOINT).is_file():
        said = f"{trial.path} keeps its last checkpoint; run the same command to resume"
    else:
        said = f"no checkpoint was written to {trial.path}; nothing to resume from"
    return f"{when}; {said}" + (f"; the earlier trial is in {moved}" if moved else "")


def trial_meta(spec: RunSpec, device: torch.device, data_source: str | None, *, family: str,
               strategy: str | None, space: str | None, scale: str, config: dict, budget_s: float | None = None,
               budget_label: str | None = None, **extra) -> dict:
    """The metadata every trial's config.json carries (ids, settings, provenance)."""
    return {"trial_id": spec.out.name, "experiment": spec.experiment, "family": family, "strategy": strategy,
            "space": space, "seed": spec.seed, "scale": scale, "budget_s": budget_s, "budget_label": budget_label,
            "plan": spec.plan, **extra, "config": config,
            "provenance": provenance(device, spec.deterministic, data_source)}


def oom_hint(batch_size: int, layers: int) -> str:
    """The message for a CUDA out-of-memory error."""
    return (f"CUDA out of memory at batch size {batch_size} with {layers} layers; lower --batch-size "
            f"or --layers/--channels, or free the GPU")
