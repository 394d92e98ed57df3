"""The speed levers side by side: routed vs sequential rewards, flat vs per-tensor child update.

For both ENAS spaces in one run, at the paper's structure (12 layers x 36 channels, 20 children
per controller update) on small images, where the work per kernel is small and the count of
kernels sets the time, as on a GPU (launch-bound there):
- one controller update (rewards of 20 children + REINFORCE step) by the sequential and the
  routed path, under the search's BN rule: ms per update, and aten ops per update counted by
  torch.profiler (ops called from Python; each is about one kernel launch on a GPU);
- one child update after the backward, per-tensor lists vs flat buffers: the same two figures.
Ratios are sequential / routed and per-tensor / flat. CPU milliseconds on a shared machine are
noisy (the minimum of `repeat` runs is reported); the op counts are exact.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from enas_ext.batched import EnasSpeed
from enas_ext.presets import configure
from enas_ext.search import EnasSearch
from nascore.data import Split, Splits, forever

SPACES = ("original", "extended")


# aten ops that launch no kernel on a GPU (views, metadata, allocation): not counted.
NO_KERNEL = frozenset(f"aten::{n}" for n in (
    "view", "reshape", "_reshape_alias", "as_strided", "expand", "slice", "select", "unsqueeze", "squeeze",
    "permute", "t", "transpose", "flatten", "unflatten", "alias", "detach", "detach_", "lift_fresh", "empty",
    "empty_like", "empty_strided", "resize_", "split", "unbind", "chunk", "narrow", "_unsafe_view", "numpy_T",
    "view_as", "result_type", "item", "_local_scalar_dense", "is_nonzero", "to", "lift_fresh_copy"))


def kernel_ops(fn) -> int:
    """Kernel-like aten ops fn() makes: outermost aten calls (what Python dispatches), views and
    allocations left out. Each is about one kernel launch on a GPU; torch's foreach ops count once."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()

    def outermost(e) -> bool:
        p = e.cpu_parent
        while p is not None:
            if p.name.startswith("aten::"):
                return False
            p = p.cpu_parent
        return True

    return sum(1 for e in prof.events() if e.name.startswith("aten::") and e.name not in NO_KERNEL and outermost(e))


def _best_ms(fn, repeat: int) -> float:
    """Fastest of `repeat` calls, in ms."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1000 * best


def _search(space: str, size: dict, routed: bool, flat: bool) -> EnasSearch:
    """A search of `size` (image, batch, layers, channels, aggregate) on random images."""
    image, batch = size["image"], size["batch"]
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 3, image, image), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n,), generator=g))

    cfg = configure("paper", space, {"batch_size": batch, "layers": size["layers"], "channels": size["channels"],
                                     "controller": {"num_aggregate": size["num_aggregate"]},
                                     "data": {"valid_size": 40 * batch}})
    splits = Splits(split(4 * batch), split(40 * batch), split(1), (125.0,) * 3, (63.0,) * 3, "synthetic")
    speed = EnasSpeed(batched_rewards="on" if routed else "off", flat_update="on" if flat else "off")
    torch.manual_seed(0)
    return EnasSearch(cfg, splits, torch.device("cpu"), seed=0, speed=speed)


def _update_figures(search: EnasSearch, repeat: int) -> dict:
    """ms and kernel-like ops of one controller update, and of its reward pass alone, under the BN rule."""
    stream = forever(search.reward_loader)
    with search.judging():
        router = search.routed()

        def update() -> None:
            search.trainer.update(lambda s: search.rewards(s, stream, router))

        def rewards() -> None:
            search.rewards(sample, stream, router)

        update()  # warm-up
        with torch.no_grad():
            sample = search.controller.sample(search.cfg.controller.num_aggregate, search.trainer.generator)
        return {"update_ms": _best_ms(update, repeat), "update_ops": kernel_ops(update),
                "rewards_ms": _best_ms(rewards, repeat), "rewards_ops": kernel_ops(rewards)}


def _child_update_figures(search: EnasSearch, repeat: int) -> dict:
    """ms and ops of one child update (L2, per-tensor clip, Nesterov SGD) after a backward."""
    x, y = next(iter(search.train_loader))
    layers = search.cfg.layers
    ops, skips = [0] * layers, [[1] * k for k in range(layers)]

    update = search.update_child
    F.cross_entropy(search.child(x, ops, skips), y).backward()
    update()  # the first update starts the momentum
    times = []
    for _ in range(repeat):
        F.cross_entropy(search.child(x, ops, skips), y).backward()
        times.append(_best_ms(update, 1))
    F.cross_entropy(search.child(x, ops, skips), y).backward()
    return {"ms": min(times), "ops": kernel_ops(update), "tensors": len(search.params)}


def run(image: int = 8, batch: int = 8, repeat: int = 3, layers: int = 12, channels: int = 36,
        num_aggregate: int = 20) -> dict:
    """Both levers for both spaces, with the sequential/routed and per-tensor/flat ratios."""
    torch.set_num_threads(1)
    size = {"image": image, "batch": batch, "layers": layers, "channels": channels, "num_aggregate": num_aggregate}
    out = {"bench": "enas_levers", "device": "cpu", "torch": torch.__version__, **size, "repeat": repeat,
           "spaces": {}}
    for space in SPACES:
        seq = _update_figures(_search(space, size, False, False), repeat)
        routed = _update_figures(_search(space, size, True, False), repeat)
        lists = _child_update_figures(_search(space, size, False, False), repeat)
        flat = _child_update_figures(_search(space, size, False, True), repeat)
        out["spaces"][space] = {
            "controller_update": {"sequential": seq, "routed": routed,
                                  **{f"{k}_ratio": seq[k] / routed[k] for k in seq}},
            "child_update": {"per_tensor": lists, "flat": flat, "time_ratio": lists["ms"] / flat["ms"],
                             "ops_ratio": lists["ops"] / flat["ops"]}}
    return out
