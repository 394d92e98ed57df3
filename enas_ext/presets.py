"""ENAS macro search configuration and its presets: smoke (CPU), quick (one GPU), paper (the reference).

`paper` is the official macro search script's setting (docs/enas-release.md).
Everything else scales it down; the controller keeps the reference's hyper-parameters
except how many updates and samples it gets per epoch at the small scales.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from contract.names import ENAS_BRANCH_MODES, ENAS_OPTION_SETS, ENAS_SPACES
from contract.names import SCALES as PRESETS
from enas_ext.controller import ControllerConfig
from nascore.bn import BN_RULES, DEFAULT_RULE
from nascore.config import ConfigError, deep_merge, from_dict
from nascore.data import AugmentConfig, DataConfig
from nascore.spaces import Space, SpaceLike, check_method_space, resolve_space


@dataclass(frozen=True)
class EnasSearchConfig:
    """Everything an ENAS macro search trial needs besides seed, device and output folder."""

    space: str = "original"  # op space: original (6 ENAS ops) or extended (18)
    layers: int = 12  # searched layers; reductions after layers L//3-1 and 2(L//3)-1
    channels: int = 36  # child width, constant during search (must be even: factorized reductions)
    batch_size: int = 128  # child training batch, also the controller's reward batch (reference: 128)
    epochs: int = 310  # child epochs, each followed by the controller's updates
    lr_max: float = 0.05  # child SGD lr at the start of every cosine cycle
    lr_min: float = 0.0005  # child SGD lr at the end of every cosine cycle
    lr_t0: int = 10  # length in epochs of the first cosine cycle
    lr_tmul: int = 2  # each cycle is this many times longer than the one before (restarts 10, 30, 70, 150)
    momentum: float = 0.9  # SGD momentum (Nesterov when `nesterov`)
    nesterov: bool = True  # Nesterov momentum, as the reference
    # The reference adds l2 * sum(w^2) with l2 = 2.5e-4 to the loss; its gradient is 2 * l2 * w,
    # i.e. a weight decay of 5e-4, applied to every shared weight before clipping.
    weight_decay: float = 5e-4
    # Per-tensor norm clip of the child gradient, the release's intent (its clip mode "norm",
    # bound 5); the release's clipping is a no-op (a bug), so applying it is a listed deviation. 0 disables.
    grad_clip: float = 5.0
    keep_prob: float = 0.9  # dropout keep probability before the classifier, search only
    eval_batch: int = 100  # valid-accuracy batch; each batch gets its own sampled architecture
    num_samples: int = 50  # architectures drawn from the final controller into samples.json
    # Which op a layer runs during search: "intended" (the sampled op) or "as-released" (every
    # layer runs `released_op`, the release's last-built branch, whatever was sampled). The
    # controller, skips, rewards, evaluation and the final architecture are unchanged.
    branch_mode: str = "intended"
    released_op: str | None = None  # the op in the last-built role; None: the space's last op
    # BN statistics for rewards and valid accuracy (nascore.bn): running | batch | recalibrate.
    bn_eval: str = DEFAULT_RULE
    bn_calibrate_batches: int = 4  # recalibrate only: training batches per sampled architecture
    # Named option set (OPTION_SETS): "kit" keeps the kit's listed deviations from the release;
    # "release" is the release as a whole (its branch bug, running BN statistics, no clipping).
    options: str = "kit"
    controller: ControllerConfig = field(default_factory=ControllerConfig)  # LSTM + REINFORCE settings
    data: DataConfig = field(default_factory=DataConfig)  # splits: 45k train / 5k valid by default
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # child training: pad-4 crop + flip

    def __post_init__(self) -> None:
        if self.space not in ENAS_SPACES:
            raise ConfigError(f"unknown ENAS space {self.space!r}; valid: {', '.join(ENAS_SPACES)}")
        for name in ("layers", "channels", "batch_size", "epochs", "lr_t0", "lr_tmul", "eval_batch",
                     "num_samples", "bn_calibrate_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.channels % 2:
            raise ConfigError(f"channels must be even (factorized reductions halve it), got {self.channels}")
        if not 0.0 < self.keep_prob <= 1.0:
            raise ConfigError(f"keep_prob must be in (0, 1], got {self.keep_prob}")
        if not 0.0 <= self.lr_min <= self.lr_max:
            raise ConfigError(f"need 0 <= lr_min <= lr_max, got {self.lr_min}, {self.lr_max}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("weight_decay and grad_clip must be >= 0")
        if self.branch_mode not in ENAS_BRANCH_MODES:
            raise ConfigError(f"unknown branch_mode {self.branch_mode!r}; valid: {', '.join(ENAS_BRANCH_MODES)}")
        if self.bn_eval not in BN_RULES:
            raise ConfigError(f"unknown bn_eval {self.bn_eval!r}; valid: {', '.join(BN_RULES)}")
        self._check_options()

    def check_space(self, space: Space) -> None:
        """The config fits `space` (the resolved value it searches): same name, its op count, released_op in it."""
        if space.name != self.space:
            raise ConfigError(f"config space {self.space!r} but the search was handed space {space.name!r}")
        if self.released_op is not None and self.released_op not in space.ops:
            raise ConfigError(f"released_op {self.released_op!r} is not in the {self.space} space; "
                              f"valid: {', '.join(space.ops)}")
        if (self.controller.num_layers, self.controller.num_ops) != (self.layers, len(space)):
            raise ConfigError(f"controller.num_layers/num_ops ({self.controller.num_layers}, "
                              f"{self.controller.num_ops}) must match layers and the space "
                              f"({self.layers}, {len(space)})")

    def _check_options(self) -> None:
        """The named option set's values hold: "release" means all of the release, or it is refused."""
        if self.options not in OPTION_SETS:
            raise ConfigError(f"unknown ENAS option set {self.options!r}; valid: {', '.join(OPTION_SETS)}")
        wrong = [f"{k}={getattr(self, k)!r} (the set needs {v!r})"
                 for k, v in OPTION_SETS[self.options].items() if getattr(self, k) != v]
        if wrong:
            raise ConfigError(f"option set {self.options!r} conflicts with {', '.join(wrong)}; "
                              f"drop the override or use options 'kit'")


# What the release does as a whole, against the kit's deviations (docs/enas-release.md):
# its search-time branch bug, BN evaluated from moving averages, and its clipping, a no-op.
OPTION_SETS: dict[str, dict] = {
    "kit": {},
    "release": {"branch_mode": "as-released", "bn_eval": "running", "grad_clip": 0.0},
}
assert tuple(OPTION_SETS) == ENAS_OPTION_SETS  # the CLI offers the names before torch loads


def _base(name: str) -> dict:
    """The preset's values as a plain dict (space-independent)."""
    if name == "paper":
        return dataclasses.asdict(EnasSearchConfig())
    if name == "quick":
        # 21 epochs = cosine cycles of 3, 6 and 12: the reference's restart shape, ending a cycle.
        return deep_merge(dataclasses.asdict(EnasSearchConfig()), {"epochs": 21, "lr_t0": 3})
    if name == "smoke":
        # Well under a minute on a 2-core CPU: a small net, a 1500/300 subset, a few controller steps.
        return deep_merge(dataclasses.asdict(EnasSearchConfig()), {
            "layers": 6, "channels": 12, "batch_size": 32, "epochs": 3, "lr_t0": 3,
            "controller": {"train_steps": 5, "num_aggregate": 5},
            "data": {"valid_size": 300, "train_size": 1500},
        })
    raise ValueError(f"unknown scale {name!r}; valid: {', '.join(PRESETS)}")


def enas_space(space: SpaceLike) -> Space:
    """`space` resolved, failing in one line unless it is one of the spaces ENAS is set up for."""
    check_method_space("enas", space)  # the rule METHOD_SPACES states once, for every family
    return resolve_space(space)


def configure(preset: str, space: SpaceLike, overrides: dict | None = None) -> EnasSearchConfig:
    """The preset for `space` (a name or a resolved Space) with `overrides` (nested dicts) laid on top.

    The controller's num_layers and num_ops follow `layers` and the space unless an override
    sets them (a mismatch then fails). An `options` override lays its option set under the
    other overrides, which must agree with it. The config records the space's name; a space
    with more to it (m/K, extra ops, a planted op) travels beside it as the value.
    """
    value = enas_space(space)
    merged = deep_merge(_base(preset), {"space": value.name})
    option_set = (overrides or {}).get("options", "kit")
    merged = deep_merge(merged, OPTION_SETS.get(option_set, {}))  # unknown names fail in the config check
    merged = deep_merge(merged, overrides)
    ctrl_over = (overrides or {}).get("controller") or {}
    if isinstance(merged.get("controller"), dict):
        if "num_layers" not in ctrl_over:
            merged["controller"]["num_layers"] = merged.get("layers")
        if "num_ops" not in ctrl_over:
            merged["controller"]["num_ops"] = len(value)
    if merged.get("released_op") is None:
        merged["released_op"] = value.ops[-1]  # recorded by name in config.json
    cfg = from_dict(EnasSearchConfig, merged, f"enas {preset} config")
    cfg.check_space(value)
    return cfg


def preset(name: str, space: str = "original") -> EnasSearchConfig:
    """The named preset (smoke, quick, paper) for `space`."""
    return configure(name, space)
