"""ENAS macro child networks: every op builds, skips line up across reductions, arch records round-trip."""
from __future__ import annotations

import json
import random

import pytest
import torch

from enas_ext.child import (
    FactorizedReduction,
    FixedChild,
    SharedChild,
    arch_from_dict,
    arch_to_dict,
    fixed_op,
    last_reads,
    reduction_layers,
    search_op,
)
from enas_ext.controller import Controller, ControllerConfig
from enas_ext.search import to_lists
from nascore.ops import UnknownOpError
from nascore.spaces import get_space

ORIGINAL, EXTENDED = get_space("original").ops, get_space("extended").ops
ALL_OPS = sorted(set(ORIGINAL) | set(EXTENDED))


def _full_skips(layers: int) -> list[list[int]]:
    """Every skip bit on."""
    return [[1] * k for k in range(layers)]


def _random_arch(layers: int, n_ops: int, rng: random.Random) -> tuple[list[int], list[list[int]]]:
    """A uniformly random architecture."""
    return ([rng.randrange(n_ops) for _ in range(layers)],
            [[rng.randint(0, 1) for _ in range(k)] for k in range(layers)])


def test_reduction_positions_match_reference():
    assert reduction_layers(12) == (3, 7)
    assert reduction_layers(6) == (1, 3)
    assert reduction_layers(24) == (7, 15)
    assert reduction_layers(2) == ()


@pytest.mark.parametrize("op", ALL_OPS)
def test_every_op_builds_and_keeps_shape(op):
    x = torch.randn(2, 4, 8, 8)
    assert search_op(op, 4)(x).shape == x.shape
    assert fixed_op(op, 4)(x).shape == x.shape
    net = SharedChild([op, "conv3x3"], layers=3, channels=4)
    assert net(torch.randn(2, 3, 16, 16), [0, 1, 0], _full_skips(3)).shape == (2, 10)
    space = "original" if op in ORIGINAL else "extended"
    arch = arch_to_dict(space, [get_space(space).index(op)] * 3, _full_skips(3), channels=4, layers=3)
    fixed = FixedChild(arch)  # pools included: the reference's final net cannot build them
    assert fixed(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_search_layer_sums_skips_then_bn():
    """Two layers (no reductions): layer 1 = BN(op(layer 0) + stem) when its one bit is on."""
    torch.manual_seed(0)
    net = SharedChild(ORIGINAL, layers=2, channels=4, keep_prob=1.0).eval()
    x = torch.randn(3, 3, 8, 8)
    stem = net.stem(x)
    out0 = net.cells[0][2](stem)
    out1 = net.skip_bn[0](net.cells[1][4](out0) + stem)
    want = net.fc(out1.mean((2, 3)))
    assert torch.allclose(net(x, [2, 4], [[], [1]]), want, atol=1e-6)


def test_skip_from_stem_into_last_layer_crosses_both_reductions():
    net = SharedChild(ORIGINAL, layers=6, channels=4)
    skips = [[0] * k for k in range(6)]
    skips[5][0] = 1  # the stem, reduced twice, into the last layer
    out = net(torch.randn(2, 3, 16, 16), [0, 1, 2, 3, 4, 5], skips)
    assert out.shape == (2, 10)
    assert last_reads(skips, 6)[0] == 5


@pytest.mark.parametrize("train", [False, True])
def test_reducing_only_read_outputs_equals_reducing_all(train):
    torch.manual_seed(1)
    rng = random.Random(0)
    net = SharedChild(EXTENDED, layers=6, channels=4).train(train)
    net.dropout.p = 0.0  # dropout draws would differ between the two passes
    x = torch.randn(4, 3, 16, 16)
    for _ in range(5):
        ops, skips = _random_arch(6, len(EXTENDED), rng)
        assert torch.equal(net(x, ops, skips), net(x, ops, skips, reduce_all=True))


def test_unread_outputs_are_not_reduced():
    net = SharedChild(ORIGINAL, layers=6, channels=4)
    calls = []
    for red in net.modules():
        if isinstance(red, FactorizedReduction):
            red.register_forward_hook(lambda *a: calls.append(1))
    net(torch.randn(2, 3, 16, 16), [0] * 6, [[0] * k for k in range(6)])
    assert len(calls) == 2  # only the next layer's input at each reduction
    calls.clear()
    net(torch.randn(2, 3, 16, 16), [0] * 6, [[0] * k for k in range(6)], reduce_all=True)
    assert len(calls) == 3 + 5  # stem + layers 0..1, then stem + layers 0..3


def test_fixed_child_doubles_width_and_concatenates_skips():
    skips = [[0] * k for k in range(6)]
    skips[4] = [1, 0, 1, 0]
    arch = arch_to_dict("original", [0, 1, 2, 3, 4, 5], skips, channels=6, layers=6)
    net = FixedChild(arch)
    assert net.out_channels == 24
    assert net.skip_convs[3][1].in_channels == 3 * 24  # two skips + the op output, after both doublings
    assert sorted(net.reductions[1]) == ["0", "2", "4"]  # only outputs a later layer reads
    assert FixedChild(arch, channels=8).out_channels == 32


def test_sampled_arch_round_trips_through_record():
    ctrl = Controller(ControllerConfig(num_layers=5, num_ops=len(EXTENDED), lstm_size=16))
    for ops, skips in to_lists(ctrl.sample(4, torch.Generator().manual_seed(0))):
        record = json.loads(json.dumps(arch_to_dict("extended", ops, skips, channels=4, layers=5)))
        space, ops2, skips2 = arch_from_dict(record)
        assert (space.name, ops2, skips2) == ("extended", ops, skips)
        assert FixedChild(record).op_names == [EXTENDED[i] for i in ops]


def test_arch_validation_names_the_problem():
    good = arch_to_dict("original", [0, 1, 2], _full_skips(3), channels=4, layers=3)
    with pytest.raises(UnknownOpError, match="valid: conv3x3, sep3x3"):
        arch_from_dict({**good, "ops": ["conv3x3", "conv9x9", "sep3x3"]})
    with pytest.raises(ValueError, match="expected 2 skip bits"):
        arch_from_dict({**good, "skips": [[], [1], [1]]})
    with pytest.raises(ValueError, match="3 skip rows but the network has 4 layers"):
        arch_from_dict({**good, "ops": good["ops"] + ["conv3x3"], "layers": 4})
    with pytest.raises(ValueError, match="lacks skips"):
        arch_from_dict({k: v for k, v in good.items() if k != "skips"})
    with pytest.raises(ValueError, match="unknown space"):
        arch_from_dict({**good, "space": "huge"})
    with pytest.raises(ValueError, match="op index 9 out of range"):
        arch_to_dict("original", [0, 9, 0], _full_skips(3), channels=4, layers=3)
