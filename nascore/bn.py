"""How BatchNorm normalises when a shared-weight network is evaluated: one rule for every search.

A supernet or shared ENAS child trains many architectures through the same BN layers, so
the running statistics average over all of them and fit none. The rule says which
statistics an evaluation uses:

- `running`: the running statistics (ordinary eval mode);
- `batch`: each evaluation batch's own statistics (running statistics left untouched);
- `recalibrate`: running statistics reset and re-estimated for the architecture being
  evaluated on a few training batches (`calibrate`), then used in eval mode.

Every rule restores the BN buffers afterwards, so evaluation never changes training.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from contract.names import BN_RULES  # noqa: F401 (the names live torch-free, for the command line)
from contract.names import DEFAULT_BN_RULE as DEFAULT_RULE  # noqa: F401

# DEFAULT_RULE was chosen by measurement (docs/enas-release.md, "BN statistics at evaluation"): on one
# trained ENAS child, batch statistics land within about a point of each architecture's own
# recalibrated statistics at no extra cost, where running statistics were up to 7.7 points low.


def _norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BN layers that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def check_rule(rule: str) -> str:
    """The rule itself, or a one-line error listing the valid ones."""
    if rule not in BN_RULES:
        raise ValueError(f"unknown BN evaluation rule {rule!r}; valid: {', '.join(BN_RULES)}")
    return rule


@contextmanager
def bn_eval(model: nn.Module, rule: str, calibrate: Callable[[], None] | None = None) -> Iterator[None]:
    """Put `model` in eval mode with BN statistics chosen by `rule`; restore everything on exit."""
    check_rule(rule)
    was_training = model.training
    norms = _norms(model)
    saved = [(m.momentum, {k: v.clone() for k, v in m.state_dict().items()}) for m in norms]
    model.eval()
    try:
        if rule == "batch":
            for m in norms:
                m.train()
                m.momentum = 0.0  # batch statistics normalise; the running ones stay as they were
        elif rule == "recalibrate":
            if calibrate is None:
                raise ValueError("the 'recalibrate' BN rule needs training batches to calibrate on")
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
                m.train()
            with torch.no_grad():
                calibrate()
            for m in norms:
                m.eval()
        yield
    finally:
        for m, (momentum, state) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.load_state_dict(state)
        model.train(was_training)
