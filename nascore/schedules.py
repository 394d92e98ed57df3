"""Learning-rate schedules shared by the searches and retraining (pure functions of progress)."""
from __future__ import annotations

import math


def cosine(hi: float, lo: float, t: float, total: float) -> float:
    """Cosine from hi (t = 0) to lo (t >= total)."""
    return lo + 0.5 * (hi - lo) * (1.0 + math.cos(math.pi * min(t / max(total, 1e-12), 1.0)))


def cosine_restart_lr(epoch: int, lr_max: float, lr_min: float, t0: int, tmul: int) -> float:
    """Per-epoch cosine annealing with warm restarts (SGDR), constant within an epoch."""
    start, length = 0, t0
    while epoch >= start + length:
        start, length = start + length, length * tmul
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * (epoch - start) / length))
