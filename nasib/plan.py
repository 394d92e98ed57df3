"""`nasib plan`: what a budget buys on this machine, measured without a dataset or a trial folder."""
from __future__ import annotations

import time

import torch

from nascore.runtime import resolve_device, seed_everything
from nascore.trial import oom_hint
from nasib.budget import BudgetConfig, plan_summary, resolve_budget
from nasib.presets import apply_overrides
from nasib.presets import preset as get_preset
from nasib.search import NasibSearch
from nasib.timing import CIFAR_TRAIN, batch_counts, synthetic_splits


def plan(space: str, preset: str = "quick", budget: str = "2h", device: str = "auto",
         overrides: dict | None = None, seed: int = 0) -> dict:
    """Measure an epoch of the configured search on this machine and return what `budget` buys.

    Runs the real steps on synthetic images (speed does not depend on pixel values) and
    projects the epoch for the configured split sizes; returns epoch_s, n, beta, the p
    schedule and the per-step timings. Raises BudgetTooSmall when not one epoch fits.
    """
    t_start = time.monotonic()
    cfg = apply_overrides(get_preset(preset, space), {**(overrides or {}), "budget": budget})
    dev = resolve_device(device)
    seed_everything(seed, False)
    n_valid = cfg.data.valid_size
    n_train = cfg.data.train_size or CIFAR_TRAIN - n_valid
    small = max(cfg.batch_size, cfg.eval_batch_size) * 2  # enough distinct batches to cycle through
    try:
        searcher = NasibSearch(cfg, synthetic_splits(small, small, seed), dev, seed)
        timing = searcher.measure(batch_counts(n_train, n_valid, cfg))
    except torch.cuda.OutOfMemoryError as e:
        e.hint = oom_hint(cfg.batch_size, cfg.layers)
        raise
    extra = searcher.strategy.finish_passes * timing["eval_pass_s"] * 1.1
    budget_s = resolve_budget(budget, timing["epoch_s"], time.monotonic() - t_start, extra)
    reserve = BudgetConfig(budget_s, k=cfg.k).reserve + extra
    summary = plan_summary(BudgetConfig(budget_s, k=cfg.k, reserve_s=reserve), timing["epoch_s"],
                           used_s=time.monotonic() - t_start)
    return {**summary, "space": cfg.space, "preset": preset, "device": str(dev), "budget_label": budget,
            "num_ops": len(searcher.op_names), "train_images": n_train, "valid_images": n_valid,
            "timing": timing}
