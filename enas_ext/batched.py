"""Many architectures of one ENAS shared child scored in one routed pass, each on its own images.

The controller's rewards (20 children per update) and the epoch's validation (a fresh child per
batch) score architectures of the same frozen child. One pass per group instead of one per child:
- images are interleaved image-major, x[i*n + c] = image i of child c, a [B*n, C, H, W] tensor
  that every per-sample op (conv, pool, ReLU, pad, cat, mean, linear) takes as a plain batch;
- each BN views it as [B, n*C, H, W], so channel c*C + ch holds child c's channel ch: one native
  batch_norm gives every child the statistics of its own B images (rule `batch`), or the
  running statistics' per-channel affine (rule `running`); nothing is written to the BN buffers;
- layer k runs each chosen op once, on the children that chose it (gather, op, scatter back);
  skips are added per child in increasing j, the sequential order, so the sums are the same;
- a stored output is reduced if any child still reads it (the others never reach their logits).
Host work: the routing tables come from the architectures already on the host (the update's one
device-to-host copy) and travel in one pinned, non-blocking host-to-device copy.
The `recalibrate` rule re-estimates statistics per architecture: it stays on the sequential path.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from enas_ext.child import FactorizedReduction, SharedChild, check_arch, last_reads
from nascore.ops import PLANTED_KINDS, parse_op

Arch = tuple[list[int], list[list[int]]]
Batch = tuple[Tensor, Tensor]
ROUTED_RULES = ("batch", "running")  # BN rules the routed pass computes exactly
SWITCHES = ("auto", "on", "off")
SPEED_ENV = "NASIB_ENAS_SPEED"  # e.g. "batched_rewards=on,flat_update=off"


@dataclass(frozen=True)
class EnasSpeed:
    """How an ENAS search computes, not what: every setting gives the same numbers up to rounding."""

    batched_rewards: str = "auto"  # routed pass for rewards and validation: on, off, auto (CUDA, rule allows)
    flat_update: str = "auto"  # the child's update on flat buffers (nascore.flat): on, off, auto (CUDA)
    eval_chunk: int = 25  # most children per routed validation pass (memory: ~25 x batch images at once)

    def __post_init__(self) -> None:
        for name in ("batched_rewards", "flat_update"):
            if getattr(self, name) not in SWITCHES:
                raise ValueError(f"{SPEED_ENV}: {name}={getattr(self, name)!r}; valid: {', '.join(SWITCHES)}")
        if int(self.eval_chunk) < 1:
            raise ValueError(f"{SPEED_ENV}: eval_chunk must be >= 1, got {self.eval_chunk!r}")

    @classmethod
    def from_env(cls) -> EnasSpeed:
        """Defaults, with `key=value` pairs from $NASIB_ENAS_SPEED (one-line error on a bad pair)."""
        pairs = [p for p in os.environ.get(SPEED_ENV, "").split(",") if p.strip()]
        known = {f.name: f.type for f in fields(cls)}
        over: dict[str, object] = {}
        for pair in pairs:
            key, _, value = (s.strip() for s in pair.partition("="))
            if key not in known:
                raise ValueError(f"{SPEED_ENV}: unknown setting {key!r}; valid: {', '.join(known)}")
            over[key] = int(value) if key == "eval_chunk" and value.isdigit() else value
        return replace(cls(), **over)

    def batched(self, device: torch.device, rule: str, op_names: Sequence[str]) -> bool:
        """Whether rewards/validation use the routed pass on `device` under BN rule `rule`."""
        if self.batched_rewards == "off" or rule not in ROUTED_RULES:
            return False
        # Planted ops draw noise per call: a routed call draws other samples (same distribution).
        planted = any(parse_op(n).kind in PLANTED_KINDS for n in op_names)
        return self.batched_rewards == "on" or (device.type == "cuda" and not planted)

    def flat(self, device: torch.device) -> bool:
        """Whether the child's update runs on flat buffers (auto: on CUDA, where launches dominate)."""
        return self.flat_update == "on" or (self.flat_update == "auto" and device.type == "cuda")


def interleave(batches: Sequence[Batch]) -> Batch:
    """[(x_c, y_c)] of n children -> (x [B*n, ...], y [B*n]) with x[i*n + c] = x_c[i]."""
    xs, ys = zip(*batches, strict=True)
    return torch.stack(xs, 1).flatten(0, 1), torch.stack(ys, 1).flatten()


def _kids(t: Tensor, m: int) -> Tensor:
    """[B*m, ...] -> [B, m, rest]: the child axis of an interleaved tensor."""
    return t.view(t.shape[0] // m, m, -1)


class RoutedChild:
    """The routed pass over a frozen SharedChild (build one per phase: it caches tiled BN affines)."""

    def __init__(self, child: SharedChild, rule: str):
        if rule not in ROUTED_RULES:
            raise ValueError(f"the routed pass covers BN rules {', '.join(ROUTED_RULES)}, not {rule!r}")
        self.child, self.rule = child, rule
        self._widest = 1  # children in the widest pass so far
        self._tiles: dict[int, tuple[int, list[Tensor | None]]] = {}

    def _tiled(self, bn: nn.BatchNorm2d, n: int) -> list[Tensor | None]:
        """bn's affine (and running statistics) repeated for n children: once per phase, then views."""
        have = self._tiles.get(id(bn))
        if have is None or have[0] < n:  # tiled for the widest pass so far: every group slices views of it
            vals = (bn.weight, bn.bias, bn.running_mean, bn.running_var)
            have = self._tiles[id(bn)] = (self._widest, [None if v is None else v.detach().repeat(self._widest)
                                                         for v in vals])
        c = bn.num_features * n
        return [None if v is None else v[:c] for v in have[1]]

    def _bn(self, x: Tensor, n: int, bn: nn.BatchNorm2d) -> Tensor:
        """BN of each child's own slice: [B*n, C, H, W] viewed as [B, n*C, H, W]."""
        b, c, h, w = x.shape
        wt, bs, rm, rv = self._tiled(bn, n)
        xv = x.view(b // n, n * c, h, w)
        if self.rule == "running":
            return F.batch_norm(xv, rm, rv, wt, bs, False, 0.0, bn.eps).view_as(x)
        return F.batch_norm(xv, None, None, wt, bs, True, 0.0, bn.eps).view_as(x)

    def _run(self, mod: nn.Module, x: Tensor, n: int) -> Tensor:
        """mod(x) with every BN inside it applied per child."""
        if isinstance(mod, nn.BatchNorm2d):
            return self._bn(x, n, mod)
        if isinstance(mod, nn.Sequential):
            for m in mod:
                x = self._run(m, x, n)
            return x
        if isinstance(mod, FactorizedReduction):
            both = torch.cat([mod.path1(x), mod.path2(F.pad(x, (-1, 1, -1, 1)))], 1)
            return self._bn(both, n, mod.bn)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mod.modules()):
            raise TypeError(f"routed pass: {type(mod).__name__} holds a BN it cannot apply per child")
        return mod(x)

    def _plan(self, archs: Sequence[Arch], device: torch.device):
        """Per layer (op groups, skip groups) with index spans into one device tensor of child indices."""
        child, n, L = self.child, len(archs), self.child.num_layers
        ops = [[o if child.run_op is None else child.run_op for o in a[0]] for a in archs]
        flat: list[int] = []

        def span(members: list[int]) -> tuple[int, int] | None:
            if len(members) == n:
                return None  # every child: no gather
            flat.extend(members)
            return len(flat) - len(members), len(members)

        plan = []
        for k in range(L):
            groups: dict[int, list[int]] = {}
            for c in range(n):
                groups.setdefault(ops[c][k], []).append(c)
            skips = [(j, span(m)) for j in range(k) if (m := [c for c in range(n) if archs[c][1][k][j]])]
            plan.append(([(o, span(m)) for o, m in groups.items()], skips))
        idx = torch.tensor(flat or [0], dtype=torch.long)
        if device.type == "cuda":
            idx = idx.pin_memory().to(device, non_blocking=True)
        return plan, idx

    @torch.no_grad()
    def logits(self, x: Tensor, archs: Sequence[Arch]) -> Tensor:
        """Logits [B*n, classes] of interleaved images x, child c = archs[c]."""
        child, n = self.child, len(archs)
        self._widest = max(self._widest, n)
        for ops, skips in archs:
            check_arch(ops, skips, child.num_layers, len(child.op_names))
        last = [last_reads(s, child.num_layers) for _, s in archs]
        plan, idx = self._plan(archs, x.device)

        def sel(s: tuple[int, int]) -> Tensor:
            return idx[s[0]:s[0] + s[1]]

        stored: list[Tensor | None] = [self._run(child.stem, x, n)]
        for k, (op_groups, skip_groups) in enumerate(plan):
            h = stored[-1]
            if len(op_groups) == 1 and op_groups[0][1] is None:
                out = self._run(child.cells[k][op_groups[0][0]], h, n)
            else:
                out = torch.empty_like(h)
                for o, s in op_groups:
                    part = _kids(h, n).index_select(1, sel(s)).view(-1, *h.shape[1:])
                    _kids(out, n).index_copy_(1, sel(s), _kids(self._run(child.cells[k][o], part, s[1]), s[1]))
            if k > 0:
                for j, s in skip_groups:  # increasing j: each child's sum in the sequential order
                    if s is None:
                        out = out + stored[j]
                    else:
                        _kids(out, n).index_add_(1, sel(s), _kids(stored[j], n).index_select(1, sel(s)))
                out = self._bn(out, n, child.skip_bn[k - 1])
            stored.append(out)
            if k in child.reduce_at:
                reds = child.reductions[child.reduce_at.index(k)]
                stored = [self._run(red, t, n) if t is not None and any(lr[j] > k for lr in last) else None
                          for j, (t, red) in enumerate(zip(stored, reds, strict=True))]
        return child.fc(child.dropout(stored[-1].mean((2, 3))))

    def hits(self, batches: Sequence[Batch], archs: Sequence[Arch]) -> Tensor:
        """Correct predictions per child [n] (int64, on the device), child c on batches[c]."""
        x, y = interleave(batches)
        return (self.logits(x, archs).argmax(1) == y).view(-1, len(archs)).sum(0)

    def correct(self, batches: Sequence[Batch], archs: Sequence[Arch], chunk: int) -> Tensor:
        """Total correct predictions, child c on batches[c]; runs of equal batch size, `chunk` at most."""
        total = torch.zeros((), device=batches[0][0].device)
        start = 0
        while start < len(batches):
            end = start + 1
            size = len(batches[start][1])
            while end < len(batches) and end - start < chunk and len(batches[end][1]) == size:
                end += 1
            total += self.hits(batches[start:end], archs[start:end]).sum()
            start = end
        return total
