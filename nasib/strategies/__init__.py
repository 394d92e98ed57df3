"""How a one-shot search picks and weights the ops of each mixed layer: a small registry.

A strategy owns the architecture state (alphas, sampling counts) and answers four
questions for the shared loop in `nasib.search`: which ops a weight step runs, how an
alpha step updates the architecture (if at all), which network the per-epoch validation
accuracy measures, and which architecture the search finally derives.

Implemented: `nasib` (P1/P2 policy, two-path alpha step), `random` (uniform pairs, no
alphas, best-of-samples derivation), and the Figure 3 baselines `darts` (first order) and
`snas` (all ops, softmax / Gumbel-softmax weights; narrow spaces only).
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from nasib.presets import NasibSearchConfig

# name -> "module:class"; imported lazily so a registry lookup never builds torch state.
_IMPLEMENTED = {"nasib": "nasib.strategies.two_path:TwoPathStrategy",
                "random": "nasib.strategies.uniform:UniformStrategy",
                "darts": "nasib.strategies.relaxed:DartsStrategy",
                "snas": "nasib.strategies.relaxed:SnasStrategy"}
STRATEGY_NAMES = tuple(_IMPLEMENTED)

Ops = list[list[int]]  # per layer, the indices of the ops a forward runs


class Strategy(ABC):
    """What the search loop asks of a strategy; built with (op_names, cfg, device, generator)."""

    name: str = ""  # registry name, also the "strategy" of the trial records
    trains_alphas: bool = False  # whether the loop interleaves alpha steps on the held-out split
    finish_passes: int = 0  # full held-out passes `derive` needs (charged to the budget's reserve)
    alpha_steps: float | None = None  # alpha steps per weight step by the method's rule (None: one held-out pass)
    uses_p_explore: bool = False  # whether the exploration probability p_e means anything to it (recorded if so)
    has_sampled_eval: bool = False  # whether `sampled_eval_ops` gives a second validation network

    def __init__(self, op_names: tuple[str, ...], cfg: NasibSearchConfig, device: torch.device,
                 generator: torch.Generator | None = None):
        # generator: the search's seeded stream, for strategies that draw their initial state
        self.op_names = tuple(op_names)
        self.layers = cfg.layers
        self.device = device

    def names(self, indices: list[float] | list[int]) -> list[str]:
        """Op names of per-layer op indices (from a host copy, so they may arrive as floats)."""
        return [self.op_names[int(i)] for i in indices]

    @abstractmethod
    def weight_ops(self, p_explore: float, generator: torch.Generator,
                   then_alpha: bool = False) -> tuple[Ops, Tensor | None]:
        """The ops of one weight step and their weights (None = summed), detached from any alphas.

        `then_alpha`: an alpha step follows this weight step (a strategy may draw for it now)."""

    def alpha_step(self, model: nn.Module, x: Tensor, y: Tensor, p_explore: float,
                   generator: torch.Generator) -> None:
        """One architecture update on a held-out batch (only when `trains_alphas`)."""
        raise NotImplementedError(f"strategy {self.name!r} has no alpha step")

    def after_weight_step(self) -> None:  # noqa: B027 - optional hook: single-level strategies (SNAS)
        """Called after each weight step's backward and update (alphas of a single-level method step here)."""

    def sampled_eval_ops(self, generator: torch.Generator) -> tuple[Ops, Tensor | None]:
        """A sampled validation network per batch (only when `has_sampled_eval`)."""
        raise NotImplementedError(f"strategy {self.name!r} has no sampled evaluation")

    def set_alpha_lr(self, lr: float) -> None:  # noqa: B027 - optional hook: strategies without alphas ignore it
        """Set the architecture learning rate (no-op without alphas)."""

    def set_epoch(self, epoch: int, total: int) -> None:  # noqa: B027 - optional hook (SNAS's tau anneal)
        """Told before each epoch which epoch of the `total` planned ones runs (no-op by default)."""

    @abstractmethod
    def eval_ops(self, generator: torch.Generator) -> tuple[Ops, Tensor | None]:
        """The network one validation batch measures: ops and their weights (None = summed)."""

    @abstractmethod
    def epoch_fields(self) -> dict[str, Any]:
        """Per-epoch record fields (python scalars; one host sync); resets per-epoch counters."""

    @abstractmethod
    def samples(self, count: int, generator: torch.Generator) -> list[list[int]]:
        """`count` architectures (one op index per layer) sampled at the end of the search."""

    @abstractmethod
    def derive(self, samples: list[list[int]], score: Callable[[list[int]], float],
               generator: torch.Generator | None = None) -> list[str]:
        """The final architecture, one op name per layer; `score` rates one on the held-out split;
        `generator` breaks exact ties."""

    def alphas_record(self) -> dict[str, Any] | None:
        """The content of alphas.json, or None when the strategy has no alphas."""
        return None

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Resumable state."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output."""


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as `name`; fails with the valid names."""
    if name not in _IMPLEMENTED:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(_IMPLEMENTED)}")
    module, cls = _IMPLEMENTED[name].split(":")
    return getattr(importlib.import_module(module), cls)
