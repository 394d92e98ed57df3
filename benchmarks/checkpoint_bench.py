"""What checkpointing adds per epoch: the size and the save time of each search's full state.

Builds each searcher at a scale on the CPU (the state's size does not depend on the
device), gives every weight its momentum buffer (as after an epoch in which every op was
sampled: the largest the state gets), and times two things: `Trial.save_checkpoint` (serialise,
write, fsync, rename: the whole write) and what `nascore.loop` pays per epoch since checkpoints
are written in the background (`CheckpointWriter.save`: a copy of the state into host memory).
The write must also finish within an epoch, or the next save waits for it: `write_s` says how long.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from nascore.records import CheckpointWriter, Trial
from nascore.runtime import rng_state


def _fill_momentum(opt: torch.optim.Optimizer) -> None:
    """Give every parameter the momentum buffer SGD keeps once it has a gradient."""
    for group in opt.param_groups:
        for p in group["params"]:
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)


def _searchers(scale: str):
    """(name, searcher) for ENAS original/extended and NASIB narrow/superkernel at `scale`."""
    from enas_ext.presets import configure
    from enas_ext.search import EnasSearch
    from nasib.presets import preset as nasib_preset
    from nasib.search import NasibSearch
    from nasib.timing import synthetic_splits

    cpu = torch.device("cpu")
    splits = synthetic_splits(256, 256)
    for space in ("original", "extended"):
        s = EnasSearch(configure(scale, space), splits, cpu, seed=0)
        _fill_momentum(s.opt)
        yield f"enas-{space}", s
    for space in ("narrow", "superkernel"):
        s = NasibSearch(nasib_preset(scale, space), splits, cpu, seed=0)
        _fill_momentum(s.optimizer)
        yield f"nasib-{space}", s


def _median(times: list[float]) -> float:
    """The middle value."""
    return sorted(times)[len(times) // 2]


def _foreground(trial: Trial, state: dict, repeat: int) -> tuple[float, float]:
    """(median seconds the loop waits per checkpoint, median seconds until the write is on disk)."""
    writer, fore, whole = CheckpointWriter(trial), [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        writer.save(state)
        fore.append(time.perf_counter() - t0)
        writer.wait()
        whole.append(time.perf_counter() - t0)
    return _median(fore), _median(whole)


def run(scale: str, repeat: int = 3) -> dict:
    """Checkpoint size (MB), median blocking save seconds and the loop's per-epoch cost per searcher."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="ckpt-bench-") as tmp:
        for name, searcher in _searchers(scale):
            trial = Trial(Path(tmp) / name)
            trial.prepare()
            state = {"format": 1, "epoch": 0, "wall_s": 0.0, "searcher": searcher.state_dict(), "rng": rng_state()}
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                trial.save_checkpoint(state)
                times.append(time.perf_counter() - t0)
            size = trial.file("checkpoint.pt").stat().st_size
            fore, whole = _foreground(trial, state, repeat)
            out[name] = {"checkpoint_mb": size / 2**20, "save_s": _median(times), "loop_s": fore, "write_s": whole}
            del searcher, state
    return {"bench": "checkpoint", "scale": scale, "searchers": out}
