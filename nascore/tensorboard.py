"""An optional live view: each finished epoch's numbers as TensorBoard scalars under <trial>/tb/.

Off unless asked for (`--tensorboard` on any search or retraining, or NASIB_TENSORBOARD=1 for
every trial a process runs). Whatever numbers an epoch line of epochs.jsonl holds (losses,
accuracies, p, P2 entropy, controller entropy, budget left) become scalars at step = epoch,
so the live view and the records can never disagree. Watch with `tensorboard --logdir DIR`.
"""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

ENV = "NASIB_TENSORBOARD"  # "1": every trial this process (and its children) runs writes scalars
TB_DIR = "tb"  # inside the trial folder, beside the records
MISSING = ("--tensorboard needs the tensorboard package, which is not installed: pip install tensorboard "
           "(or make install EXTRAS=dev,tb)")


def wanted() -> bool:
    """Whether scalars were asked for."""
    return os.environ.get(ENV, "") not in ("", "0")


def require() -> None:
    """Ask for scalars in this process; a one-line ValueError when tensorboard is not installed."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ValueError(MISSING)
    os.environ[ENV] = "1"


def scalars(rec: dict) -> dict[str, float]:
    """The numbers of one epoch line worth drawing (finite ints and floats, not the epoch index)."""
    return {k: float(v) for k, v in rec.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class EpochScalars:
    """A SummaryWriter on <trial>/tb/ that adds one step per finished epoch."""

    def __init__(self, trial_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValueError(MISSING) from None
        self.writer = SummaryWriter(log_dir=str(Path(trial_dir) / TB_DIR))

    def add(self, rec: dict) -> None:
        """Every number of one epoch line, at step = its epoch; flushed so a live view sees it now."""
        for key, value in scalars(rec).items():
            self.writer.add_scalar(key, value, global_step=int(rec["epoch"]))
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def open_scalars(trial_dir: Path | None) -> EpochScalars | None:
    """The epoch writer for a trial when scalars were asked for, else None."""
    return EpochScalars(trial_dir) if trial_dir is not None and wanted() else None
