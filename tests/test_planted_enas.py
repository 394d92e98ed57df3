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
from nascore.ops import UnknownOpError, build_op, count_params, parse_op
from nascore.spaces import get_space, planted_space

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


def test_skip_op_passes_its_input_through_and_learns_nothing():
    """`skip@OP` (the ENAS case's useless op): identity output, no weights, OP's name kept."""
    x = torch.randn(2, 4, 8, 8)
    op = build_op("skip@conv5x1", 4)
    assert torch.equal(op(x), x) and count_params(op) == 0 and not parse_op("skip@sep3x3").has_weights
    space = planted_space(get_space("extended"), "conv1x5", "skip")
    assert [o for o in space.ops if "@" not in o] == ["conv1x5"] and "skip@conv3x3" in space.ops
    with pytest.raises(UnknownOpError, match="takes a plain op"):
        parse_op("skip@noise@conv3x3")
