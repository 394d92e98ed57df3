"""Opening a trial: the one place every search and retraining starts a trial folder.

A trial is skipped when finished (unless forced), moved aside when forced, and its
`config.json` metadata is built here from the run spec, so every method writes the same
fields in the same way.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from nascore.loop import RunSpec
from nascore.records import Trial, provenance


def open_trial(out: Path, force: bool) -> Trial | None:
    """The trial to run, or None when it is finished and --force was not given."""
    trial = Trial(out)
    if trial.finished and not force:
        print(f"{out} is finished (result.json exists); skipping. Use --force to run it again.", file=sys.stderr)
        return None
    if force and trial.path.is_dir() and any(trial.path.iterdir()):
        moved = trial.archive()
        print(f"--force: the earlier trial was moved to {moved}", file=sys.stderr)
    return trial


def trial_meta(spec: RunSpec, device: torch.device, data_source: str | None, *, method: str,
               space: str | None, preset: str, config: dict, budget_s: float | None = None,
               budget_label: str | None = None, **extra) -> dict:
    """The metadata every trial's config.json carries (ids, settings, provenance)."""
    return {"trial_id": spec.out.name, "experiment": spec.experiment, "method": method, "space": space,
            "seed": spec.seed, "preset": preset, "budget_s": budget_s, "budget_label": budget_label,
            "plan": spec.plan, **extra, "config": config,
            "provenance": provenance(device, spec.deterministic, data_source)}


def oom_hint(batch_size: int, layers: int) -> str:
    """The message for a CUDA out-of-memory error."""
    return (f"CUDA out of memory at batch size {batch_size} with {layers} layers; lower --batch-size "
            f"or --layers/--channels, or free the GPU")
