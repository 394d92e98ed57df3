"""A tiny deterministic searcher for driving nascore.loop in fault tests (runs as a script too).

    python -m tests.faults.toy OUT EPOCHS [--nan-at E] [--sleep S]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from nascore.loop import run_trial
from nascore.records import Trial
from nascore.runtime import seed_everything


class ToySearcher:
    """Linear regression on random data; every epoch draws from the global RNG."""

    def __init__(self, epochs: int, nan_at: int = -1, sleep: float = 0.0):
        self.device = torch.device("cpu")
        self.epochs, self.nan_at, self.sleep = epochs, nan_at, sleep
        self.w = torch.zeros(4, requires_grad=True)
        self.opt = torch.optim.SGD([self.w], lr=0.1, momentum=0.9)

    def state_dict(self) -> dict:
        return {"w": self.w.detach().clone(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.w.copy_(state["w"])
        self.opt.load_state_dict(state["opt"])

    def done(self, epoch: int) -> bool:
        return epoch >= self.epochs

    def planned_epochs(self) -> int:
        return self.epochs

    def run_epoch(self, epoch: int) -> dict:
        x = torch.randn(64, 4)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(64)
        for _ in range(5):
            loss = ((x @ self.w - y) ** 2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        time.sleep(self.sleep)
        val = float("nan") if epoch == self.nan_at else loss.item()
        return {"train_loss": val, "train_acc": 0.0, "valid_acc": -val, "lr": 0.1}

    def finish(self, trial: Trial, epochs: list[dict]) -> dict:
        trial.write_json("arch.json", {"w": self.w.tolist()})
        return {"final_valid_acc": epochs[-1]["valid_acc"]}


def run(out: Path, epochs: int, nan_at: int = -1, sleep: float = 0.0) -> dict:
    """Seed, build the toy searcher and run (or resume) the trial."""
    seed_everything(0, deterministic=True)
    meta = {"trial_id": out.name, "family": "toy", "strategy": None, "space": None, "seed": 0, "config": {}}
    return run_trial(Trial(out), ToySearcher(epochs, nan_at, sleep), meta)


if __name__ == "__main__":
    args = sys.argv[1:]
    opts = dict(zip(args[2::2], args[3::2], strict=False))
    run(Path(args[0]), int(args[1]), int(opts.get("--nan-at", -1)), float(opts.get("--sleep", 0)))
