"""What a timing run needs besides the search itself: batch counts, the projected epoch, stand-in images.

Shared by the search's own timing run (`nasib.search`), `nasib plan` and the benchmarks, which
time real steps on random images when no data set is at hand.
"""
from __future__ import annotations

import torch

from nascore.data import Split, Splits
from nasib.presets import NasibSearchConfig

CIFAR_TRAIN = 50_000  # CIFAR-10 training images (train + held-out splits)


def batch_counts(n_train: int, n_valid: int, cfg: NasibSearchConfig) -> dict[str, int]:
    """Weight steps, alpha-step batches and evaluation batches of one epoch (as the loaders make them)."""
    return {"train": n_train // min(cfg.batch_size, n_train),
            "valid": n_valid // min(cfg.batch_size, n_valid),
            "eval": -(-n_valid // cfg.eval_batch_size)}


def projected_epoch(work_s: float, snapshot_s: float, write_s: float) -> float:
    """Seconds of an epoch whose checkpoint is snapshotted, then written while the next epoch runs.

    The loop pays the snapshot, and waits for the previous write only for what outlasts an epoch's work."""
    return work_s + snapshot_s + max(0.0, write_s - work_s)


def synthetic_splits(n_train: int, n_valid: int, seed: int = 0) -> Splits:
    """Random uint8 images and labels (for timing runs that need no dataset)."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (n,), generator=g))

    return Splits(split(n_train), split(n_valid), split(1), (125.0,) * 3, (63.0,) * 3, "synthetic")
