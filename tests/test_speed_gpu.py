"""On CUDA (skipped without it): the steps make no host syncs beyond the ones they need.

torch.cuda.set_sync_debug_mode("error") turns every blocking device-to-host wait into an error,
so a new `.item()`, `.tolist()`, blocking copy or data-dependent shape inside these steps fails
here. What remains by design: the controller's one copy of each sample (Python routes the child
with it) and NASIB's one copy per weight+alpha pair, counted in "warn" mode.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import pytest
import torch

from enas_ext.batched import EnasSpeed, RoutedChild
from enas_ext.presets import configure
from enas_ext.search import EnasSearch, to_lists
from nascore.data import forever
from nasib.presets import apply_overrides, preset
from nasib.search import NasibSearch
from nasib.timing import synthetic_splits

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")
ENAS_TINY = {"layers": 6, "channels": 8, "batch_size": 16, "controller": {"num_aggregate": 4},
             "data": {"valid_size": 64, "train_size": 64}}


@contextmanager
def no_syncs():
    """Any host sync inside raises."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _syncs(fn) -> int:
    """Host syncs fn() makes (sync debug mode 'warn', one warning each)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _enas(space: str = "extended") -> EnasSearch:
    cfg = configure("smoke", space, ENAS_TINY)
    return EnasSearch(cfg, synthetic_splits(64, 64), CUDA, seed=0, speed=EnasSpeed("on", "on"))


def test_enas_child_step_with_the_flat_update_makes_no_host_sync():
    search = _enas()
    x, y = next(iter(search.train_loader))
    ops, skips = [1] * 6, [[1] * k for k in range(6)]
    search.train_step(x, y, ops, skips)  # the first step starts the momentum
    with no_syncs():
        search.train_step(x, y, ops, skips)


def test_controller_update_and_routed_rewards_make_no_host_sync():
    search = _enas()
    stream = forever(search.reward_loader)
    batches = [next(stream) for _ in range(4)]
    sample = search.controller.sample(4, search.trainer.generator)
    archs = to_lists(sample)  # the update's one device-to-host copy, by design
    with search.judging():
        router = RoutedChild(search.child, "batch")
        router.hits(batches, archs)  # warm-up: cuDNN, the pinned pool
        with no_syncs():
            router.hits(batches, archs)
            search.trainer.update(lambda s: torch.rand(s.batch, device=CUDA))


def test_nasib_weight_and_alpha_pair_makes_one_host_sync():
    cfg = apply_overrides(preset("smoke", "narrow"), {"layers": 4, "channels": 8, "batch_size": 16,
                                                      "epochs": 1, "data": {"valid_size": 64, "train_size": 64}})
    search = NasibSearch(cfg, synthetic_splits(64, 64), CUDA, seed=0)
    (x, y), (xv, yv) = next(iter(search.train_loader)), next(iter(search.valid_loader))

    def pair() -> None:
        search._weight_step(x, y, 1.0, then_alpha=True)
        search.strategy.alpha_step(search.model, xv, yv, 1.0, search.generator)

    pair()
    assert _syncs(pair) == 1
