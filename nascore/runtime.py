"""Devices, seeds, determinism, threads and RNG state capture (for exact resume).

torch is imported inside the functions that need it: the command line checks --threads with
this module before torch loads (3-6 s), so a bad value fails at once.
"""
from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present; anything else must be a device torch knows."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
    return dev


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed python, numpy and torch; in deterministic mode also pin kernels and threads."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # Same numbers on CPU need deterministic kernels; CUDA also needs this workspace setting.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict:
    """Every RNG state a run draws from."""
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() captured."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def sync(device: torch.device) -> None:
    """Wait for queued device work (only for timing at epoch boundaries)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


THREADS_HELP = ("CPU threads for torch: a number, or auto = the cores not already busy (cores this process "
                "may use minus the 1-minute load average, at least 1), the same rule for make, the runner "
                "and commands typed by hand.")


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads() -> int:
    """Cores this process may use minus those already busy (1-minute load average), at least 1.

    On a 2-core machine (smoke search epoch, measured): idle, 2 threads beat 1 (1.6 s vs 2.2 s); with
    one other busy process, 2 threads ran 3.5-5.8 s against 1 thread's 2.2 s."""
    n = cores()
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(n, n - int(round(busy))))


def parse_threads(value: str | int | None) -> int | None:
    """'auto' or None -> None (the default rule); 1..cores -> itself; else one clear error.

    More threads than cores only slow torch down (they take turns on the same cores), so a count
    above the cores is refused rather than run many times slower."""
    if value is None or str(value).strip().lower() == "auto":
        return None
    try:
        n = int(str(value))
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"--threads {value!r}: use a positive number of threads or auto")
    if n > cores():
        raise ValueError(f"--threads {value!r}: this process may use {cores()} core(s); "
                         f"use at most {cores()} or auto")
    return n


def apply_threads(value: str | int | None) -> int:
    """Set torch's intra-op threads for this process (an explicit count, else default_threads()); returns it."""
    import torch

    n = parse_threads(value) or default_threads()
    torch.set_num_threads(n)
    return n
