"""Fixed-network builders, one per method family: any arch.json -> the network to retrain.

Each method exposes one public class that builds its final network from an architecture
record; retraining looks it up here by family and never reaches further into the method.
A new method registers its builder with `register`.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from nascore.config import ConfigError

Builder = Callable[..., nn.Module]  # builder(arch, channels=..., dropout=...) -> nn.Module

# family -> "module:attribute", imported only when an architecture of that family is retrained
_BUILDERS: dict[str, str] = {"enas": "enas_ext.child:FixedChild", "nasib": "nasib.supernet:FixedNet"}


def register(family: str, target: str) -> None:
    """Add (or replace) the builder of a method family, given as 'module:attribute'."""
    if ":" not in target:
        raise ConfigError(f"builder {target!r} for {family!r} must read 'module:attribute'")
    _BUILDERS[family] = target


def family_of(arch: dict) -> str:
    """The method family an arch.json belongs to: its 'family' key, else ENAS when it has skips."""
    family = arch.get("family") or ("enas" if "skips" in arch else "nasib")
    if family not in _BUILDERS:
        raise ConfigError(f"unknown architecture family {family!r}; known: {', '.join(sorted(_BUILDERS))}")
    return family


def build_fixed(arch: dict, channels: int | None, dropout: float) -> nn.Module:
    """The fixed network for an architecture record, built by its family's registered builder."""
    module, attr = _BUILDERS[family_of(arch)].split(":")
    builder: Builder = getattr(importlib.import_module(module), attr)
    return builder(arch, channels=channels, dropout=dropout)
