"""ENAS macro search speed: one whole measured epoch (child pass, controller updates, validation).

Runs the search's own code paths (`enas_ext.search.EnasSearch`, speed settings from
$NASIB_ENAS_SPEED, auto by default) on synthetic uint8 images of the scale's sizes, so no
dataset is needed. A small search of the same shapes first warms up every kernel: a child pass,
a controller update under the search's BN rule, and a validation pass in which every op runs at
every resolution (cuDNN autotuning and the allocator are process-wide, so the measured search
meets no first-use cost). Then each phase of one epoch of a full-size search is timed whole,
synced on both ends: the child's pass over the train split, the `train_steps` controller updates
(inside the BN rule, as the search runs them), and validation over the whole held-out split.
"""
from __future__ import annotations

import time

import torch

from enas_ext.presets import configure
from enas_ext.search import EnasSearch
from nascore.data import Split, Splits
from nascore.flat import FlatSGD
from nascore.runtime import resolve_device, seed_everything, sync

CIFAR_TRAIN = 50_000  # training images before the valid split is held out
MEAN, STD = (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)


def _split(n: int, gen: torch.Generator) -> Split:
    """n random 32x32 RGB uint8 images with labels 0..9."""
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return Split(x, torch.randint(0, 10, (n,), generator=gen))


def _timed(fn, device: torch.device) -> float:
    """Seconds of one call of fn(), synced on both ends."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def every_op_archs(search: EnasSearch, batches: int, shift: int) -> list:
    """`batches` architectures, arch i running op (shift * batches + i) mod n in every layer, no skips."""
    n_ops, layers = len(search.space.ops), search.cfg.layers
    return [([(shift * batches + i) % n_ops] * layers, [[0] * k for k in range(layers)]) for i in range(batches)]


def warm_up(search: EnasSearch) -> None:
    """Child pass, one controller update under the BN rule, validation with every op at every resolution."""
    search.train_epoch(search.cfg.lr_max)
    search.controller_epoch()
    batches = len(search.eval_loader)
    for shift in range(-(-len(search.space.ops) // batches)):
        search.evaluate(archs=every_op_archs(search, batches, shift))


def run(device: str, scale: str, space: str = "original", warm_steps: int | None = None) -> dict:
    """Time one whole ENAS search epoch at `scale` on `device`, phase by phase; returns the figures."""
    cfg = configure(scale, space)
    dev = resolve_device(device)
    seed_everything(0, deterministic=False)
    on_gpu = dev.type == "cuda"
    warm_steps = warm_steps or (10 if on_gpu else 2)
    n_valid = cfg.data.valid_size
    n_train = min(cfg.data.train_size or CIFAR_TRAIN, CIFAR_TRAIN - n_valid)
    gen = torch.Generator().manual_seed(0)
    one_update = configure(scale, space, {"controller": {"train_steps": 1}})  # one update warms it up
    warm_up(EnasSearch(one_update, Splits(_split(cfg.batch_size * warm_steps, gen), _split(n_valid, gen),
                                          _split(1, gen), MEAN, STD, "synthetic"), dev, seed=0))
    search = EnasSearch(cfg, Splits(_split(n_train, gen), _split(n_valid, gen), _split(1, gen), MEAN, STD,
                                    "synthetic"), dev, seed=0)
    child_s = _timed(lambda: search.train_epoch(cfg.lr_max), dev)
    controller_s = _timed(search.controller_epoch, dev)
    eval_s = _timed(search.evaluate, dev)
    steps, updates = len(search.train_loader), cfg.controller.train_steps
    epoch_s = child_s + controller_s + eval_s
    return {
        "bench": "enas_search", "scale": scale, "space": space, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if on_gpu else "cpu", "torch": torch.__version__,
        "layers": cfg.layers, "channels": cfg.channels, "batch_size": cfg.batch_size, "bn_eval": cfg.bn_eval,
        "batched_rewards": search.routed() is not None, "flat_update": isinstance(search.opt, FlatSGD),
        "ms_per_child_step": 1000 * child_s / steps, "steps_per_epoch": steps,
        "ms_per_controller_update": 1000 * controller_s / updates, "num_aggregate": cfg.controller.num_aggregate,
        "train_steps": updates, "eval_s": eval_s, "eval_images": n_valid,
        "measured_child_s": child_s, "measured_controller_s": controller_s,
        "measured_epoch_s": epoch_s, "projected_epoch_s": epoch_s,  # measured whole: the gate reads this key
        "epochs": cfg.epochs, "projected_search_h": epoch_s * cfg.epochs / 3600,
    }
