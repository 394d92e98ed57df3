"""Weight updates whose kernel count does not grow with the number of parameter tensors.

`FlatSGD`: the ENAS child's update (L2 folded into the gradient, TF's per-tensor clip_by_norm,
Nesterov momentum SGD) over parameters and gradients that are views into one flat buffer each.
Autograd accumulates into the gradient views in place, so the whole update is a fixed handful
of kernels on three buffers, whatever the space (466 tensors in the 6-op child, 1,330 in the
18-op one). A per-tensor version walks lists: torch's foreach division by a list of 0-dim norms
takes its slow path, one launch per tensor. Arithmetic per element is the same:
    g += wd * p;  g = g / max(|g|_tensor, b) * b;  buf = m * buf + g;  g += m * buf;  p -= lr * g
Only the per-tensor norm is summed in another order (a segment sum), so results agree to rounding.
Resume: `state_dict()` has torch.optim.SGD's layout (per-parameter momentum buffers), so existing
checkpoints load; loading copies into the flat buffer, never replacing the views.

`ChoiceParams` and `step_on`: a one-shot weight step over only the tensors that ran.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

ALIGN = 16  # elements: every view starts 64-byte aligned, as vectorised kernels and cuDNN prefer


class FlatSGD:
    """Nesterov/momentum SGD with L2 and a per-tensor norm clip on flat parameter/gradient buffers."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float, momentum: float, nesterov: bool,
                 weight_decay: float = 0.0, clip: float = 0.0):
        self.params = list(params)
        if not self.params:
            raise ValueError("FlatSGD needs at least one parameter")
        self.lr, self.momentum, self.nesterov, self.wd, self.clip = lr, momentum, nesterov, weight_decay, clip
        sizes = [p.numel() for p in self.params]
        self.offsets = [0]
        for n in sizes:
            self.offsets.append(self.offsets[-1] + -(-n // ALIGN) * ALIGN)
        total, first = self.offsets[-1], self.params[0]
        self.P, self.G, self.B = (torch.zeros(total, device=first.device, dtype=first.dtype) for _ in range(3))
        # Segment id of every element (the padding forms one extra segment that is always zero).
        seg = torch.full((total,), len(self.params), dtype=torch.long)
        with torch.no_grad():
            for i, (p, n) in enumerate(zip(self.params, sizes, strict=True)):
                o = self.offsets[i]
                self.P[o:o + n].copy_(p.reshape(-1))
                p.data = self.P[o:o + n].view_as(p)
                p.grad = self.G[o:o + n].view_as(p)  # every weight keeps a gradient: L2 reaches unused ones
                seg[o:o + n] = i
        self.seg = seg.to(first.device)
        self._sq = torch.zeros(len(self.params) + 1, device=first.device, dtype=first.dtype)  # per-tensor |g|^2
        self._momentum_started = False  # torch's SGD sets buf = g (not m*0 + g) on the first step

    def _view(self, flat: Tensor, i: int) -> Tensor:
        """Parameter i's slice of a flat buffer, shaped like the parameter."""
        o, p = self.offsets[i], self.params[i]
        return flat[o:o + p.numel()].view_as(p)

    @torch.no_grad()
    def step(self) -> None:
        """One update from the accumulated gradients; gradients are zeroed afterwards (kept, not freed)."""
        P, G, B = self.P, self.G, self.B
        if self.wd > 0:
            G.add_(P, alpha=self.wd)
        if self.clip > 0:
            sq = self._sq.zero_().index_add_(0, self.seg, G * G)
            G.div_(sq.sqrt_().clamp_min_(self.clip)[self.seg]).mul_(self.clip)
        if self.momentum != 0:
            if self._momentum_started:
                B.mul_(self.momentum).add_(G)
            else:
                B.copy_(G)
                self._momentum_started = True
            if self.nesterov:
                G.add_(B, alpha=self.momentum)
            else:
                G.copy_(B)
        P.add_(G, alpha=-self.lr)
        G.zero_()

    def zero_grad(self) -> None:
        """Zero every gradient (one kernel)."""
        self.G.zero_()

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.SGD's layout: per-parameter momentum buffers (copies) and one param group."""
        state = {}
        if self._momentum_started:
            state = {i: {"momentum_buffer": self._view(self.B, i).clone()} for i in range(len(self.params))}
        group = {"lr": self.lr, "momentum": self.momentum, "dampening": 0, "weight_decay": 0,
                 "nesterov": self.nesterov, "maximize": False, "foreach": None, "differentiable": False,
                 "fused": None, "params": list(range(len(self.params)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load an SGD-shaped state (this class's or torch.optim.SGD's) into the flat momentum buffer."""
        groups = state["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError(f"optimizer state has {sum(len(g['params']) for g in groups)} parameters in "
                             f"{len(groups)} group(s); this update has {len(self.params)} in one")
        bufs = [state["state"].get(i, {}).get("momentum_buffer") for i in groups[0]["params"]]
        self.lr = float(groups[0]["lr"])
        self._momentum_started = any(b is not None for b in bufs)
        with torch.no_grad():
            self.B.zero_()
            for i, b in enumerate(bufs):
                if b is not None:
                    self._view(self.B, i).copy_(b)

    def momentum_buffers(self) -> list[Tensor]:
        """Per-parameter views of the momentum buffer."""
        return [self._view(self.B, i) for i in range(len(self.params))]


class ChoiceParams:
    """The parameters a one-shot forward runs: the backbone's plus those of each chosen (layer, op).

    `backbone` must precede every choice's tensors in `model_params`, and choices are listed per
    layer in op order, so `ran` returns its tensors in the model's own order (the order a whole-model
    clip_grad_norm_ would see them in, hence the same norm)."""

    def __init__(self, model_params: Sequence[Tensor], backbone: Sequence[Tensor],
                 choices: Sequence[Sequence[Sequence[Tensor]]]):
        pos = {id(p): i for i, p in enumerate(model_params)}
        self.backbone = list(backbone)
        self.choices = [[list(c) for c in layer] for layer in choices]
        flat = [pos[id(p)] for p in self.backbone] + [pos[id(p)] for layer in self.choices for c in layer for p in c]
        if flat != sorted(flat) or len(flat) != len(model_params):
            raise ValueError("backbone and choices must cover the model's parameters in its own order")

    def ran(self, ops: Sequence[Sequence[int]]) -> list[Tensor]:
        """Backbone tensors, then each layer's chosen ops' tensors (each op once, in op order)."""
        out = list(self.backbone)
        for layer, chosen in zip(self.choices, ops, strict=True):
            for i in sorted(set(chosen)):
                out.extend(layer[i])
        return out


def step_on(optimizer: torch.optim.Optimizer, params: list[Tensor]) -> None:
    """optimizer.step() over only `params` (its state stays keyed by tensor, so nothing else changes)."""
    (group,) = optimizer.param_groups
    everything = group["params"]
    group["params"] = params
    try:
        optimizer.step()
    finally:
        group["params"] = everything
