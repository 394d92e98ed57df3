"""ENAS macro-search LSTM controller: batched sampling, log-probs, entropy, skip penalty, REINFORCE.

Semantics follow the official ENAS macro controller (see docs/enas-release.md):
per layer one op decision, then (from layer 1 on) one independent skip bit per earlier anchor.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ControllerConfig:
    """Hyper-parameters of the macro controller and its REINFORCE trainer."""

    num_layers: int = 12  # searched child layers; one op decision per layer
    num_ops: int = 6  # size of the op space (6 original, 18 extended)
    lstm_size: int = 64  # LSTM hidden units, also embedding and attention width
    tanh_constant: float = 1.5  # logits become c * tanh(logits) to keep the policy from saturating
    skip_target: float = 0.4  # target probability of any one skip bit being on
    skip_weight: float = 0.8  # weight of the skip-rate KL penalty in the loss
    entropy_weight: float = 1e-4  # weight of the sampled-decision entropy added to the reward
    baseline_decay: float = 0.99  # moving-average decay of the reward baseline
    lr: float = 1e-3  # Adam learning rate, constant
    adam_eps: float = 1e-3  # Adam epsilon in TensorFlow's convention (large, as the reference sets it)
    num_aggregate: int = 20  # architectures sampled (as one batch) per controller update
    train_steps: int = 50  # controller updates after every child epoch

    def __post_init__(self) -> None:
        positive = ("num_layers", "num_ops", "lstm_size", "num_aggregate", "train_steps", "lr", "adam_eps")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"ControllerConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.num_ops < 2:
            raise ValueError(f"ControllerConfig.num_ops must be >= 2, got {self.num_ops}")
        if not 0.0 < self.skip_target < 1.0:
            raise ValueError(f"ControllerConfig.skip_target must be in (0, 1), got {self.skip_target}")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"ControllerConfig.baseline_decay must be in [0, 1), got {self.baseline_decay}")
        for name in ("tanh_constant", "skip_weight", "entropy_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"ControllerConfig.{name} must be >= 0, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ControllerConfig:
        """Build a config from a mapping, failing loudly on unknown keys."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            listed = ", ".join(sorted(valid))
            raise ValueError(f"unknown controller option(s) {', '.join(unknown)}; valid: {listed}")
        return cls(**values)


@dataclass
class ControllerSample:
    """A batch of B architectures with the quantities REINFORCE needs."""

    ops: Tensor  # [B, L] long: op index per layer
    skips: Tensor  # [B, L, L] bool: skips[b, k, j] is layer k's j-th skip bit (j < k), else False
    log_prob: Tensor  # [B] sum of log-probabilities of every decision (carries grad)
    entropy: Tensor  # [B] sum of -log p(a) * p(a) over the sampled decisions (detached)
    skip_penalty: Tensor  # [B] per-architecture skip KL penalty (carries grad)
    skip_count: Tensor  # [B] number of skip bits that are on

    @property
    def batch(self) -> int:
        """Number of architectures in the sample."""
        return int(self.ops.shape[0])


def skip_kl_penalty(skip_logits: Tensor, target: float) -> Tensor:
    """Elementwise KL(Bernoulli(sigmoid(logit)) || Bernoulli(target)) for skip on-logits."""
    # Written with logsigmoid so saturated logits give finite values.
    log_on, log_off = F.logsigmoid(skip_logits), F.logsigmoid(-skip_logits)
    p_on, p_off = log_on.exp(), log_off.exp()
    on_t, off_t = _log_as(target, skip_logits.dtype), _log_as(1.0 - target, skip_logits.dtype)
    return p_on * (log_on - on_t) + p_off * (log_off - off_t)


@functools.lru_cache(maxsize=64)
def _log_as(value: float, dtype: torch.dtype) -> float:
    """log(value) rounded as `dtype` computes it, as a Python float: no device tensor, so no blocking copy."""
    # Computed on the CPU in `dtype`, so the constant is bitwise the one a device-side torch.log gave.
    return float(torch.log(torch.tensor(value, dtype=dtype)))


def update_baseline(b: Tensor, rewards: Tensor, decay: float) -> tuple[Tensor, Tensor]:
    """Apply b <- b - (1 - decay)(b - R_t) for each reward in order; return (final b, b after each step)."""
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D, got shape {tuple(rewards.shape)}")
    n = rewards.shape[0]
    steps = torch.arange(1, n + 1, device=rewards.device, dtype=rewards.dtype)
    # Closed form of the sequential recursion avoids a Python loop of tiny kernels:
    # b_t = d^t b_0 + (1 - d) * sum_{s <= t} d^(t - s) R_s.
    gap = (steps[:, None] - steps[None, :]).clamp(min=0)
    weights = torch.tril(torch.pow(torch.full_like(gap, decay), gap))
    start = torch.pow(torch.full_like(steps, decay), steps) * b.to(rewards)
    per_step = start + (1.0 - decay) * (weights @ rewards)
    new_b = per_step[-1] if n > 0 else b.to(rewards)
    return new_b, per_step


def _unit_uniforms(shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None) -> Tensor:
    """Uniforms drawn on the generator's device (so a CPU seed reproduces on CUDA), then moved."""
    where = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=where)
    if u.device.type == "cpu" and torch.device(device).type == "cuda":
        # Pinned and non-blocking: the host does not wait for the device's queue (the previous update's work).
        return u.pin_memory().to(device, non_blocking=True)
    return u.to(device)


def _at(t: Tensor | None, k: int, width: int | None = None) -> Tensor | None:
    """Layer k's slice of a per-layer tensor ([:, k] or [:, k, :width]); None passes through."""
    if t is None:
        return None
    return t[:, k] if width is None else t[:, k, :width]


class Controller(nn.Module):
    """LSTM policy over macro architectures: ops per layer and skip bits by attention.

    Layer k (k >= 1) emits k skip bits. In the child network those bits choose among the
    outputs of {stem, layers 0..k-2}: bit 0 is the stem, bit j (j >= 1) is layer j-1. The
    immediate predecessor k-1 always feeds layer k and is not a choice. The controller only
    produces the bits; the child network gives them this meaning.
    """

    def __init__(self, config: ControllerConfig | None = None) -> None:
        super().__init__()
        self.config = config or ControllerConfig()
        h, n_ops = self.config.lstm_size, self.config.num_ops
        self.lstm = nn.LSTMCell(h, h, bias=False)
        self.g_emb = nn.Parameter(torch.empty(1, h))  # start input of layer 0 (and after layer 0)
        self.op_emb = nn.Embedding(n_ops, h)
        self.op_head = nn.Linear(h, n_ops, bias=False)
        self.attn_anchor = nn.Linear(h, h, bias=False)  # W1, applied to each saved anchor
        self.attn_query = nn.Linear(h, h, bias=False)  # W2, applied to the current hidden state
        self.attn_v = nn.Linear(h, 1, bias=False)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    @property
    def device(self) -> torch.device:
        """Device of the parameters; every tensor the controller makes lives there."""
        return self.g_emb.device

    def _op_step(self, h: Tensor, forced: Tensor | None, u: Tensor | None) -> tuple[Tensor, Tensor]:
        """Choose one op per row (forced, sampled from uniforms u, or argmax); return (op, log p)."""
        logits = self.config.tanh_constant * torch.tanh(self.op_head(h))
        logp_all = F.log_softmax(logits, dim=-1)
        if forced is not None:
            op = forced
        elif u is not None:
            # Inverse-CDF sampling from pre-drawn uniforms keeps batches reproducible per seed.
            below = logp_all.exp().cumsum(-1) < u[:, None]
            op = below.sum(-1).clamp(max=self.config.num_ops - 1)
        else:
            op = logits.argmax(-1)
        return op, logp_all.gather(1, op[:, None]).squeeze(1)

    def _skip_step(
        self, h: Tensor, anchors: Tensor, anchors_w1: Tensor, forced: Tensor | None, u: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Choose k skip bits per row by attention; return (bits [B,k], log p [B,k], KL [B,k])."""
        q = self.attn_v(torch.tanh(anchors_w1 + self.attn_query(h)[:, None, :])).squeeze(-1)
        # tanh is odd, so c*tanh([-q, q]) == [-q', q'] with q' = c*tanh(q): q' is the on-logit.
        q = self.config.tanh_constant * torch.tanh(q)
        # Sampling uses softmax([-q', q']), i.e. P(on) = sigmoid(2q') ...
        log_on, log_off = F.logsigmoid(2.0 * q), F.logsigmoid(-2.0 * q)
        if forced is not None:
            bits = forced
        elif u is not None:
            bits = u < log_on.exp()
        else:
            bits = q > 0
        logp = torch.where(bits, log_on, log_off)
        # ... while the reference's penalty applies sigmoid to the same logits, i.e. sigmoid(q').
        # The mismatch is in the reference; reproduced on purpose.
        return bits, logp, skip_kl_penalty(q, self.config.skip_target)

    def _unroll(
        self,
        batch: int,
        ops: Tensor | None = None,
        skips: Tensor | None = None,
        generator: torch.Generator | None = None,
        draw: bool = False,
    ) -> ControllerSample:
        """Run the controller over all layers; decisions are forced, sampled or greedy."""
        cfg, dev = self.config, self.device
        n_layers = cfg.num_layers
        u_ops = _unit_uniforms((batch, n_layers), dev, generator) if draw else None
        u_skip = _unit_uniforms((batch, n_layers, n_layers), dev, generator) if draw else None
        hc = (torch.zeros(batch, cfg.lstm_size, device=dev), torch.zeros(batch, cfg.lstm_size, device=dev))
        x = self.g_emb.expand(batch, -1)
        anchors: list[Tensor] = []
        anchors_w1: list[Tensor] = []
        op_list: list[Tensor] = []
        skip_rows = torch.zeros(batch, n_layers, n_layers, dtype=torch.bool, device=dev)
        logp_terms: list[Tensor] = []
        kl_terms: list[Tensor] = []
        for k in range(n_layers):
            hc = self.lstm(x, hc)
            op, op_logp = self._op_step(hc[0], _at(ops, k), _at(u_ops, k))
            op_list.append(op)
            logp_terms.append(op_logp[:, None])
            hc = self.lstm(self.op_emb(op), hc)
            if k > 0:
                stacked = torch.stack(anchors, 1)
                bits, skip_logp, kl = self._skip_step(
                    hc[0], stacked, torch.stack(anchors_w1, 1), _at(skips, k, k), _at(u_skip, k, k)
                )
                skip_rows[:, k, :k] = bits
                logp_terms.append(skip_logp)
                kl_terms.append(kl.sum(1))
                chosen = bits.to(stacked.dtype)
                x = (chosen[:, None, :] @ stacked).squeeze(1) / (1.0 + chosen.sum(1, keepdim=True))
            else:
                x = self.g_emb.expand(batch, -1)
            anchors.append(hc[0])
            anchors_w1.append(self.attn_anchor(hc[0]))
        return self._collect(torch.stack(op_list, 1), skip_rows, torch.cat(logp_terms, 1), kl_terms)

    def _collect(self, ops: Tensor, skips: Tensor, logp: Tensor, kl_terms: list[Tensor]) -> ControllerSample:
        """Reduce per-decision terms to per-architecture totals."""
        if kl_terms:
            # The reference takes reduce_mean over its list of per-layer KL sums; that list has one
            # entry per layer with skip decisions (layers 1..L-1), so the divisor is L - 1.
            penalty = torch.stack(kl_terms, 1).mean(1)
        else:
            penalty = torch.zeros(ops.shape[0], device=ops.device)
        return ControllerSample(
            ops=ops,
            skips=skips,
            log_prob=logp.sum(1),
            entropy=(-logp * logp.exp()).sum(1).detach(),
            skip_penalty=penalty,
            skip_count=skips.sum((1, 2)),
        )

    def sample(self, batch: int, generator: torch.Generator | None = None) -> ControllerSample:
        """Draw `batch` architectures at once (one batched LSTM pass)."""
        if batch <= 0:
            raise ValueError(f"batch must be > 0, got {batch}")
        return self._unroll(batch, generator=generator, draw=True)

    def evaluate(self, ops: Tensor, skips: Tensor) -> ControllerSample:
        """Teacher-force the given architectures and return their log-probs, entropy and penalty."""
        self._check_arch(ops, skips)
        return self._unroll(ops.shape[0], ops=ops.to(self.device), skips=skips.to(self.device))

    def log_prob(self, ops: Tensor, skips: Tensor) -> Tensor:
        """Teacher-forced log-probability [B] of the given architectures."""
        return self.evaluate(ops, skips).log_prob

    @torch.no_grad()
    def greedy(self) -> tuple[list[int], list[list[int]]]:
        """The most likely decision at every step: (op per layer, skip bits per layer; layer k has k)."""
        out = self._unroll(1)
        ops = out.ops[0].tolist()
        skips = [out.skips[0, k, :k].to(torch.int64).tolist() for k in range(self.config.num_layers)]
        return ops, skips

    def _check_arch(self, ops: Tensor, skips: Tensor) -> None:
        """Validate teacher-forcing input shapes, dtypes and ranges."""
        n_layers, n_ops = self.config.num_layers, self.config.num_ops
        if ops.dim() != 2 or ops.shape[1] != n_layers or ops.dtype != torch.long:
            raise ValueError(f"ops must be a LongTensor [B, {n_layers}], got {ops.dtype} {tuple(ops.shape)}")
        if ops.numel() and (ops.min() < 0 or ops.max() >= n_ops):
            raise ValueError(f"ops must lie in [0, {n_ops}), got range [{int(ops.min())}, {int(ops.max())}]")
        want = (ops.shape[0], n_layers, n_layers)
        if skips.dtype != torch.bool or tuple(skips.shape) != want:
            raise ValueError(f"skips must be a BoolTensor {want}, got {skips.dtype} {tuple(skips.shape)}")
        if torch.triu(skips).any():
            raise ValueError("skips must be strictly lower-triangular (skips[b, k, j] only for j < k)")


def set_tf_adam_eps(optimizer: torch.optim.Adam, eps: float) -> None:
    """Set each group's eps so torch's Adam takes TensorFlow's step for TF epsilon `eps`.

    TensorFlow adds eps to sqrt(v) before bias correction, torch after: the two agree when
    torch's eps is eps / sqrt(1 - beta2^t) at step t, i.e. about 32x larger at t = 1.
    """
    for group in optimizer.param_groups:
        state = optimizer.state.get(group["params"][0], {})
        t = int(state["step"]) + 1 if "step" in state else 1
        group["eps"] = eps / (1.0 - group["betas"][1] ** t) ** 0.5


class ControllerTrainer:
    """REINFORCE for the controller: Adam, a moving baseline, entropy bonus and skip penalty."""

    def __init__(self, controller: Controller, generator: torch.Generator | None = None) -> None:
        self.controller = controller
        self.config = controller.config
        self.generator = generator
        self.optimizer = torch.optim.Adam(
            controller.parameters(), lr=self.config.lr, betas=(0.0, 0.999), eps=self.config.adam_eps
        )
        self.baseline = torch.zeros((), device=controller.device)

    def update(self, reward_fn: Callable[[ControllerSample], Tensor]) -> dict[str, Tensor]:
        """One controller update from `num_aggregate` architectures sampled as one batch."""
        cfg = self.config
        sample = self.controller.sample(cfg.num_aggregate, self.generator)
        raw = reward_fn(sample)
        if not isinstance(raw, Tensor) or tuple(raw.shape) != (sample.batch,):
            shape = tuple(raw.shape) if isinstance(raw, Tensor) else type(raw).__name__
            raise ValueError(f"reward_fn must return a Tensor of shape ({sample.batch},), got {shape}")
        rewards = raw.detach().to(self.baseline.device, torch.float32) + cfg.entropy_weight * sample.entropy
        self.baseline, per_step = update_baseline(self.baseline, rewards, cfg.baseline_decay)
        # Each architecture's advantage uses the baseline right after its own update (reference order).
        advantage = rewards - per_step
        loss = (-sample.log_prob * advantage + cfg.skip_weight * sample.skip_penalty).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        set_tf_adam_eps(self.optimizer, self.config.adam_eps)
        self.optimizer.step()
        n_bits = max(cfg.num_layers * (cfg.num_layers - 1) // 2, 1)
        return {
            "reward": rewards.mean().detach(),
            "baseline": self.baseline.detach().clone(),
            "entropy": sample.entropy.mean(),
            "skip_rate": sample.skip_count.float().mean() / n_bits,
            "loss": loss.detach(),
        }

    def state_dict(self) -> dict[str, Any]:
        """A snapshot of everything needed to resume exactly: weights, Adam state, baseline, RNG."""
        # Deep copy: torch's state dicts alias live tensors, so a later update (or a second
        # trainer loading the same dict) would silently change or share the "snapshot".
        return copy.deepcopy(
            {
                "controller": self.controller.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "baseline": self.baseline.detach().clone(),
                "generator": None if self.generator is None else self.generator.get_state(),
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by `state_dict`."""
        missing = {"controller", "optimizer", "baseline", "generator"} - set(state)
        if missing:
            raise KeyError(f"controller trainer state lacks {', '.join(sorted(missing))}")
        if state["generator"] is not None and self.generator is None:
            raise ValueError("state holds a sampling-generator state but this trainer has no generator")
        state = copy.deepcopy(state)  # never share tensors with the caller's dict
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"].to(self.controller.device, torch.float32).clone()
        if state["generator"] is not None:
            self.generator.set_state(state["generator"])
