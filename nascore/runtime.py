"""Devices, seeds, determinism, threads and RNG state capture (for exact resume).

torch is imported inside the functions that need it. The thread rule and its parser are
`contract.threads` (torch-free, shared with the runner); this module applies the count to torch.
"""
from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

import numpy as np

from contract.threads import default_threads, parse_threads

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


def apply_threads(value: str | int | None) -> int:
    """Set torch's intra-op threads for this process (an explicit count, else default_threads()); returns it."""
    import torch

    n = parse_threads(value) or default_threads()
    torch.set_num_threads(n)
    return n
