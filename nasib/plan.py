"""`nasib plan`: what a budget buys on this machine, measured without a dataset or a trial folder."""
from __future__ import annotations

import time

import torch

from contract.budget import Budget
from contract.errors import OutOfMemory
from nascore.runtime import resolve_device, seed_everything
from nascore.spaces import SpaceLike
from nascore.trial import oom_hint
from nasib.clock import BudgetClock
from nasib.presets import configure
from nasib.search import NasibSearch
from nasib.timing import CIFAR_TRAIN, batch_counts, synthetic_splits


def plan(space: SpaceLike, scale: str = "quick", budget: Budget | str = "2h", device: str = "auto",
         overrides: dict | None = None, seed: int = 0) -> dict:
    """Measure an epoch of the configured search on this machine and return what `budget` buys.

    Runs the real steps on synthetic images (speed does not depend on pixel values) and
    projects the epoch for the configured split sizes; the search's own budget clock plans it.
    Returns epoch_s, n, beta, the p schedule and the per-step timings. Raises BudgetTooSmall
    when not one epoch fits.
    """
    t_start = time.monotonic()
    cfg, value = configure(scale, space, {**(overrides or {}), "budget": budget})
    clock = BudgetClock(cfg.budget, cfg.k, used_s=time.monotonic() - t_start)
    dev = resolve_device(device)
    seed_everything(seed, False)
    n_valid = cfg.data.valid_size
    n_train = cfg.data.train_size or CIFAR_TRAIN - n_valid
    small = max(cfg.batch_size, cfg.eval_batch_size) * 2  # enough distinct batches to cycle through
    try:
        searcher = NasibSearch(cfg, synthetic_splits(small, small, seed), dev, seed, budget=clock, space=value)
        clock.start(searcher.measure_epoch(batch_counts(n_train, n_valid, cfg), say=False))
    except torch.cuda.OutOfMemoryError as e:  # typed, as the trial recipe raises it
        raise OutOfMemory(oom_hint(cfg.batch_size, cfg.layers)) from e
    return {**clock.summary(), "space": cfg.space, "scale": scale, "device": str(dev),
            "budget_label": cfg.budget.text, "num_ops": len(searcher.op_names), "train_images": n_train,
            "valid_images": n_valid, "timing": clock.timing}
