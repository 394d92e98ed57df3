"""The NASIB strategy: P1/P2 policy draws, summed pairs for weights, two-path alpha steps.

Weight step: per layer a policy is drawn (P1 with probability p_e, else P2) and two
distinct ops are sampled from it; the draw is counted in `freq`, which P1 balances.
Alpha step (on a held-out batch): a fresh draw by the same policy, not counted (P1 should
balance the training each op receives, not how often it is judged); the layer output is
the pair weighted by the softmax of its two alphas, autograd gives the two-path gradient,
the sparse-momentum SGD moves only the pair's alphas and the ProxylessNAS rescale keeps
the pair's total probability mass (so no other op's probability changes).

Validation network ("favoured"): in each layer the two ops with the largest alphas (ties
go to the earlier op in the space's order), weighted by the softmax of their two alphas:
the same kind of network the alpha step trains, with the draw replaced by its mode.
Derivation: argmax alpha per layer (`nasib.policy.derive`). Samples: one op per layer
from P2, softmax(alpha / lambda).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasib.policy import (
    PolicyConfig,
    Sampler,
    SparseMomentumSGD,
    alpha_step,
    derive,
    priors_to_alphas,
    two_path_weights,
)
from nasib.strategies import Ops, Strategy


class TwoPathStrategy(Strategy):
    """NASIB: exploration/exploitation sampling and the ProxylessNAS two-path alpha update."""

    name = "nasib"
    trains_alphas = True
    finish_passes = 0

    def __init__(self, op_names, cfg, device, generator=None):
        super().__init__(op_names, cfg, device, generator)
        self.lam = cfg.lam
        self.alphas = priors_to_alphas(list(self.op_names), dict(cfg.priors), cfg.layers).to(device)
        self.alphas.requires_grad_(True)
        self.sampler = Sampler(cfg.layers, len(self.op_names), PolicyConfig(lam=cfg.lam, k=cfg.k, paths=2),
                               device)
        self.optimizer = SparseMomentumSGD(self.alphas, cfg.alpha_lr, cfg.alpha_momentum)
        self._reset_counters()

    def _reset_counters(self) -> None:
        """Per-epoch device-side tallies, read once at the epoch's end."""
        self._p1 = torch.zeros((), device=self.device)
        self._draws = 0
        self._alpha_loss = torch.zeros((), device=self.device)
        self._alpha_steps = 0

    def weight_ops(self, p_explore: float, generator: torch.Generator) -> tuple[Ops, None]:
        """A counted policy draw: two distinct ops per layer, summed."""
        draw = self.sampler.draw(self.alphas, p_explore, generator, count=True)
        self._p1 += draw.used_p1.sum()
        self._draws += self.layers
        return draw.ops.tolist(), None  # the one host sync of a weight step: python indexing of modules

    def alpha_step(self, model: nn.Module, x: Tensor, y: Tensor, p_explore: float,
                   generator: torch.Generator) -> None:
        """Two-path update of the alphas on one held-out batch; network weights are untouched."""
        draw = self.sampler.draw(self.alphas, p_explore, generator, count=False)
        weights = two_path_weights(self.alphas, draw.ops)
        loss = F.cross_entropy(model(x, draw.ops.tolist(), weights), y)
        self.optimizer.zero_grad()
        loss.backward(inputs=[self.alphas])  # no gradient flows into (or accumulates on) the weights
        alpha_step(self.optimizer, draw.ops)
        self._alpha_loss += loss.detach()
        self._alpha_steps += 1

    def set_alpha_lr(self, lr: float) -> None:
        """Set the alpha SGD learning rate (the loop's cosine schedule)."""
        self.optimizer.lr = lr

    def eval_ops(self, generator: torch.Generator) -> tuple[Ops, Tensor]:
        """The favoured network: top-2 alphas per layer, weighted by their two-path softmax."""
        alphas = self.alphas.detach()
        top2 = torch.argsort(alphas, dim=1, descending=True, stable=True)[:, :2]
        return top2.tolist(), two_path_weights(alphas, top2)

    def epoch_fields(self) -> dict[str, Any]:
        """p1_fraction, alpha_absmax (non-finite alphas show here) and the mean alpha-step loss."""
        stats = torch.stack([self._p1 / max(self._draws, 1), self.alphas.detach().abs().max(),
                             self._alpha_loss / max(self._alpha_steps, 1)]).tolist()
        fields = {"p1_fraction": stats[0], "alpha_absmax": stats[1]}
        if self._alpha_steps:
            fields["alpha_loss"] = stats[2]
        self._reset_counters()
        return fields

    def samples(self, count: int, generator: torch.Generator) -> list[list[int]]:
        """`count` architectures, one op per layer drawn from P2 = softmax(alpha / lambda)."""
        probs = self.sampler.probs(self.alphas, "p2")
        return torch.multinomial(probs, count, replacement=True, generator=generator).t().tolist()

    def derive(self, samples: list[list[int]], score: Callable[[list[int]], float]) -> list[str]:
        """Argmax alpha per layer (samples and score are not needed)."""
        return derive(self.alphas.detach(), list(self.op_names))

    def alphas_record(self) -> dict[str, Any]:
        """alphas.json: op names, alphas and weight-step sampling counts per layer."""
        return {"op_names": list(self.op_names), "alphas": self.alphas.detach().cpu().tolist(),
                "freq": self.sampler.freq.cpu().tolist()}

    def state_dict(self) -> dict[str, Any]:
        """Alphas, sampling counts and the alpha optimizer's buffers."""
        return {"alphas": self.alphas.detach().cpu().clone(), "sampler": self.sampler.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore alphas, counts and optimizer in place (the optimizer keeps its alias of the alphas)."""
        with torch.no_grad():
            self.alphas.copy_(state["alphas"])
        self.sampler.load_state_dict(state["sampler"])
        self.optimizer.load_state_dict(state["optimizer"])
