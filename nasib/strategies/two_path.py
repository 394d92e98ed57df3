"""The NASIB strategy: P1/P2 policy draws, summed pairs for weights, two-path alpha steps.

Weight step: per layer a policy is drawn (P1 with probability p_e, else P2) and two
distinct ops are sampled from it; the draw is counted in `freq`, which P1 balances.
Alpha step (on a held-out batch): a fresh draw by the same policy, not counted (P1 should
balance the training each op receives, not how often it is judged); the layer output is
the pair weighted by the softmax of its two alphas, autograd gives the two-path gradient,
the sparse optimiser (Adam by default, or momentum SGD) moves only the pair's alphas and
the ProxylessNAS rescale keeps the pair's total probability mass (so no other op's
probability changes). Alphas start at priors + alpha_init_std * randn (ProxylessNAS).

Validation (`valid_acc`): the network the search would derive now, the argmax-alpha op of
each layer. The weights were trained on the sum of two unit-scale (BN'd) branches, so the
one op is given weight 2: the network is the weight step's with both sampled ops equal to
the argmax op. `valid_acc_sampled`: a fresh P2 pair per validation batch, summed as in the
weight step, so its mean is over P2's pairs. Ties (exact equal alphas) are broken at random.
Derivation: argmax alpha per layer (`nasib.policy.derive`). Samples: one op per layer
from P2, softmax(alpha / lambda).

Per-epoch records: P2 entropy / ln K and largest P2 probability (mean and per layer), the
share of layers whose argmax changed since the previous epoch, and `argmax_ops`, the op names
of the architecture the search would derive at that epoch (exact ties: the first op, since a
record takes no draw), which the budget-aware ablation compares across budgets.
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
    alpha_optimizer,
    alpha_step,
    argmax_layers,
    derive,
    p2_stats,
    priors_to_alphas,
    two_path_weights,
)
from nasib.strategies import Ops, Strategy


class TwoPathStrategy(Strategy):
    """NASIB: exploration/exploitation sampling and the ProxylessNAS two-path alpha update."""

    name = "nasib"
    trains_alphas = True
    finish_passes = 0
    uses_p_explore = True
    has_sampled_eval = True
    alpha_steps = 1.0  # one held-out alpha step per weight step (the planted-op check: docs/nasib.md, alpha optimiser)

    def __init__(self, op_names, cfg, device, generator=None):
        super().__init__(op_names, cfg, device, generator)
        self.lam = cfg.lam
        alphas = priors_to_alphas(list(self.op_names), dict(cfg.priors), cfg.layers).to(device)
        if cfg.alpha_init_std > 0:
            if generator is None:
                raise ValueError("the nasib strategy needs a torch.Generator to draw its initial alphas")
            alphas += cfg.alpha_init_std * torch.randn(alphas.shape, generator=generator, device=device)
        self.alphas = alphas.requires_grad_(True)
        self.sampler = Sampler(cfg.layers, len(self.op_names), PolicyConfig(lam=cfg.lam, k=cfg.k, paths=2),
                               device)
        self.optimizer = alpha_optimizer(cfg.alpha_optimizer, self.alphas, cfg.alpha_lr, cfg.alpha_momentum)
        self._last_argmax = self.alphas.detach().argmax(dim=1)  # for argmax_changed
        self._ahead: tuple[Tensor, Ops] | None = None  # the next alpha step's draw, taken with a weight step's
        self._reset_counters()

    def _reset_counters(self) -> None:
        """Per-epoch device-side tallies, read once at the epoch's end."""
        self._p1 = torch.zeros((), device=self.device)
        self._draws = 0
        self._alpha_loss = torch.zeros((), device=self.device)
        self._alpha_steps = 0

    def weight_ops(self, p_explore: float, generator: torch.Generator,
                   then_alpha: bool = False) -> tuple[Ops, None]:
        """A counted policy draw: two distinct ops per layer, summed.

        `then_alpha`: an alpha step follows; its draw is taken now too (the weight step changes
        neither the alphas nor the counts after its own draw, and uses no generator), so one host
        copy serves the pair: the same draws in the same generator order as drawing it later.
        """
        draw = self.sampler.draw(self.alphas, p_explore, generator, count=True)
        self._p1 += draw.used_p1.sum()
        self._draws += self.layers
        if not then_alpha:
            return draw.ops.tolist(), None  # the one host sync of a weight step: python indexing of modules
        ahead = self.sampler.draw(self.alphas, p_explore, generator, count=False)
        both = torch.cat([draw.ops, ahead.ops]).tolist()  # the pair's one host sync
        self._ahead = (ahead.ops, both[self.layers:])
        return both[:self.layers], None

    def alpha_step(self, model: nn.Module, x: Tensor, y: Tensor, p_explore: float,
                   generator: torch.Generator) -> None:
        """Two-path update of the alphas on one held-out batch; network weights are untouched."""
        if self._ahead is not None:  # drawn with the weight step's ops (see weight_ops)
            (ops, listed), self._ahead = self._ahead, None
        else:
            ops = self.sampler.draw(self.alphas, p_explore, generator, count=False).ops
            listed = ops.tolist()
        weights = two_path_weights(self.alphas, ops)
        loss = F.cross_entropy(model(x, listed, weights), y)
        self.optimizer.zero_grad()
        loss.backward(inputs=[self.alphas])  # no gradient flows into (or accumulates on) the weights
        alpha_step(self.optimizer, ops)
        self._alpha_loss += loss.detach()
        self._alpha_steps += 1

    def set_alpha_lr(self, lr: float) -> None:
        """Set the alpha SGD learning rate (the loop's cosine schedule)."""
        self.optimizer.lr = lr

    def eval_ops(self, generator: torch.Generator) -> tuple[Ops, Tensor]:
        """The network derived now: the argmax op of each layer, weight 2 (the two-branch sum it trained as)."""
        best = argmax_layers(self.alphas, generator)[:, None]
        return best.tolist(), torch.full(best.shape, 2.0, device=self.device)

    def sampled_eval_ops(self, generator: torch.Generator) -> tuple[Ops, None]:
        """A fresh P2 pair per layer (not counted), summed as in the weight step."""
        return self.sampler.draw(self.alphas, 0.0, generator, count=False).ops.tolist(), None

    def epoch_fields(self) -> dict[str, Any]:
        """p1_fraction, alpha_absmax (non-finite alphas show here), alpha-step loss, P2 sharpness, argmax_ops."""
        p2 = p2_stats(self.alphas, self.lam)
        argmax = self.alphas.detach().argmax(dim=1)  # a record only: no tie-breaking draw
        changed = (argmax != self._last_argmax).float().mean()
        self._last_argmax = argmax
        stats = torch.cat([torch.stack([self._p1 / max(self._draws, 1), self.alphas.detach().abs().max(),
                                        self._alpha_loss / max(self._alpha_steps, 1), changed]),
                           argmax.to(changed.dtype)]).tolist()
        layers = {k: v.tolist() for k, v in p2.items()}
        fields = {"p1_fraction": stats[0], "alpha_absmax": stats[1],
                  "p2_entropy": sum(layers["entropy"]) / self.layers, "p2_entropy_layers": layers["entropy"],
                  "p2_max": sum(layers["max"]) / self.layers, "p2_max_layers": layers["max"],
                  "argmax_changed": stats[3], "argmax_ops": self.names(stats[4:])}
        if self._alpha_steps:
            fields["alpha_loss"] = stats[2]
        self._reset_counters()
        return fields

    def samples(self, count: int, generator: torch.Generator) -> list[list[int]]:
        """`count` architectures, one op per layer drawn from P2 = softmax(alpha / lambda)."""
        probs = self.sampler.probs(self.alphas, "p2")
        return torch.multinomial(probs, count, replacement=True, generator=generator).t().tolist()

    def derive(self, samples: list[list[int]], score: Callable[[list[int]], float],
               generator: torch.Generator | None = None) -> list[str]:
        """Argmax alpha per layer (samples and score are not needed)."""
        return derive(self.alphas.detach(), list(self.op_names), generator)

    def alphas_record(self) -> dict[str, Any]:
        """alphas.json: op names, alphas and weight-step sampling counts per layer."""
        return {"op_names": list(self.op_names), "alphas": self.alphas.detach().cpu().tolist(),
                "freq": self.sampler.freq.cpu().tolist()}

    def state_dict(self) -> dict[str, Any]:
        """Alphas, sampling counts, the alpha optimizer's buffers and last epoch's argmax."""
        return {"alphas": self.alphas.detach().cpu().clone(), "sampler": self.sampler.state_dict(),
                "optimizer": self.optimizer.state_dict(), "last_argmax": self._last_argmax.cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore alphas, counts and optimizer in place (the optimizer keeps its alias of the alphas)."""
        with torch.no_grad():
            self.alphas.copy_(state["alphas"])
        self.sampler.load_state_dict(state["sampler"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._last_argmax = state["last_argmax"].to(self.device)
        self._ahead = None  # a draw taken ahead belongs to the state being replaced
