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
from nascore.ops import LOSSY_RATE, LOSSY_STD, UnknownOpError, build_op, count_params, parse_op
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


def test_lossy_op_passes_most_samples_and_loses_the_rest_to_loud_flat_noise():
    """`lossy@OP` (the ENAS case's harmful op): kept samples pass unchanged, lost ones become flat noise."""
    torch.manual_seed(0)
    x = torch.randn(4000, 3, 4, 4)
    op = build_op("lossy@conv5x1", 3)
    y = op(x)
    lost = (y != x).flatten(1).any(1)
    assert abs(lost.float().mean().item() - LOSSY_RATE) < 0.02  # a lost sample costs the search
    assert torch.equal(y[~lost], x[~lost])  # a kept sample is untouched: the op is otherwise useless
    flat = y[lost]
    assert torch.equal(flat, flat[:, :, :1, :1].expand_as(flat))  # constant over the image
    assert abs(flat[:, :, 0, 0].std().item() - LOSSY_STD) < 0.5  # loud: ENAS's summed skips cannot carry it
    assert not torch.equal(op(x), y)  # fresh losses each call
    assert count_params(op) == 0 and not parse_op("lossy@sep3x3").has_weights
    space = planted_space(get_space("extended"), "conv1x5", "lossy")
    assert [o for o in space.ops if "@" not in o] == ["conv1x5"] and "lossy@conv3x3" in space.ops
    with pytest.raises(UnknownOpError, match="takes a plain op"):
        parse_op("lossy@noise@conv3x3")


def test_each_lossy_layer_costs_a_share_of_the_samples():
    """The ENAS check's graded reward: samples surviving k lossy layers fall as (1 - rate)^k."""
    torch.manual_seed(1)
    x = torch.randn(20000, 2, 1, 1)
    op = build_op("lossy@conv3x3", 2)
    for k, want in ((1, 1 - LOSSY_RATE), (3, (1 - LOSSY_RATE) ** 3)):
        y = x
        for _ in range(k):
            y = op(y)
        assert abs((y == x).all(1).flatten().float().mean().item() - want) < 0.02
