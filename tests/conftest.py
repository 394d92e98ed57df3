"""Shared fixtures: tiny CIFAR-10 folders in the standard layout, written per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nascore.synthetic import write_fake_cifar

torch.set_num_threads(1)  # two-core CI machine: keep per-test threading predictable


@pytest.fixture(autouse=True)
def _one_thread_again():
    """Commands invoked in-process apply --threads (default auto); the next test starts at one again."""
    yield
    torch.set_num_threads(1)


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
