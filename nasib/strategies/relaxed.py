"""The Figure 3 baselines on NASIB's macro backbone: DARTS (first order) and SNAS.

Both run every candidate op of every mixed layer, weighted by a relaxation of the layer's
alphas, in the weight step and in the alpha step; they differ only in the relaxation:

- DARTS: softmax(alpha).
- SNAS: softmax((alpha + Gumbel noise) / tau), fresh noise per step, tau linear from
  1.0 (first epoch) to 0.03 (last planned epoch), constant within an epoch as in the SNAS
  release; a budget re-plan moves the end of the anneal with the plan.

Each follows its own paper's update rule (the records' `alpha_rule` says which ran):

- DARTS (first order, bi-level): weight step on a training batch with the softmax weights
  detached; then one alpha step per weight step on a held-out batch (the held-out split
  cycles as often as it must), as the DARTS release does.
- SNAS (single level): one training-batch loss, gradients reach weights and alphas
  together; the weights' SGD and the alphas' Adam both step on it. No held-out alpha steps.

Alphas: Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3, at a constant rate (the
loop's alpha schedule does not apply), starting at 1e-3 * randn from the search's seeded
generator. A `NasibSearchConfig.alpha_steps` overrides DARTS's one-per-weight-step.

Running all ops costs memory (and time) in proportion to the op count, so spaces with
more than MAX_OPS ops are refused. Validation accuracy: DARTS, the softmax-weighted
supernet it trains; SNAS, a fresh relaxed sample at the current tau per validation batch.
Samples: one op per layer from softmax(alpha). Derivation: argmax alpha per layer.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasib.policy import derive
from nasib.strategies import Ops, Strategy

MAX_OPS = 10  # all ops run in every layer: activations grow with the op count
ALPHA_LR = 3e-4  # Adam learning rate of the architecture (DARTS and SNAS releases)
ALPHA_BETAS = (0.5, 0.999)  # Adam betas of the architecture
ALPHA_WD = 1e-3  # Adam (L2) weight decay of the architecture
ALPHA_INIT_STD = 1e-3  # alphas start at ALPHA_INIT_STD * randn
TAU_START, TAU_END = 1.0, 0.03  # SNAS temperature anneal, linear over the planned epochs


class MixtureStrategy(Strategy):
    """All ops per layer, weighted by a relaxation of the alphas; subclasses choose the relaxation."""

    trains_alphas = True
    finish_passes = 0

    def __init__(self, op_names, cfg, device, generator=None):
        super().__init__(op_names, cfg, device, generator)
        n = len(self.op_names)
        if n > MAX_OPS:
            raise ValueError(f"strategy {self.name!r} runs every op in every layer (memory grows with the "
                             f"op count): space {cfg.space!r} has {n} ops, the limit is {MAX_OPS}; "
                             f"use --space narrow")
        if generator is None:
            raise ValueError(f"strategy {self.name!r} needs a torch.Generator to draw its initial alphas")
        alphas = ALPHA_INIT_STD * torch.randn(cfg.layers, n, generator=generator, device=device)
        self.alphas = alphas.requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.alphas], lr=ALPHA_LR, betas=ALPHA_BETAS,
                                          weight_decay=ALPHA_WD)
        self._all: Ops = [list(range(n)) for _ in range(cfg.layers)]
        self._reset_counters()

    def relax(self, generator: torch.Generator) -> Tensor:
        """Per-layer op weights as a differentiable function of the alphas."""
        raise NotImplementedError

    def _reset_counters(self) -> None:
        """Per-epoch device-side tallies, read once at the epoch's end."""
        self._alpha_loss = torch.zeros((), device=self.device)
        self._alpha_steps = 0

    def weight_ops(self, p_explore: float, generator: torch.Generator,
                   then_alpha: bool = False) -> tuple[Ops, Tensor]:
        """Every op, weighted by the relaxation detached from the alphas."""
        return self._all, self.relax(generator).detach()

    def alpha_step(self, model: nn.Module, x: Tensor, y: Tensor, p_explore: float,
                   generator: torch.Generator) -> None:
        """One Adam step of the alphas on a held-out batch; network weights get no gradient."""
        loss = F.cross_entropy(model(x, self._all, self.relax(generator)), y)
        self.optimizer.zero_grad()
        loss.backward(inputs=[self.alphas])
        self.optimizer.step()
        self._alpha_loss += loss.detach()
        self._alpha_steps += 1

    def epoch_fields(self) -> dict[str, Any]:
        """alpha_absmax (non-finite alphas show here), alpha-step loss, the constant alpha_lr, argmax_ops."""
        alphas = self.alphas.detach()
        stats = torch.cat([torch.stack([alphas.abs().max(), self._alpha_loss / max(self._alpha_steps, 1)]),
                           alphas.argmax(dim=1).to(alphas.dtype)]).tolist()  # one host sync
        fields = {"alpha_absmax": stats[0], "alpha_lr": ALPHA_LR, "alpha_rule": self.alpha_rule,
                  "argmax_ops": self.names(stats[2:])}  # derived now (ties: first op)
        if self._alpha_steps:
            fields["alpha_loss"] = stats[1]
        self._reset_counters()
        return fields

    def samples(self, count: int, generator: torch.Generator) -> list[list[int]]:
        """`count` architectures, one op per layer drawn from softmax(alpha)."""
        probs = torch.softmax(self.alphas.detach(), dim=1)
        return torch.multinomial(probs, count, replacement=True, generator=generator).t().tolist()

    def derive(self, samples: list[list[int]], score: Callable[[list[int]], float],
               generator: torch.Generator | None = None) -> list[str]:
        """Argmax alpha per layer (samples and score are not needed)."""
        return derive(self.alphas.detach(), list(self.op_names), generator)

    def alphas_record(self) -> dict[str, Any]:
        """alphas.json: op names and alphas per layer."""
        return {"op_names": list(self.op_names), "alphas": self.alphas.detach().cpu().tolist()}

    def state_dict(self) -> dict[str, Any]:
        """Alphas and the Adam state."""
        return {"alphas": self.alphas.detach().cpu().clone(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore alphas in place (Adam keeps its reference to them) and the Adam state."""
        with torch.no_grad():
            self.alphas.copy_(state["alphas"])
        self.optimizer.load_state_dict(state["optimizer"])


class DartsStrategy(MixtureStrategy):
    """DARTS, first order: softmax(alpha)-weighted sum of all ops."""

    name = "darts"
    alpha_steps = 1.0  # one held-out alpha step per weight step, as the DARTS release
    alpha_rule = "first-order bi-level: one held-out alpha step per weight step"

    def relax(self, generator: torch.Generator) -> Tensor:
        """softmax(alpha) per layer (no randomness)."""
        return torch.softmax(self.alphas, dim=1)

    def eval_ops(self, generator: torch.Generator) -> tuple[Ops, Tensor]:
        """The softmax-weighted supernet DARTS trains."""
        return self._all, torch.softmax(self.alphas.detach(), dim=1)


class SnasStrategy(MixtureStrategy):
    """SNAS: Gumbel-softmax relaxed one-hot samples over all ops, temperature annealed."""

    name = "snas"
    trains_alphas = False  # no held-out alpha steps: the alphas learn inside the weight step
    alpha_rule = "single level: weights and alphas step on the same training-batch loss"

    def __init__(self, op_names, cfg, device, generator=None):
        super().__init__(op_names, cfg, device, generator)
        self.tau = TAU_START

    def weight_ops(self, p_explore: float, generator: torch.Generator,
                   then_alpha: bool = False) -> tuple[Ops, Tensor]:
        """Every op, weighted by a relaxed sample that keeps its gradient path to the alphas."""
        self.optimizer.zero_grad()
        return self._all, self.relax(generator)

    def after_weight_step(self) -> None:
        """The alphas' Adam step on the gradient the training loss just gave them."""
        self.optimizer.step()
    def set_epoch(self, epoch: int, total: int) -> None:
        """Linear anneal: TAU_START on epoch 0, TAU_END on the last planned epoch (total - 1)."""
        frac = min(epoch / (total - 1), 1.0) if total > 1 else 0.0
        self.tau = TAU_START + (TAU_END - TAU_START) * frac

    def relax(self, generator: torch.Generator) -> Tensor:
        """softmax((alpha + Gumbel) / tau) per layer, fresh noise from `generator`."""
        exp = torch.empty_like(self.alphas, requires_grad=False).exponential_(generator=generator)
        gumbel = -torch.log(exp.clamp_min(torch.finfo(exp.dtype).tiny))
        return torch.softmax((self.alphas + gumbel) / self.tau, dim=1)

    def eval_ops(self, generator: torch.Generator) -> tuple[Ops, Tensor]:
        """A fresh relaxed sample at the current tau per validation batch (what SNAS trains)."""
        return self._all, self.relax(generator).detach()

    def epoch_fields(self) -> dict[str, Any]:
        """The mixture fields plus this epoch's temperature tau."""
        return {**super().epoch_fields(), "tau": self.tau}
