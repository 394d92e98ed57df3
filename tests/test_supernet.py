"""The NASIB supernet and the derived fixed network."""
from __future__ import annotations

import pytest
import torch

from nascore.ops import UnknownOpError, count_params
from nascore.spaces import get_space
from nasib.supernet import FixedNet, OpBlock, Supernet, reduction_after

NARROW = get_space("narrow").ops
SUPER = get_space("superkernel").ops


def _calls(net: Supernet) -> dict[tuple[int, int], int]:
    """Forward-hook counters on every (layer, op) block of a supernet."""
    counts: dict[tuple[int, int], int] = {}
    for l, layer in enumerate(net.layers):
        for i, block in enumerate(layer.ops):
            def hook(_m, _in, _out, key=(l, i)):
                counts[key] = counts.get(key, 0) + 1
            block.register_forward_hook(hook)
    return counts


def test_only_the_sampled_ops_run():
    torch.manual_seed(0)
    net = Supernet(SUPER, channels=4, layers=4)
    counts = _calls(net)
    ops = [[3, 17], [80, 0], [40, 41], [5, 6]]
    net(torch.randn(2, 3, 32, 32), ops).sum().backward()
    assert counts == {(l, i): 1 for l, pair in enumerate(ops) for i in pair}
    for l, layer in enumerate(net.layers):
        for i, block in enumerate(layer.ops):
            grads = [p.grad for p in block.parameters()]
            if i in ops[l]:
                assert all(g is not None for g in grads)
            else:
                assert all(g is None for g in grads), "an unsampled op got a gradient"


def test_reductions_halve_resolution_and_double_channels():
    assert reduction_after(12) == (3, 6, 9)
    assert reduction_after(6) == (1, 3, 4)
    with pytest.raises(ValueError, match="layers must be >= 4"):
        reduction_after(3)
    net = Supernet(NARROW, channels=4, layers=12)
    shapes = []
    for block in net.reductions.values():
        block.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
    out = net(torch.randn(2, 3, 32, 32), [[0, 1]] * 12)
    assert shapes == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]
    assert out.shape == (2, 10)
    assert net.widths == [4] * 3 + [8] * 3 + [16] * 3 + [32] * 3


def test_weighted_forward_matches_the_sum_and_single_ops():
    torch.manual_seed(0)
    net = Supernet(NARROW, channels=4, layers=4)
    x = torch.randn(3, 3, 32, 32)
    pair, single = [[0, 2]] * 4, [[0]] * 4
    ones = torch.ones(4, 2)
    torch.testing.assert_close(net(x, pair, ones), net(x, pair))
    only_first = torch.tensor([[1.0, 0.0]] * 4)
    torch.testing.assert_close(net(x, pair, only_first), net(x, single))
    w = torch.full((4, 2), 0.5, requires_grad=True)
    net(x, pair, w).sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


def test_supernet_rejects_a_wrong_number_of_layers():
    net = Supernet(NARROW, channels=4, layers=4)
    with pytest.raises(ValueError, match="3 layers, the supernet has 4"):
        net(torch.randn(1, 3, 32, 32), [[0, 1]] * 3)


def test_supernet_op_bn_has_no_affine_but_keeps_running_stats_for_the_bn_rules():
    block = Supernet(NARROW, channels=4, layers=4).layers[0].ops[0]
    assert isinstance(block, OpBlock)
    assert block.bn.running_mean is not None and block.bn.weight is None
    fixed = FixedNet({"ops": ["conv3x3"] * 4, "channels": 4, "layers": 4})
    assert fixed.layers[0].block.bn.running_mean is not None and fixed.layers[0].block.bn.weight is not None


SUPER_SOME = ["conv1x1", "conv2x2", "conv4x2", "sep9x9", "sep3x7", "conv9x1"]


@pytest.mark.parametrize("op", list(NARROW) + SUPER_SOME)
def test_fixed_net_builds_for_every_op(op):
    space = "narrow" if op in NARROW else "superkernel"
    net = FixedNet({"space": space, "ops": [op] * 4, "channels": 4, "layers": 4}, dropout=0.1)
    assert count_params(net) > 0
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_fixed_net_width_override_and_bad_archs():
    arch = {"ops": ["conv3x3", "sep5x5", "identity", "maxpool3x3"], "channels": 4, "layers": 4}
    assert count_params(FixedNet(arch, channels=8)) > count_params(FixedNet(arch))
    with pytest.raises(ValueError, match="one op per layer"):
        FixedNet({**arch, "layers": 5})
    with pytest.raises(UnknownOpError, match="bogus"):
        FixedNet({**arch, "ops": ["bogus"] * 4})
    with pytest.raises(ValueError, match="channels"):
        FixedNet({"ops": ["conv3x3"] * 4, "layers": 4})
