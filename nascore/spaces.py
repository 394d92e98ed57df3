"""Search spaces as data: named, ordered op lists.

- ``original``: ENAS's 6 macro ops, in ENAS's order.
- ``extended``: those 6, then 12 regular convolutions with non-square and even kernels
  (the paper names no list; this one is the kit's choice, see docs/enas.md, deviation 9).
- ``narrow``: NASIB-1, the 7-op DARTS-like set.
- ``superkernel``: NASIB-2, every i x j kernel with i, j <= m; kernels with i*j > K are
  depthwise-separable, the rest dense (m = 9, K = 9 give 81 ops).
"""
from __future__ import annotations

from dataclasses import dataclass

from nascore.names import SPACES as SPACE_NAMES
from nascore.ops import parse_op

ORIGINAL = ("conv3x3", "sep3x3", "conv5x5", "sep5x5", "avgpool3x3", "maxpool3x3")
EXTENDED_EXTRA = (
    "conv1x1", "conv1x3", "conv3x1", "conv1x5", "conv5x1", "conv1x7",
    "conv7x1", "conv2x2", "conv4x4", "conv3x5", "conv5x3", "conv7x7",
)
NARROW = ("conv3x3", "conv5x5", "sep3x3", "sep5x5", "avgpool3x3", "maxpool3x3", "identity")


class UnknownSpaceError(ValueError):
    """A space name that the registry does not know."""


@dataclass(frozen=True)
class Space:
    """A named, ordered list of candidate ops."""

    name: str  # registry name, e.g. "extended"
    ops: tuple[str, ...]  # candidate op names in a fixed order (indices are op ids)

    def __len__(self) -> int:
        return len(self.ops)

    def index(self, op: str) -> int:
        """Position of `op`, failing with the valid names."""
        if op not in self.ops:
            raise ValueError(f"op {op!r} is not in space {self.name!r}; valid: {', '.join(self.ops)}")
        return self.ops.index(op)


def superkernel_ops(m: int = 9, k: int = 9) -> tuple[str, ...]:
    """All i x j kernels with i, j <= m; separable when i*j > k, dense otherwise."""
    if m < 1:
        raise ValueError(f"superkernel size m must be >= 1, got {m}")
    if k < 1:
        raise ValueError(f"separable threshold K must be >= 1, got {k}")
    return tuple(
        f"{'sep' if i * j > k else 'conv'}{i}x{j}" for i in range(1, m + 1) for j in range(1, m + 1)
    )


def planted_space(base: Space, planted: str, kind: str = "noise") -> Space:
    """`base` with every op but `planted` replaced by `kind@op` (noise, zero or lossy): `planted` is the best op."""
    base.index(planted)  # one line naming the valid ops
    ops = tuple(op if op == planted else f"{kind}@{op}" for op in base.ops)
    for op in ops:
        parse_op(op)  # an unknown kind fails here, with the accepted forms
    return Space(base.name, ops)


def get_space(name: str, m: int = 9, k: int = 9, extra: tuple[str, ...] | None = None) -> Space:
    """Look a space up by name; `m`/`k` shape the superkernel, `extra` replaces ENAS's 12 added ops."""
    if name == "original":
        ops = ORIGINAL
    elif name == "extended":
        ops = ORIGINAL + tuple(extra if extra is not None else EXTENDED_EXTRA)
    elif name == "narrow":
        ops = NARROW
    elif name == "superkernel":
        ops = superkernel_ops(m, k)
    else:
        raise UnknownSpaceError(f"unknown space {name!r}; valid: {', '.join(SPACE_NAMES)}")
    for op in ops:
        parse_op(op)  # fail early on a malformed configurable list
    if len(set(ops)) != len(ops):
        raise ValueError(f"space {name!r} lists an op twice: {ops}")
    return Space(name, tuple(ops))
