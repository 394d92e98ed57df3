"""The random baseline: uniform pairs for the weights, no alphas, best-of-samples derivation.

Weight step: two distinct ops per layer, uniformly at random (the same summed pair as
NASIB, so the supernets are trained alike; only the choice of ops differs). There is no
architecture step. Validation accuracy: a fresh uniform pair per validation batch, i.e.
the mean quality of the sub-networks the shared weights support (as ENAS logs its child).

Derivation ("random search with weight sharing", Li & Talwalkar 2019): the architectures
written to samples.json are drawn uniformly (one op per layer), each is scored on the
whole held-out split with the trained shared weights, and the best one (the first, on
ties) becomes arch.json. The op frequencies of a uniform sampler carry no information,
so "most frequent op" would be a random pick in disguise.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from nasib.policy import PolicyConfig, Sampler
from nasib.strategies import Ops, Strategy


class UniformStrategy(Strategy):
    """Uniformly random pairs; derive the best of the sampled architectures on the held-out split."""

    name = "random"
    trains_alphas = False

    def __init__(self, op_names, cfg, device, generator=None):
        super().__init__(op_names, cfg, device, generator)
        self.finish_passes = cfg.num_samples  # one held-out pass per scored sample
        # Exploitation on all-zero logits is the uniform distribution over distinct pairs.
        self._zeros = torch.zeros(cfg.layers, len(self.op_names), device=device)
        self.sampler = Sampler(cfg.layers, len(self.op_names), PolicyConfig(paths=2), device)

    def weight_ops(self, p_explore: float, generator: torch.Generator,
                   then_alpha: bool = False) -> tuple[Ops, None]:
        """Two distinct uniform ops per layer, summed (counted, for the record)."""
        return self.sampler.draw(self._zeros, 0.0, generator, count=True).ops.tolist(), None

    def eval_ops(self, generator: torch.Generator) -> tuple[Ops, Tensor | None]:
        """A fresh uniform pair per validation batch, summed as in the weight step."""
        return self.sampler.draw(self._zeros, 0.0, generator, count=False).ops.tolist(), None

    def epoch_fields(self) -> dict[str, Any]:
        """No strategy fields: nothing but the weights is learned."""
        return {}

    def samples(self, count: int, generator: torch.Generator) -> list[list[int]]:
        """`count` uniform architectures, one op per layer."""
        shape = (count, self.layers)
        return torch.randint(len(self.op_names), shape, generator=generator, device=self.device).tolist()

    def derive(self, samples: list[list[int]], score: Callable[[list[int]], float],
               generator: torch.Generator | None = None) -> list[str]:
        """The sample with the best held-out accuracy under the shared weights."""
        if not samples:
            raise ValueError("the random strategy derives from samples; num_samples must be >= 1")
        best = max(samples, key=score)  # max keeps the first of equal scores
        return [self.op_names[i] for i in best]

    def state_dict(self) -> dict[str, Any]:
        """Sampling counts."""
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the sampling counts."""
        self.sampler.load_state_dict(state["sampler"])
