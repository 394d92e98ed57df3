"""The op registry and the spaces built from it."""
from __future__ import annotations

import pytest
import torch

from nascore.ops import UnknownOpError, build_op, count_params, parse_op
from nascore.spaces import EXTENDED_EXTRA, ORIGINAL, UnknownSpaceError, get_space, superkernel_ops

ALL = sorted(set(get_space("extended").ops) | set(get_space("narrow").ops) | set(get_space("superkernel").ops))


@pytest.mark.parametrize("name", ALL)
def test_every_op_keeps_shape(name):
    y = build_op(name, 4)(torch.randn(2, 4, 7, 8))
    assert y.shape == (2, 4, 7, 8)


def test_even_kernel_pads_bottom_right():
    op = build_op("conv2x2", 1)
    conv = op[1]
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 3, 3] = 1.0  # bottom-right pixel: only the window anchored on it sees the padding
    y = op(x)
    assert y[0, 0, 3, 3] == 1 and y[0, 0, 2, 2] == 1 and y[0, 0, 2, 3] == 1


def test_params_dense_vs_separable():
    assert count_params(build_op("conv3x5", 8)) == 8 * 8 * 15
    assert count_params(build_op("sep3x5", 8)) == 8 * 15 + 8 * 8
    assert count_params(build_op("maxpool3x3", 8)) == 0


@pytest.mark.parametrize("bad", ["conv0x3", "conv3", "pool", "sep3x3x3", "", "identity2"])
def test_unknown_op_lists_forms(bad):
    with pytest.raises(UnknownOpError, match="valid"):
        parse_op(bad)


def test_spaces_match_design():
    assert get_space("original").ops == ORIGINAL and len(ORIGINAL) == 6
    ext = get_space("extended")
    assert len(ext) == 18 and ext.ops[6:] == EXTENDED_EXTRA
    assert len(get_space("narrow")) == 7
    sk = get_space("superkernel")
    assert len(sk) == 81 and "conv3x3" in sk.ops and "sep3x4" in sk.ops and "conv1x9" in sk.ops
    assert "sep9x9" in sk.ops and "conv9x9" not in sk.ops


def test_superkernel_options():
    assert len(superkernel_ops(3, 4)) == 9 and "sep2x3" in superkernel_ops(3, 4)
    with pytest.raises(ValueError, match="m must be"):
        superkernel_ops(0, 9)
    with pytest.raises(ValueError, match="K must be"):
        superkernel_ops(3, 0)


def test_unknown_space_lists_names():
    with pytest.raises(UnknownSpaceError, match="original, extended, narrow, superkernel"):
        get_space("huge")
