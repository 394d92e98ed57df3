"""NASIB's macro supernet (mixed layers on a ResNet backbone) and the derived fixed network.

Backbone, shared by both: stem (3x3 conv -> BN), L residual layers `x + F(x)`, three
factorized reductions that halve the resolution and double the channels, then
ReLU -> global average pool -> linear.

Reduction placement: after layers floor(L*i/4) for i = 1, 2, 3 (1-based), i.e. after
layers 3, 6 and 9 of 12: four equal stages of three layers at 32, 16, 8 and 4 pixels.
The paper only says the three blocks sit "between these 12 layers"; equal stages are the
evident reading and give every resolution the same number of searched decisions. ENAS
macro (two reductions, after layers 4 and 8) is a different backbone.

Each candidate op is wrapped as ReLU -> op -> BN. Why: the residual stream stays a pure
sum (pre-activation ResNet), the ReLU gives the non-linearity that pooling/identity ops
lack, and the trailing BN puts every op's output on the same scale so that summing two
ops (weight step) or weighting them by alphas (alpha step) compares ops and not their
output magnitudes. In the supernet these BNs have no affine parameters (an affine scale
would absorb the alpha weight, as DARTS also argues). They keep running statistics, but
running averages mix the outputs of many different sub-networks, so which statistics an
evaluation uses is a rule of its own (`nascore.bn`, the search's `bn_eval` setting);
training always normalises with the current batch. The derived `FixedNet` uses ordinary
affine BN with running statistics.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from nascore.ops import build_op, parse_op

NUM_CLASSES = 10
NUM_REDUCTIONS = 3


def reduction_after(layers: int) -> tuple[int, ...]:
    """1-based layer numbers followed by a reduction: floor(L*i/4), i = 1..3 (3, 6, 9 for L = 12)."""
    if layers < 4:
        raise ValueError(f"layers must be >= 4 to place {NUM_REDUCTIONS} reductions between them, "
                         f"got {layers}")
    return tuple(layers * i // (NUM_REDUCTIONS + 1) for i in range(1, NUM_REDUCTIONS + 1))


def _bn(channels: int, search: bool) -> nn.BatchNorm2d:
    """BN after an op, as the module doc explains: no affine in the supernet."""
    return nn.BatchNorm2d(channels, affine=not search)


def _backbone_bn(channels: int, search: bool) -> nn.BatchNorm2d:
    """BN of the stem and reductions: affine, with running statistics (evaluation picks a `nascore.bn` rule)."""
    return nn.BatchNorm2d(channels)


class FactorizedReduction(nn.Module):
    """ReLU, then max-pool 2x2/2 beside a 2x2/2 conv, concatenated (channels x2), then BN."""

    def __init__(self, channels: int, search: bool):
        super().__init__()
        self.pool = nn.MaxPool2d(2, stride=2)
        self.conv = nn.Conv2d(channels, channels, 2, stride=2, bias=False)
        self.bn = _backbone_bn(2 * channels, search)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(x)
        return self.bn(torch.cat([self.pool(x), self.conv(x)], dim=1))


class OpBlock(nn.Module):
    """One candidate op after the layer's shared ReLU: op -> BN (the ReLU is applied once per layer)."""

    def __init__(self, name: str, channels: int, search: bool):
        super().__init__()
        self.op = build_op(name, channels)
        self.bn = _bn(channels, search)

    def forward(self, x_relu: Tensor) -> Tensor:
        return self.bn(self.op(x_relu))


class MixedLayer(nn.Module):
    """All candidate ops of one layer; a forward runs only the ops it is given."""

    def __init__(self, op_names: tuple[str, ...], channels: int):
        super().__init__()
        self.ops = nn.ModuleList(OpBlock(name, channels, search=True) for name in op_names)

    def forward(self, x: Tensor, ops: list[int], weights: Tensor | None) -> Tensor:
        """x + sum of the listed ops (weights None) or x + sum_j weights[j] * op_j."""
        h = torch.relu(x)  # shared by the sampled ops: they all see the same input
        out = x
        for j, i in enumerate(ops):
            y = self.ops[i](h)
            out = out + (y if weights is None else weights[j] * y)
        return out


class _Backbone(nn.Module):
    """Stem, residual layers with reductions, head; subclasses supply the layers."""

    def __init__(self, channels: int, layers: int, search: bool):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels, self.num_layers = channels, layers
        self.reduce_after = reduction_after(layers)
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False),
                                  _backbone_bn(channels, search))
        self.widths: list[int] = []  # channels seen by each searched layer
        self.reductions = nn.ModuleDict()
        c = channels
        for layer in range(1, layers + 1):
            self.widths.append(c)
            if layer in self.reduce_after:
                self.reductions[str(layer)] = FactorizedReduction(c, search)
                c *= 2
        self.classifier = nn.Linear(c, NUM_CLASSES)

    def _head(self, x: Tensor) -> Tensor:
        """ReLU (the stream is pre-activation), global average pool, linear."""
        return self.classifier(torch.relu(x).mean(dim=(2, 3)))

    def _reduce(self, layer: int, x: Tensor) -> Tensor:
        """Apply the reduction that follows 1-based `layer`, if there is one."""
        key = str(layer)
        return self.reductions[key](x) if key in self.reductions else x


class Supernet(_Backbone):
    """The search network: every layer holds every candidate op of the space."""

    def __init__(self, op_names: tuple[str, ...] | list[str], channels: int = 36, layers: int = 12):
        super().__init__(channels, layers, search=True)
        self.op_names = tuple(op_names)
        if len(self.op_names) < 1:
            raise ValueError("a supernet needs at least one candidate op")
        self.layers = nn.ModuleList(MixedLayer(self.op_names, c) for c in self.widths)

    def forward(self, x: Tensor, ops: list[list[int]], weights: Tensor | None = None) -> Tensor:
        """Run only `ops[l]` in layer l: summed (weights None, weight step) or weighted by weights[l]."""
        if len(ops) != len(self.layers):
            raise ValueError(f"got op choices for {len(ops)} layers, the supernet has {len(self.layers)}")
        x = self.stem(x)
        for l, layer in enumerate(self.layers):
            x = layer(x, ops[l], None if weights is None else weights[l])
            x = self._reduce(l + 1, x)
        return self._head(x)


class FixedLayer(nn.Module):
    """x + BN(op(ReLU(x))) for one chosen op."""

    def __init__(self, name: str, channels: int):
        super().__init__()
        self.block = OpBlock(name, channels, search=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(torch.relu(x))


class FixedNet(_Backbone):
    """The derived network: one op per layer on the same backbone, for retraining from scratch."""

    def __init__(self, arch: dict, channels: int | None = None, dropout: float = 0.0):
        ops, layers = list(arch.get("ops") or []), arch.get("layers", len(arch.get("ops") or []))
        if not ops or layers != len(ops):
            raise ValueError(f"arch must list one op per layer: layers={layers!r}, ops={ops!r}")
        for name in ops:
            parse_op(name)  # one-line UnknownOpError naming the bad op
        width = channels if channels is not None else arch.get("channels")
        if not isinstance(width, int) or isinstance(width, bool):
            raise ValueError(f"arch needs an integer 'channels' (or pass channels=), got {width!r}")
        super().__init__(width, layers, search=False)
        self.op_names = tuple(ops)
        self.layers = nn.ModuleList(FixedLayer(name, c) for name, c in zip(ops, self.widths, strict=True))
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = nn.Dropout(dropout)  # before the classifier, as ENAS's final nets

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch of normalised images."""
        x = self.stem(x)
        for l, layer in enumerate(self.layers):
            x = self._reduce(l + 1, layer(x))
        return self.classifier(self.dropout(torch.relu(x).mean(dim=(2, 3))))
