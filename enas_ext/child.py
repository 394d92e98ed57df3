"""ENAS macro child networks: the shared-weight search child and the fixed (final) child.

Both follow the official macro search (docs/enas-release.md). Layer k reads the
previous output; its k skip bits pick among the stored outputs [stem, layer 0, ..., layer
k-2] (the immediate predecessor is always the input, never a choice). Reductions follow
layers `L//3 - 1` and `2*(L//3) - 1`; after each, every stored output that is still read
goes through its own factorized reduction so skips line up spatially.

Search child: the op's output plus the chosen skips, summed, then BN; width constant. Its
branch mode says which op a layer runs during search: `intended` runs the sampled op;
`as-released` runs one op (the release's last-built branch) in every layer whatever was
sampled, as the release's search graph does (docs/enas-release.md).
Fixed child: the chosen skips concatenated with the op output, then ReLU -> 1x1 conv -> BN;
width doubles at the reductions, as the reference's final net does.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from contract.names import ENAS_BRANCH_MODES
from nascore.ops import build_op, check_ops, parse_op
from nascore.spaces import Space, SpaceLike, resolve_space

BN_MOMENTUM = 0.1  # PyTorch's convention for TF's decay 0.9
BN_EPS = 1e-5
# The release's search graph normalises the k x k conv's output with its masked BN, whose
# epsilon is 1e-3; every other BN (and the fixed net's) uses 1e-5.
BN_EPS_SEARCH_OP = 1e-3
BRANCH_MODES = ENAS_BRANCH_MODES


def reduction_layers(layers: int) -> tuple[int, ...]:
    """0-based layers followed by a reduction: pd-1 and 2pd-1 with pd = layers // 3."""
    pd = layers // 3
    return () if pd == 0 else (pd - 1, 2 * pd - 1)


def check_arch(ops: Sequence[int], skips: Sequence[Sequence[int]], layers: int, num_ops: int) -> None:
    """Fail with one line unless ops has `layers` indices < num_ops and skips[k] has k bits."""
    if len(ops) != layers:
        raise ValueError(f"architecture has {len(ops)} ops but the network has {layers} layers")
    if len(skips) != layers:
        raise ValueError(f"architecture has {len(skips)} skip rows but the network has {layers} layers")
    for k, (op, row) in enumerate(zip(ops, skips, strict=True)):
        if not 0 <= int(op) < num_ops:
            raise ValueError(f"layer {k}: op index {op} out of range 0..{num_ops - 1}")
        if len(row) != k:
            raise ValueError(f"layer {k}: expected {k} skip bits (stem and layers 0..{k - 2}), "
                             f"got {len(row)}")
        if any(int(b) not in (0, 1) for b in row):
            raise ValueError(f"layer {k}: skip bits must be 0 or 1, got {list(row)}")


def last_reads(skips: Sequence[Sequence[int]], layers: int) -> list[int]:
    """For each stored output j (0 = stem, j = layer j-1), the last layer that reads it."""
    last = list(range(layers + 1))  # layer j reads stored output j as its input; the head reads L
    for k, row in enumerate(skips):
        for j, bit in enumerate(row):
            if bit:
                last[j] = max(last[j], k)
    return last


def _bn(channels: int, eps: float = BN_EPS) -> nn.BatchNorm2d:
    """BatchNorm with the reference's decay and epsilon."""
    return nn.BatchNorm2d(channels, eps=eps, momentum=BN_MOMENTUM)


def _conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free 1x1 convolution."""
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class FactorizedReduction(nn.Module):
    """Halve the resolution without dropping pixels: two offset 1x1 stride-2 paths, concatenated, BN."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"factorized reduction needs an even channel count, got {c_out}")
        self.path1 = _conv1x1(c_in, c_out // 2, stride=2)
        self.path2 = _conv1x1(c_in, c_out // 2, stride=2)
        self.bn = _bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A 1x1 conv at stride 2 equals the reference's 1x1 avg-pool at stride 2 then a 1x1 conv.
        # Path 2 sees the image shifted by one pixel: crop top/left, zero-pad bottom/right.
        shifted = F.pad(x, (-1, 1, -1, 1))
        return self.bn(torch.cat([self.path1(x), self.path2(shifted)], 1))


def search_op(name: str, channels: int) -> nn.Sequential:
    """Search-mode op: 1x1 conv -> BN -> ReLU, then the op (-> BN -> ReLU when it has weights)."""
    parts: list[nn.Module] = [_conv1x1(channels, channels), _bn(channels), nn.ReLU(inplace=True),
                              build_op(name, channels)]
    if parse_op(name).has_weights:
        parts += [_bn(channels, BN_EPS_SEARCH_OP), nn.ReLU(inplace=True)]
    return nn.Sequential(*parts)


def fixed_op(name: str, channels: int) -> nn.Sequential:
    """Fixed-mode op, pre-activation as the reference's final net: ReLU -> 1x1 -> BN, then ReLU -> op -> BN.

    Pools (never built by the reference's final net) follow the 1x1 block directly.
    """
    parts: list[nn.Module] = [nn.ReLU(), _conv1x1(channels, channels), _bn(channels)]
    if parse_op(name).has_weights:
        parts += [nn.ReLU(inplace=True), build_op(name, channels), _bn(channels)]
    else:
        parts.append(build_op(name, channels))
    return nn.Sequential(*parts)


def release_fan_in(m: nn.Conv2d | nn.Linear) -> int:
    """Fan-in as TensorFlow counts it for the release's weights: k*k*C_in, also for depthwise kernels."""
    if isinstance(m, nn.Linear):
        return m.in_features
    # TF stores a depthwise kernel as [k, k, C, 1] and counts all C input channels.
    return m.weight.shape[1] * m.groups * m.weight.shape[2] * m.weight.shape[3]


def init_weights(net: nn.Module) -> None:
    """The release's He-normal: truncated at 2 std, std sqrt(2 / fan_in) with TF's fan-in."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            std = (2.0 / release_fan_in(m)) ** 0.5
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)


def _stem(channels: int) -> nn.Sequential:
    """3x3 conv -> BN on the RGB input."""
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), _bn(channels))


def released_index(op_names: Sequence[str], branch_mode: str, released_op: str | None) -> int | None:
    """The op every layer runs in `as-released` mode (default: the last op); None in `intended` mode."""
    if branch_mode not in BRANCH_MODES:
        raise ValueError(f"unknown branch mode {branch_mode!r}; valid: {', '.join(BRANCH_MODES)}")
    if released_op is not None:
        check_ops([released_op], tuple(op_names))
    if branch_mode == "intended":
        return None
    return len(op_names) - 1 if released_op is None else list(op_names).index(released_op)


class SharedChild(nn.Module):
    """ENAS macro search child: every op of the space in every layer, weights shared by all architectures."""

    def __init__(self, op_names: Sequence[str], layers: int = 12, channels: int = 36, keep_prob: float = 0.9,
                 num_classes: int = 10, branch_mode: str = "intended", released_op: str | None = None):
        super().__init__()
        self.op_names, self.num_layers, self.channels = tuple(op_names), layers, channels
        self.run_op = released_index(self.op_names, branch_mode, released_op)
        self.reduce_at = reduction_layers(layers)
        self.stem = _stem(channels)
        self.cells = nn.ModuleList(
            nn.ModuleList(search_op(n, channels) for n in self.op_names) for _ in range(layers))
        self.skip_bn = nn.ModuleList(_bn(channels) for _ in range(1, layers))  # layer k uses [k - 1]
        # One reduction per stored output per reduction point (stem + layers 0..p at layer p).
        self.reductions = nn.ModuleList(
            nn.ModuleList(FactorizedReduction(channels, channels) for _ in range(p + 2))
            for p in self.reduce_at)
        self.dropout = nn.Dropout(1.0 - keep_prob)
        self.fc = nn.Linear(channels, num_classes, bias=False)
        init_weights(self)

    def forward(self, x: torch.Tensor, ops: list[int], skips: list[list[int]],
                reduce_all: bool = False) -> torch.Tensor:
        """Logits of architecture (ops, skips); `reduce_all` also reduces outputs no later layer reads."""
        check_arch(ops, skips, self.num_layers, len(self.op_names))
        last = last_reads(skips, self.num_layers)
        stored: list[torch.Tensor | None] = [self.stem(x)]
        for k in range(self.num_layers):
            out = self.cells[k][ops[k] if self.run_op is None else self.run_op](stored[-1])
            if k > 0:
                for j, bit in enumerate(skips[k]):
                    if bit:
                        out = out + stored[j]
                out = self.skip_bn[k - 1](out)
            stored.append(out)
            if k in self.reduce_at:
                reds = self.reductions[self.reduce_at.index(k)]
                # Outputs nobody reads after this point cannot change the logits: skip their reduction.
                stored = [red(s) if s is not None and (reduce_all or last[j] > k) else None
                          for j, (s, red) in enumerate(zip(stored, reds, strict=True))]
        h = stored[-1].mean((2, 3))
        return self.fc(self.dropout(h))


class FixedChild(nn.Module):
    """The final network of one ENAS architecture: only its ops, concatenated skips, doubling width."""

    def __init__(self, arch: dict, channels: int | None = None, dropout: float = 0.0, num_classes: int = 10):
        super().__init__()
        space, ops, skips = arch_from_dict(arch)
        c = int(channels if channels is not None else arch["channels"])
        if c < 1:
            raise ValueError(f"channels must be positive, got {c}")
        self.arch, self.op_names = arch, [space.ops[i] for i in ops]
        self.num_layers, self.skips = len(ops), [list(map(int, r)) for r in skips]
        self.reduce_at = reduction_layers(self.num_layers)
        last = last_reads(self.skips, self.num_layers)
        self.stem = _stem(c)
        self.cells, self.skip_convs, self.reductions = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for k, name in enumerate(self.op_names):
            self.cells.append(fixed_op(name, c))
            if k > 0:
                n_in = (sum(self.skips[k]) + 1) * c
                self.skip_convs.append(nn.Sequential(nn.ReLU(), _conv1x1(n_in, c), _bn(c)))
            if k in self.reduce_at:
                # Only outputs read later get a reduction: the others could never affect the logits.
                self.reductions.append(nn.ModuleDict(
                    {str(j): FactorizedReduction(c, 2 * c) for j in range(k + 2) if last[j] > k}))
                c *= 2
        self.out_channels = c
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes, bias=False)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        stored: list[torch.Tensor | None] = [self.stem(x)]
        for k in range(self.num_layers):
            out = self.cells[k](stored[-1])
            if k > 0:
                chosen = [stored[j] for j, bit in enumerate(self.skips[k]) if bit]
                out = self.skip_convs[k - 1](torch.cat(chosen + [out], 1))
            stored.append(out)
            if k in self.reduce_at:
                reds = self.reductions[self.reduce_at.index(k)]
                stored = [reds[str(j)](s) if str(j) in reds else None for j, s in enumerate(stored)]
        h = stored[-1].mean((2, 3))
        return self.fc(self.dropout(h))


def arch_to_dict(space: SpaceLike, ops: Sequence[int], skips: Sequence[Sequence[int]], channels: int,
                 layers: int) -> dict:
    """The architecture record (records contract) of op indices and skip bits in `space`.

    The space's record leads (its name, and m/K, extra ops or a planted op where it has them),
    so retraining rebuilds the same space; a named space with default parameters writes its name only.
    """
    sp = resolve_space(space)
    check_arch(ops, skips, layers, len(sp.ops))
    return {**sp.to_record(), "ops": [sp.ops[int(i)] for i in ops],
            "skips": [[int(b) for b in row] for row in skips], "channels": int(channels),
            "layers": int(layers)}


def arch_from_dict(arch: dict) -> tuple[Space, list[int], list[list[int]]]:
    """Validate an architecture record; returns (space, op indices, skip bits)."""
    if not isinstance(arch, dict):
        raise ValueError(f"architecture must be a mapping, got {type(arch).__name__}")
    missing = [k for k in ("space", "ops", "skips", "layers", "channels") if k not in arch]
    if missing:
        raise ValueError(f"architecture lacks {', '.join(missing)} (an ENAS arch.json needs space, ops, "
                         f"skips, layers, channels)")
    sp = resolve_space(arch)  # the record's space keys; a name alone is the default space
    names, skips = list(arch["ops"]), arch["skips"]
    check_ops(names, sp.ops)
    if not isinstance(skips, list) or not all(isinstance(r, list) for r in skips):
        raise ValueError("architecture skips must be a list of lists of 0/1 bits")
    ops = [sp.index(n) for n in names]
    check_arch(ops, skips, int(arch["layers"]), len(sp.ops))
    return sp, ops, [[int(b) for b in row] for row in skips]
