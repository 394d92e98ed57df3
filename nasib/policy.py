"""NASIB's sampling policies and its two-path architecture update.

Per layer and batch the search draws a policy: exploration P1 with probability p_e
(the epoch's value from `nasib.budget`), else exploitation P2. P1 samples ops by
softmax(-freq), freq being how often each op of that layer was sampled so far; P2 by
softmax(alpha / lambda). `paths` distinct ops are drawn per layer.

Distinct draws use the Gumbel-top-k trick: the top `paths` of logits + Gumbel noise are
distributed exactly as successive sampling without replacement (the first pick follows
the softmax, the next one the softmax of the rest). We do not call torch.multinomial
because it refuses to sample without replacement once fewer than `paths` ops keep a
non-zero float probability, which happens as soon as counts differ by ~100 under P1 or
alphas differ by ~10 lambda under P2; the top-k on logits never underflows.

Alpha step (ProxylessNAS two-path): the two sampled ops are weighted by the softmax of
their own two alphas; only those alphas move, then they are shifted by a common offset
so that their summed probability mass over all ops of the layer is unchanged, and so
is every other op's probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class PolicyConfig:
    """Settings of the P1/P2 sampler."""

    lam: float = 0.1  # P2 temperature lambda (> 0): low means close to argmax of alpha
    k: float = 0.1  # exploration probability of the last epoch; the caller builds the schedule from it
    paths: int = 2  # distinct ops sampled per layer and batch

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lam) and self.lam > 0):
            raise ValueError(f"lam (the P2 temperature) must be a finite number > 0, got {self.lam!r}")
        if not 0.0 < self.k < 1.0:
            raise ValueError(f"k must be in (0, 1), got {self.k!r}")
        if not (isinstance(self.paths, int) and self.paths >= 1):
            raise ValueError(f"paths must be an integer >= 1, got {self.paths!r}")


@dataclass(frozen=True)
class Draw:
    """One batch's choice: the sampled ops per layer and which layers used P1."""

    ops: Tensor  # LongTensor [L, paths], distinct op indices per layer
    used_p1: Tensor  # BoolTensor [L], True where the exploration policy P1 was drawn


class Sampler:
    """Draws ops per layer by P1 (rarely sampled ops) or P2 (high alpha), counting weight-step draws."""

    def __init__(self, layers: int, num_ops: int, config: PolicyConfig = PolicyConfig(),
                 device: torch.device | str = "cpu") -> None:
        if layers < 1 or num_ops < config.paths:
            raise ValueError(f"need layers >= 1 and num_ops >= paths={config.paths}, "
                             f"got layers={layers}, num_ops={num_ops}")
        self.config = config
        self.freq = torch.zeros(layers, num_ops, device=device)  # float counts of weight-step draws

    def probs(self, alphas: Tensor, policy: str) -> Tensor:
        """Per-layer first-pick distribution of policy 'p1' or 'p2', shape [L, N]."""
        if policy not in ("p1", "p2"):
            raise ValueError(f"unknown policy {policy!r}; valid: p1, p2")
        return torch.softmax(self._logits(alphas, policy == "p1"), dim=1)

    def _logits(self, alphas: Tensor, p1: bool | Tensor) -> Tensor:
        """P1 logits -freq where `p1` holds, P2 logits alpha/lambda elsewhere."""
        if alphas.shape != self.freq.shape:
            raise ValueError(f"alphas have shape {tuple(alphas.shape)}; the sampler expects "
                             f"{tuple(self.freq.shape)}")
        if self.freq.device != alphas.device:
            self.freq = self.freq.to(alphas.device)
        p2 = alphas.detach().to(self.freq.dtype) / self.config.lam
        if isinstance(p1, bool):
            return -self.freq if p1 else p2
        return torch.where(p1[:, None], -self.freq, p2)

    def draw(self, alphas: Tensor, p_explore: float, generator: torch.Generator | None = None,
             count: bool = True) -> Draw:
        """Pick P1 with probability p_explore per layer, then `paths` distinct ops from it.

        `generator` must live on the alphas' device. Frequencies count weight-step draws:
        pass count=False for alpha steps so P1 balances the training each op receives.
        """
        if not 0.0 <= p_explore <= 1.0:
            raise ValueError(f"p_explore must be in [0, 1], got {p_explore!r}")
        layers, num_ops = self.freq.shape
        used_p1 = torch.rand(layers, generator=generator, device=alphas.device) < p_explore
        logits = self._logits(alphas, used_p1)
        # Gumbel-top-k: exact sampling without replacement, batched over layers.
        u = torch.rand(layers, num_ops, generator=generator, device=alphas.device, dtype=logits.dtype)
        gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(u.dtype).tiny)))
        ops = torch.topk(logits + gumbel, self.config.paths, dim=1).indices
        if count:
            self.freq.scatter_add_(1, ops, torch.ones_like(ops, dtype=self.freq.dtype))
        return Draw(ops=ops, used_p1=used_p1)

    def state_dict(self) -> dict[str, Any]:
        """Resumable state: the frequency counts."""
        return {"freq": self.freq.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counts saved by `state_dict`."""
        freq = torch.as_tensor(state["freq"])
        if freq.shape != self.freq.shape:
            raise ValueError(f"saved freq has shape {tuple(freq.shape)}; "
                             f"the sampler has {tuple(self.freq.shape)}")
        self.freq = freq.to(device=self.freq.device, dtype=self.freq.dtype).clone()


def two_path_weights(alphas: Tensor, ops: Tensor) -> Tensor:
    """Softmax over each layer's sampled alphas, [L, paths]; differentiable w.r.t. alphas."""
    return torch.softmax(alphas.gather(1, ops), dim=1)


@torch.no_grad()
def rescale_(alphas: Tensor, ops: Tensor, old_alphas: Tensor) -> None:
    """Shift each layer's sampled alphas so their softmax mass over all ops is as before the step."""
    if old_alphas.shape != alphas.shape:
        raise ValueError(f"old_alphas shape {tuple(old_alphas.shape)} != alphas shape {tuple(alphas.shape)}")
    new_pair = alphas.gather(1, ops)
    offset = torch.logsumexp(new_pair, dim=1) - torch.logsumexp(old_alphas.gather(1, ops), dim=1)
    alphas.scatter_(1, ops, new_pair - offset[:, None])


class _SparseOptimizer:
    """What both alpha optimisers share: the alphas they own and their gradient's life cycle."""

    alphas: Tensor

    def zero_grad(self) -> None:
        """Drop the alphas' gradient."""
        self.alphas.grad = None

    def _check_grad(self) -> None:
        """A step needs a gradient: fail clearly when backward() was not called."""
        if self.alphas.grad is None:
            raise RuntimeError("alphas have no gradient: call backward() before step()")


class SparseMomentumSGD(_SparseOptimizer):
    """SGD with momentum for alphas where only the sampled (layer, op) entries move.

    For sampled entries: buf = mu * buf + grad; alpha -= lr * buf. Unsampled entries keep
    both their alpha and their momentum buffer, so momentum from earlier steps never
    drifts an op that was not sampled (which would undo the two-path rescale and change
    the probability of ops the batch said nothing about). A sampled op's buffer resumes
    from where it was left the last time it was sampled. The caller sets `lr` each epoch.
    """

    def __init__(self, alphas: Tensor, lr: float = 0.01, momentum: float = 0.9) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.alphas = alphas
        self.lr = lr
        self.momentum = momentum
        self.buf = torch.zeros_like(alphas, requires_grad=False)

    @torch.no_grad()
    def step(self, ops: Tensor) -> None:
        """Update only the entries named by `ops` [L, paths] from alphas.grad."""
        self._check_grad()
        buf = self.buf.gather(1, ops) * self.momentum + self.alphas.grad.gather(1, ops)
        self.buf.scatter_(1, ops, buf)
        self.alphas.scatter_(1, ops, self.alphas.gather(1, ops) - self.lr * buf)

    def state_dict(self) -> dict[str, Any]:
        """Resumable state: lr, momentum and buffers."""
        return {"lr": self.lr, "momentum": self.momentum, "buf": self.buf.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state saved by `state_dict`."""
        if tuple(state["buf"].shape) != tuple(self.buf.shape):
            saved = tuple(state["buf"].shape)
            raise ValueError(f"saved buffer shape {saved} != alphas shape {tuple(self.buf.shape)}")
        self.lr, self.momentum = float(state["lr"]), float(state["momentum"])
        self.buf = state["buf"].to(device=self.alphas.device, dtype=self.alphas.dtype).clone()


class SparseAdam(_SparseOptimizer):
    """Adam for alphas where only the sampled (layer, op) entries move (ProxylessNAS's alpha optimiser).

    ProxylessNAS steps its architecture parameters with Adam (lr 1e-3, betas (0, 0.999),
    eps 1e-8, no weight decay). With beta1 = 0 torch's dense Adam leaves an entry whose
    gradient is zero where it is; here that holds for any beta1: unsampled entries keep
    alpha, both moments and their own step count (used for bias correction), so the
    two-path rescale is never undone by a stale moment. Adam normalises the gradient, so a
    sampled alpha moves by about lr per step whatever the loss scale.
    """

    def __init__(self, alphas: Tensor, lr: float = 1e-3, betas: tuple[float, float] = (0.0, 0.999),
                 eps: float = 1e-8) -> None:
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Adam betas must be in [0, 1), got {betas!r}")
        self.alphas, self.lr, self.betas, self.eps = alphas, lr, tuple(betas), eps
        self.m = torch.zeros_like(alphas, requires_grad=False)
        self.v = torch.zeros_like(alphas, requires_grad=False)
        self.t = torch.zeros_like(alphas, requires_grad=False)  # per-entry step counts

    @torch.no_grad()
    def step(self, ops: Tensor) -> None:
        """Update only the entries named by `ops` [L, paths] from alphas.grad."""
        self._check_grad()
        b1, b2 = self.betas
        g = self.alphas.grad.gather(1, ops)
        t = self.t.gather(1, ops) + 1
        m = self.m.gather(1, ops) * b1 + (1 - b1) * g
        v = self.v.gather(1, ops) * b2 + (1 - b2) * g * g
        for buf, val in ((self.t, t), (self.m, m), (self.v, v)):
            buf.scatter_(1, ops, val)
        update = (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + self.eps)
        self.alphas.scatter_(1, ops, self.alphas.gather(1, ops) - self.lr * update)

    def state_dict(self) -> dict[str, Any]:
        """Resumable state: lr, betas, moments and step counts."""
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                **{k: getattr(self, k).detach().cpu().clone() for k in ("m", "v", "t")}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore state saved by `state_dict`."""
        if tuple(state["m"].shape) != tuple(self.m.shape):
            raise ValueError(f"saved moment shape {tuple(state['m'].shape)} != alphas shape {tuple(self.m.shape)}")
        self.lr, self.betas, self.eps = float(state["lr"]), tuple(state["betas"]), float(state["eps"])
        for k in ("m", "v", "t"):
            setattr(self, k, state[k].to(device=self.alphas.device, dtype=self.alphas.dtype).clone())


ALPHA_OPTIMIZERS = ("adam", "sgd")  # SparseAdam (ProxylessNAS) or SparseMomentumSGD


def alpha_optimizer(name: str, alphas: Tensor, lr: float, momentum: float) -> SparseAdam | SparseMomentumSGD:
    """The sparse alpha optimiser `name`: adam (betas (momentum, 0.999)) or sgd (this momentum)."""
    if name == "adam":
        return SparseAdam(alphas, lr, (momentum, 0.999))
    if name == "sgd":
        return SparseMomentumSGD(alphas, lr, momentum)
    raise ValueError(f"unknown alpha optimizer {name!r}; valid: {', '.join(ALPHA_OPTIMIZERS)}")


def alpha_step(optimizer: SparseAdam | SparseMomentumSGD, ops: Tensor) -> None:
    """The NASIB alpha step: sparse momentum update of the sampled pair, then the two-path rescale."""
    old = optimizer.alphas.detach().clone()
    optimizer.step(ops)
    rescale_(optimizer.alphas, ops, old)


def priors_to_alphas(op_names: list[str], priors: dict[str, float], layers: int) -> Tensor:
    """Initial alphas [layers, N]: 0 everywhere, the given prior for each named op in every layer."""
    if len(set(op_names)) != len(op_names):
        raise ValueError(f"op names repeat: {', '.join(op_names)}")
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    alphas = torch.zeros(layers, len(op_names))
    for name, value in priors.items():
        if name not in op_names:
            raise ValueError(f"unknown op {name!r} in priors; valid: {', '.join(op_names)}")
        if not math.isfinite(value):
            raise ValueError(f"prior for op {name!r} must be finite, got {value!r}")
        alphas[:, op_names.index(name)] = float(value)
    return alphas


def argmax_layers(alphas: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Per layer the index of the largest alpha; exact ties are broken uniformly at random, not by op order."""
    alphas = alphas.detach()
    top = alphas == alphas.max(dim=1, keepdim=True).values
    noise = torch.rand(alphas.shape, generator=generator, device=alphas.device)
    return torch.where(top, noise, torch.full_like(noise, -1.0)).argmax(dim=1)


def derive(alphas: Tensor, op_names: list[str], generator: torch.Generator | None = None) -> list[str]:
    """The final architecture: the op with the largest alpha in each layer (ties: a random one of them)."""
    if alphas.dim() != 2 or alphas.shape[1] != len(op_names):
        raise ValueError(f"alphas of shape {tuple(alphas.shape)} do not match {len(op_names)} op names")
    return [op_names[i] for i in argmax_layers(alphas, generator).tolist()]


def p2_stats(alphas: Tensor, lam: float) -> dict[str, Tensor]:
    """P2 = softmax(alpha / lambda) per layer: entropy / ln K and largest probability, [L] each."""
    probs = torch.softmax(alphas.detach() / lam, dim=1)
    entropy = -(probs * torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))).sum(dim=1)
    return {"entropy": entropy / math.log(alphas.shape[1]), "max": probs.max(dim=1).values}
