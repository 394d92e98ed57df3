"""The op-name grammar: which names are candidate operations, and what each says (pure string parsing).

`conv{i}x{j}`, `sep{i}x{j}` (1 <= i, j <= 99), `avgpool3x3`, `maxpool3x3`, `identity`, and the
planted-op forms `noise@OP`, `zero@OP`, `lossy@OP` (OP a plain name). Torch-free, so analysis reads
recorded op names by the same rule the builder (`nascore.ops.build_op`) uses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_CONV = re.compile(r"^(conv|sep)([1-9][0-9]?)x([1-9][0-9]?)$")
FIXED_OPS = ("avgpool3x3", "maxpool3x3", "identity")
UNINFORMATIVE = ("noise", "zero")  # prefixes of `KIND@OP` names: OP's shape, no information
PLANTED_KINDS = UNINFORMATIVE + ("lossy",)  # every `KIND@OP` prefix; lossy@OP passes x but loses samples


class UnknownOpError(ValueError):
    """An op name that the registry cannot build."""


@dataclass(frozen=True)
class OpSpec:
    """The parsed form of an op name."""

    name: str  # the canonical name, e.g. "sep5x3" or "noise@sep5x3"
    kind: str  # "conv", "sep", "avgpool", "maxpool", "identity", "noise" / "zero" (uninformative), "lossy"
    kh: int  # kernel height (1 for identity)
    kw: int  # kernel width (1 for identity)

    @property
    def has_weights(self) -> bool:
        """Whether the op owns learnable parameters."""
        return self.kind in ("conv", "sep")


def parse_op(name: str) -> OpSpec:
    """Parse an op name, failing with the accepted forms."""
    kind, at, inner = name.partition("@") if isinstance(name, str) else ("", "", "")
    if at and kind in PLANTED_KINDS:
        spec = parse_op(inner)
        if spec.kind in PLANTED_KINDS:
            raise UnknownOpError(f"unknown op {name!r}: {kind}@ takes a plain op, not {inner!r}")
        return OpSpec(name, kind, spec.kh, spec.kw)
    if name in ("avgpool3x3", "maxpool3x3"):
        return OpSpec(name, name[:7], 3, 3)
    if name == "identity":
        return OpSpec(name, "identity", 1, 1)
    m = _CONV.match(name) if isinstance(name, str) else None
    if m is None:
        raise UnknownOpError(
            f"unknown op {name!r}; valid: conv{{i}}x{{j}} or sep{{i}}x{{j}} with 1 <= i, j <= 99 "
            f"(e.g. conv3x3, sep5x3), {', '.join(FIXED_OPS)}, or noise@OP / zero@OP / lossy@OP"
        )
    return OpSpec(name, m.group(1), int(m.group(2)), int(m.group(3)))


def check_ops(names: list[str] | tuple[str, ...], valid: list[str] | tuple[str, ...]) -> None:
    """Fail with the valid list when any name is not among `valid`."""
    bad = [n for n in names if n not in valid]
    if bad:
        raise UnknownOpError(f"unknown op {bad[0]!r} for this space; valid: {', '.join(valid)}")


def kernel_shape(name: str) -> tuple[int, int] | None:
    """(height, width) of a plain convolution op such as 'conv1x3' or 'sep5x6'; None for anything else."""
    try:
        spec = parse_op(name)
    except UnknownOpError:
        return None
    return (spec.kh, spec.kw) if spec.has_weights else None
