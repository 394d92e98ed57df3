"""ENAS macro search speed: child train step, controller update, evaluation, projected epoch time.

Runs the search's own code paths (`enas_ext.search.EnasSearch`) on synthetic uint8 images
of the preset's sizes, so no dataset is needed. Each piece is warmed up, then timed with
a device sync on both ends; the epoch projection is
steps_per_epoch * step + train_steps * update + evaluation.
"""
from __future__ import annotations

import time

import torch

from enas_ext.presets import configure
from enas_ext.search import EnasSearch
from nascore.data import Split, Splits, forever
from nascore.runtime import resolve_device, seed_everything, sync

CIFAR_TRAIN = 50_000  # training images before the valid split is held out


def _split(n: int, gen: torch.Generator) -> Split:
    """n random 32x32 RGB uint8 images with labels 0..9."""
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return Split(x, torch.randint(0, 10, (n,), generator=gen))


def _timed(fn, device: torch.device, repeat: int) -> float:
    """Seconds per call of fn() over `repeat` calls, synced on both ends."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / repeat


def run(device: str, preset: str, space: str = "original", steps: int | None = None,
        updates: int | None = None) -> dict:
    """Time one ENAS search's pieces at `preset` on `device`; returns the figures as a dict."""
    cfg = configure(preset, space)
    dev = resolve_device(device)
    seed_everything(0, deterministic=False)
    on_gpu = dev.type == "cuda"
    steps = steps or (30 if on_gpu else 5)
    updates = updates or (5 if on_gpu else 2)
    eval_batches = 10 if on_gpu else 2
    n_train = min(cfg.data.train_size or CIFAR_TRAIN, CIFAR_TRAIN - cfg.data.valid_size)
    gen = torch.Generator().manual_seed(0)
    splits = Splits(train=_split(cfg.batch_size * steps, gen),
                    valid=_split(max(cfg.batch_size, cfg.eval_batch * eval_batches), gen),
                    test=_split(1, gen), mean=(125.3, 123.0, 113.9), std=(63.0, 62.1, 66.7),
                    source="synthetic")
    search = EnasSearch(cfg, splits, dev, seed=0)

    search.train_epoch(cfg.lr_max)  # warm-up: kernels, allocator, cudnn autotune for every op
    step_s = _timed(lambda: search.train_epoch(cfg.lr_max), dev, 1) / steps

    search.child.eval()
    stream = forever(search.reward_loader)
    update = lambda: search.trainer.update(lambda s: search.rewards(s, stream))  # noqa: E731
    update()
    update_s = _timed(update, dev, updates)

    search.evaluate()
    n_eval = -(-cfg.data.valid_size // cfg.eval_batch)
    eval_s = _timed(search.evaluate, dev, 1) / len(search.eval_loader) * n_eval

    steps_per_epoch = n_train // cfg.batch_size
    train_steps = cfg.controller.train_steps
    epoch_s = steps_per_epoch * step_s + train_steps * update_s + eval_s
    return {
        "bench": "enas_search", "preset": preset, "space": space, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if on_gpu else "cpu", "torch": torch.__version__,
        "layers": cfg.layers, "channels": cfg.channels, "batch_size": cfg.batch_size,
        "ms_per_child_step": 1000 * step_s, "timed_child_steps": steps,
        "ms_per_controller_update": 1000 * update_s, "num_aggregate": cfg.controller.num_aggregate,
        "timed_updates": updates, "eval_s": eval_s, "eval_images": cfg.data.valid_size,
        "steps_per_epoch": steps_per_epoch, "train_steps": train_steps,
        "projected_child_s": steps_per_epoch * step_s, "projected_controller_s": train_steps * update_s,
        "projected_epoch_s": epoch_s, "epochs": cfg.epochs, "projected_search_h": epoch_s * cfg.epochs / 3600,
    }
