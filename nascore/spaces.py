"""Search spaces as data: named, ordered op lists.

- ``original``: ENAS's 6 macro ops, in ENAS's order.
- ``extended``: those 6, then 12 regular convolutions with non-square and even kernels
  (the paper names no list; this one is the kit's choice, see docs/enas.md, deviation 9).
- ``narrow``: NASIB-1, the 7-op DARTS-like set.
- ``superkernel``: NASIB-2, every i x j kernel with i, j <= m; kernels with i*j > K are
  depthwise-separable, the rest dense (m = 9, K = 9 give 81 ops).

A `Space` is a value that carries what made it (m/K, extra ops, a planted op), so it is
resolved once (`resolve_space`) and handed to the searches; `to_record`/`from_record` write
it into arch.json and read it back, a name alone meaning the default parameters.
Which spaces each method family accepts is said once, in `contract.names.METHOD_SPACES`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from contract.names import METHOD_SPACES
from contract.names import SPACES as SPACE_NAMES
from nascore.ops import parse_op

ORIGINAL = ("conv3x3", "sep3x3", "conv5x5", "sep5x5", "avgpool3x3", "maxpool3x3")
EXTENDED_EXTRA = (
    "conv1x1", "conv1x3", "conv3x1", "conv1x5", "conv5x1", "conv1x7",
    "conv7x1", "conv2x2", "conv4x4", "conv3x5", "conv5x3", "conv7x7",
)
NARROW = ("conv3x3", "conv5x5", "sep3x3", "sep5x5", "avgpool3x3", "maxpool3x3", "identity")


class UnknownSpaceError(ValueError):
    """A space name that the registry does not know."""


# The keys a space writes into a record (arch.json, config.json): its name, the parameters that
# shaped it, and the planted-op marker. NASIB's config already names its fields so (space, m, K, planted).
RECORD_KEYS = ("space", "m", "K", "extra", "planted", "planted_form")


@dataclass(frozen=True)
class Space:
    """A search space as a value: its ordered ops and the parameters that made them."""

    name: str  # registry name, e.g. "extended"
    ops: tuple[str, ...]  # candidate op names in a fixed order (indices are op ids)
    m: int | None = None  # superkernel side (every i x j kernel with i, j <= m); None for other spaces
    K: int | None = None  # superkernel kernels with i*j > K are separable; None for other spaces
    extra: tuple[str, ...] | None = None  # extended only: the added ops, when not the kit's EXTENDED_EXTRA
    planted: str | None = None  # planted-op check: the one real op (every other is `planted_form@op`)
    planted_form: str | None = None  # noise, zero or lossy: what replaced the other ops

    def __len__(self) -> int:
        return len(self.ops)

    def index(self, op: str) -> int:
        """Position of `op`, failing with the valid names."""
        if op not in self.ops:
            raise ValueError(f"op {op!r} is not in space {self.name!r}; valid: {', '.join(self.ops)}")
        return self.ops.index(op)

    def to_record(self) -> dict:
        """The space's record: its name and, where they apply, m/K, extra ops and the planted marker."""
        record = {"space": self.name, "m": self.m, "K": self.K,
                  "extra": None if self.extra is None else list(self.extra),
                  "planted": self.planted, "planted_form": self.planted_form}
        return {k: v for k, v in record.items() if v is not None}

    @classmethod
    def from_record(cls, record: Mapping) -> Space:
        """Rebuild a space from a record's RECORD_KEYS (other keys are ignored; a name alone is the default)."""
        if not isinstance(record.get("space"), str):
            raise UnknownSpaceError(f"a space record needs a 'space' name; valid: {', '.join(SPACE_NAMES)}")
        params = {k: record[k] for k in ("m", "K") if record.get(k) is not None}
        extra = record.get("extra")
        space = get_space(record["space"], m=params.get("m", 9), k=params.get("K", 9),
                          extra=None if extra is None else tuple(extra))
        if record.get("planted") is None:
            return space
        return planted_space(space, record["planted"], record.get("planted_form") or "noise")


SpaceLike = Space | str | Mapping  # what `resolve_space` takes: a value, a registry name or a record


def resolve_space(space: SpaceLike) -> Space:
    """The one way callers turn what they were given into a Space: a value as it is, a name, or a record."""
    if isinstance(space, Space):
        return space
    if isinstance(space, str):
        return get_space(space)
    if isinstance(space, Mapping):
        return Space.from_record(space)
    raise TypeError(f"a space is a Space, a name or a record, got {type(space).__name__}")


def space_name(space: SpaceLike) -> object:
    """The registry name a space value, name or record carries (whatever it holds, unchecked)."""
    if isinstance(space, Space):
        return space.name
    return space.get("space") if isinstance(space, Mapping) else space


def check_method_space(family: str, space: SpaceLike) -> None:
    """One line naming the space and the ones `family` accepts, unless METHOD_SPACES lists it for `family`."""
    accepted, name = METHOD_SPACES[family], space_name(space)
    if name not in accepted:
        raise UnknownSpaceError(f"unknown {family} space {name!r}; valid: {', '.join(accepted)}")


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
    if base.planted is not None:
        raise ValueError(f"space {base.name!r} already has planted op {base.planted!r}")
    base.index(planted)  # one line naming the valid ops
    ops = tuple(op if op == planted else f"{kind}@{op}" for op in base.ops)
    for op in ops:
        parse_op(op)  # an unknown kind fails here, with the accepted forms
    return dataclasses.replace(base, ops=ops, planted=planted, planted_form=kind)


def get_space(name: str, m: int = 9, k: int = 9, extra: tuple[str, ...] | None = None) -> Space:
    """Look a space up by name; `m`/`k` shape the superkernel, `extra` replaces ENAS's 12 added ops."""
    params: dict = {}
    if name == "original":
        ops = ORIGINAL
    elif name == "extended":
        added = tuple(extra if extra is not None else EXTENDED_EXTRA)
        ops = ORIGINAL + added
        params["extra"] = None if added == EXTENDED_EXTRA else added  # the default is the name alone
    elif name == "narrow":
        ops = NARROW
    elif name == "superkernel":
        ops = superkernel_ops(m, k)
        params.update(m=m, K=k)
    else:
        raise UnknownSpaceError(f"unknown space {name!r}; valid: {', '.join(SPACE_NAMES)}")
    for op in ops:
        parse_op(op)  # fail early on a malformed configurable list
    if len(set(ops)) != len(ops):
        raise ValueError(f"space {name!r} lists an op twice: {ops}")
    return Space(name, tuple(ops), **params)
