"""Candidate operations by name: `conv{i}x{j}`, `sep{i}x{j}`, `avgpool3x3`, `maxpool3x3`, `identity`.

Planted-op checks also use `noise@OP` and `zero@OP` (OP any name above): an op of OP's
output shape whose output carries no information (fresh noise, or zeros)
and that has no weights, so a space in which every op but one is so replaced has a
known best op, and every method's network builder handles it unchanged. `lossy@OP` is
the graded form, for networks without a residual path (ENAS), where one noise layer would
erase the signal of every layer and leave a search no slope to climb: it passes its input
through, but loses each sample with a fixed probability (its output then is loud noise),
so the share of samples that survive falls with every lossy layer an architecture holds.

Every op maps C channels to C channels at stride 1 and keeps the spatial size ("same"
output). For even kernel sides the extra padding row/column goes on the bottom/right,
(PyTorch's ``padding="same"`` convention, done with an explicit zero pad); odd sides pad
symmetrically.
The op itself is bare: wrappers (ENAS's 1x1-conv prefix, NASIB's ReLU-op-BN) live with
the networks that use them.
"""
from __future__ import annotations

import torch
import torch.nn as nn

# The grammar lives on the torch-free floor; its names stay importable from here.
from contract.ops import (  # noqa: F401 (re-exported)
    FIXED_OPS,
    PLANTED_KINDS,
    UNINFORMATIVE,
    OpSpec,
    UnknownOpError,
    check_ops,
    parse_op,
)

LOSSY_RATE = 0.1  # probability that a lossy op loses a sample (per call, sample and op)
# Loud enough that ENAS's summed skips cannot carry a lost sample through (at std 1-3 the
# shared child learned to read the skips and a lost sample cost nothing, measured), yet
# rare enough that the child still trains: docs/planted.md, how the ENAS row got there.
LOSSY_STD = 10.0  # std of a lost sample's noise, in units of the op's (batch-normalised) input


class Identity(nn.Module):
    """x -> x (kept as a module so op lists stay uniform)."""

    def forward(self, x):
        return x


class Uninformative(nn.Module):
    """Noise (fresh per call, from torch's seeded RNG) or zeros, shaped like the input.

    The noise is standard normal per sample and channel and constant over the image: noise
    that varied per pixel would be averaged away by a global pool and cost a network little.
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        if self.kind == "zero":
            return torch.zeros_like(x)
        return torch.randn(x.shape[0], x.shape[1], 1, 1, dtype=x.dtype, device=x.device).expand_as(x)


class Lossy(nn.Module):
    """x, except that each sample is lost with probability LOSSY_RATE: its output is then loud noise."""

    def forward(self, x):
        # Noise per sample and channel, constant over the image (as Uninformative's, for the same reason).
        lost = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < LOSSY_RATE
        noise = LOSSY_STD * torch.randn(x.shape[0], x.shape[1], 1, 1, dtype=x.dtype, device=x.device)
        return torch.where(lost, noise.expand_as(x), x)


def _conv(c_in: int, c_out: int, kh: int, kw: int, groups: int = 1) -> nn.Module:
    """A stride-1 conv with same-size output; even sides pad the extra row/column bottom/right."""
    if kh % 2 == 1 and kw % 2 == 1:
        return nn.Conv2d(c_in, c_out, (kh, kw), padding=(kh // 2, kw // 2), groups=groups, bias=False)
    top, left = (kh - 1) // 2, (kw - 1) // 2
    return nn.Sequential(nn.ZeroPad2d((left, kw - 1 - left, top, kh - 1 - top)),
                         nn.Conv2d(c_in, c_out, (kh, kw), groups=groups, bias=False))


def build_op(name: str, channels: int) -> nn.Module:
    """Build the bare op `name` for `channels` channels (stride 1, same size)."""
    spec = parse_op(name)
    if spec.kind == "identity":
        return Identity()
    if spec.kind in UNINFORMATIVE:
        return Uninformative(spec.kind)
    if spec.kind == "lossy":
        return Lossy()
    if spec.kind == "avgpool":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if spec.kind == "maxpool":
        return nn.MaxPool2d(3, stride=1, padding=1)
    if spec.kind == "conv":
        return _conv(channels, channels, spec.kh, spec.kw)
    return nn.Sequential(  # depthwise i x j, then pointwise 1 x 1
        _conv(channels, channels, spec.kh, spec.kw, groups=channels),
        nn.Conv2d(channels, channels, 1, bias=False),
    )


def count_params(module: nn.Module) -> int:
    """Number of learnable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
