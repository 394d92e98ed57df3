"""ENAS's controller must learn: a planted reward through its public trainer, failing if the update is flipped.

The reward of an architecture is the share of its layers that use the planted op (the
reward a child with one useful op per layer would give, without the child), so REINFORCE
must move the controller's probability onto that op within a few updates; an update
whose sign is flipped (ascending the loss) moves it away, a zeroed one leaves it.
"""
from __future__ import annotations

import pytest
import torch

from enas_ext.controller import Controller, ControllerConfig, ControllerTrainer

LAYERS, OPS = 4, 6


def _planted_share(controller: Controller, planted: int) -> float:
    """Share of sampled layers choosing the planted op (400 fixed-seed architectures)."""
    with torch.no_grad():
        ops = controller.sample(400, torch.Generator().manual_seed(123)).ops
    return (ops == planted).float().mean().item()


@pytest.mark.parametrize("planted", [0, 4])
def test_controller_moves_probability_onto_the_planted_op(planted):
    torch.manual_seed(0)
    # A small (TF-convention) Adam epsilon: the default 1e-3 damps the first steps of so small a test.
    config = ControllerConfig(num_layers=LAYERS, num_ops=OPS, lstm_size=16, lr=5e-3, baseline_decay=0.9,
                              adam_eps=1e-6, num_aggregate=10)
    controller = Controller(config)
    trainer = ControllerTrainer(controller, torch.Generator().manual_seed(1))
    before = _planted_share(controller, planted)
    for _ in range(100):
        trainer.update(lambda sample: (sample.ops == planted).float().mean(dim=1))
    after = _planted_share(controller, planted)
    assert after > before + 0.15, (before, after)
