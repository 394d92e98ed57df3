"""Shared fixtures: tiny CIFAR-10 folders in the standard layout, written per test session."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # two-core CI machine: keep per-test threading predictable


def write_fake_cifar(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write a learnable fake CIFAR-10 (class-coloured blobs + noise) in the standard layout."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def make(n):
        y = rng.integers(0, 10, n)
        base = rng.integers(0, 255, (10, 3, 1, 1))
        x = base[y] + rng.normal(0, 40, (n, 3, 32, 32))
        return np.clip(x, 0, 255).astype(np.uint8).reshape(n, -1), y.tolist()

    xs, ys = make(n_train)
    for b, chunk in enumerate(np.array_split(np.arange(n_train), 5)):
        with open(folder / f"data_batch_{b + 1}", "wb") as f:
            pickle.dump({b"data": xs[chunk], b"labels": [ys[i] for i in chunk]}, f)
    xt, yt = make(n_test)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": xt, b"labels": yt}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)]}, f)
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Root of a 600/200-image fake CIFAR-10."""
    return write_fake_cifar(tmp_path_factory.mktemp("cifar"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Root of the real CIFAR-10 copy named by $NASIB_DATA; skips when absent."""
    root = os.environ.get("NASIB_DATA")
    if not root or not (Path(root) / "cifar-10-batches-py" / "data_batch_1").is_file():
        pytest.skip("real CIFAR-10 not available (set NASIB_DATA)")
    return Path(root)


def pytest_collection_modifyitems(config, items):
    """Skip `gpu` tests without CUDA."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
