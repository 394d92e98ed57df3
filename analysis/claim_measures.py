"""Per-trial measures the claims scorecard tests: values at equal epochs or wall-clock, convergence, slopes.

Every function reads one trial's epochs.jsonl rows (accuracies in percent via trial_scale) and
returns a number, or None when the trial lacks what the measure needs; none of them averages.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.records import RecordError, Trial, trial_scale
from contract.ops import kernel_shape

UNCONVENTIONAL = "non-square or even-sized kernel"


def by_seed(trials: list[Trial]) -> dict[int, Trial]:
    """seed -> trial for one cell of a comparison; two trials of one seed there are an error, not an overwrite."""
    out: dict[int, Trial] = {}
    for t in trials:
        seed = int(t.config.get("seed") or 0)
        if seed in out:
            raise RecordError(f"{out[seed].path} and {t.path}: two trials of seed {seed} in one comparison cell "
                              "(a copied or re-run trial?); keep one, or give it its own seed")
        out[seed] = t
    return out


def curve(trial: Trial, metric: str = "valid_acc") -> list[tuple[int, float, float]]:
    """(epoch, wall_s, value) rows that record the metric, accuracies in percent, in epoch order."""
    scale = trial_scale(trial) if metric.endswith("_acc") else 1.0
    rows = [(int(r["epoch"]), float(r.get("wall_s") or math.nan), float(r[metric]) * scale)
            for r in trial.epochs if r.get(metric) is not None]
    return sorted(rows)


def at_epoch(trial: Trial, epoch: int, metric: str = "valid_acc") -> float | None:
    """The metric at one epoch (0-based), or None when the trial did not reach it."""
    for e, _, value in curve(trial, metric):
        if e == epoch:
            return value
    return None


def at_time(trial: Trial, seconds: float, metric: str = "valid_acc") -> float | None:
    """The metric of the last epoch finished by `seconds` of wall-clock, or None before the first."""
    done = [value for _, wall, value in curve(trial, metric) if wall <= seconds]
    return done[-1] if done else None


def last_epoch(trial: Trial) -> int:
    """The last epoch index the trial recorded (-1 when none)."""
    return max((int(r["epoch"]) for r in trial.epochs), default=-1)


def last_wall(trial: Trial) -> float:
    """Wall-clock seconds at the trial's last recorded epoch (NaN when not recorded)."""
    rows = curve(trial)
    return rows[-1][1] if rows else math.nan


def smoothed(values: list[float], window: int = 3) -> list[float]:
    """Trailing running mean: one noisy validation epoch should not decide a convergence measure."""
    return [float(np.mean(values[max(0, i - window + 1): i + 1])) for i in range(len(values))]


def to_converge(trial: Trial, share: float = 0.9) -> tuple[float, float] | None:
    """(epochs, seconds) until the smoothed accuracy first reaches `share` of its best; None without epochs."""
    rows = curve(trial)
    if not rows:
        return None
    smooth = smoothed([v for _, _, v in rows])
    target = share * max(smooth)
    for (epoch, wall, _), value in zip(rows, smooth, strict=True):
        if value >= target:
            return float(epoch + 1), wall
    return None  # unreachable: the best value reaches its own share


def share_at_half(trial: Trial) -> float | None:
    """Share of the final smoothed accuracy already reached at half the epochs (1 = flat after half)."""
    values = smoothed([v for _, _, v in curve(trial)])
    if len(values) < 4 or values[-1] <= 0:
        return None
    return values[len(values) // 2 - 1] / values[-1]


def slope_drop(trial: Trial) -> float | None:
    """Slope of accuracy per epoch over the first half minus over the second half (points per epoch)."""
    rows = curve(trial)
    if len(rows) < 6:
        return None
    half = len(rows) // 2
    first, second = rows[:half], rows[half:]
    return _slope(first) - _slope(second)


def _slope(rows: list[tuple[int, float, float]]) -> float:
    """Least-squares slope of value against epoch."""
    x = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[2] for r in rows], dtype=float)
    return float(np.polyfit(x, y, 1)[0])


def entropy_drop(trial: Trial) -> float | None:
    """P2 entropy (normalised, 0-1) at the first recorded epoch minus at the last; None when not recorded."""
    rows = curve(trial, "p2_entropy")
    if len(rows) < 2:
        return None
    return rows[0][2] - rows[-1][2]


def unconventional(op: str) -> bool:
    """A kernel that is not square or has an even side (the paper's 'unconventional filters')."""
    shape = kernel_shape(op)
    return shape is not None and (shape[0] != shape[1] or shape[0] % 2 == 0 or shape[1] % 2 == 0)
