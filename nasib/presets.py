"""NASIB search settings: one frozen config, three presets (smoke, quick, paper), strict overrides.

Weights: the paper's recipe (SGD momentum 0.9, cosine from lr 0.01, gradient clipping, L2;
its sentence says the same recipe trains the final network), one cosine over the planned
epochs so a budgeted search anneals by its (re-planned) end. `ENAS_CHILD` holds the ENAS
macro child's settings (Nesterov, lr 0.05 -> 0.0005), one override away
(`--weights-recipe enas`). Alphas: the paper is silent; the default is ProxylessNAS's Adam
(betas (0, 0.999)) kept sparse to the sampled pair, at the rate the planted-op check and
the real-data records support (docs/nasib.md, the alpha optimiser); SGD with momentum is
`alpha_optimizer="sgd"`.

Width: 36 channels at the stem (ENAS's width), doubling at the three reductions, gives a
derived network of about 3.1M parameters when every layer is a dense 3x3 (fewer with
separable or pooling ops) - the few-million range of the paper's Table 1 (NASIB: 6.71M).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from contract.budget import Budget
from contract.names import SCALES as PRESETS
from contract.names import STRATEGIES
from nascore.bn import DEFAULT_RULE, check_rule
from nascore.config import deep_merge, from_dict
from nascore.data import AugmentConfig, DataConfig
from nascore.spaces import Space, SpaceLike, check_method_space, get_space, resolve_space
from nasib.policy import ALPHA_OPTIMIZERS

ALPHA_LR = 0.02  # default alpha Adam rate: chosen by the planted-op check (docs/nasib.md, the alpha optimiser)
# The ENAS macro child's weight recipe, one override away from the paper's (`--weights-recipe enas`).
ENAS_CHILD = {"lr_max": 0.05, "lr_min": 0.0005, "momentum": 0.9, "nesterov": True}
WEIGHT_RECIPES = {"paper": {}, "enas": ENAS_CHILD}


@dataclass(frozen=True)
class NasibSearchConfig:
    """Everything a NASIB-style one-shot search needs, besides where and with which seed it runs."""

    # One of METHOD_SPACES["nasib"]: "narrow" (NASIB-1, 7 ops) or "superkernel" (NASIB-2, m*m ops). The
    # search runs a Space value of this name and these m/K (a planted one too: `configure`, `check_space`).
    space: str = "superkernel"
    m: int = 9  # superkernel side: every i x j kernel with i, j <= m (m*m ops)
    K: int = 9  # superkernel kernels with i*j > K are depthwise-separable, the others dense
    layers: int = 12  # searched layers; 3 factorized reductions split them into 4 stages
    channels: int = 36  # stem width; doubles at every reduction (36 -> 288)
    batch_size: int = 128  # images per weight step and per alpha step
    lr_max: float = 0.01  # weight SGD learning rate at the start of the cosine (the paper's 0.01)
    lr_min: float = 0.0  # weight SGD learning rate at the end of the planned epochs
    momentum: float = 0.9  # weight SGD momentum (the paper's 0.9)
    nesterov: bool = False  # Nesterov momentum (ENAS's child uses it; the paper says plain momentum)
    # cuDNN autotuning of every (kernel shape, batch shape) pair on first use. Off by default: the
    # 81-op space meets hundreds of pairs, each tuned the first time it runs, which a budgeted
    # search pays for and which inflated the timing run's epoch estimate on an H200 (results/bench/README.md).
    cudnn_autotune: bool = False
    weight_decay: float = 5e-4  # L2 weight decay on the supernet weights
    grad_clip: float = 5.0  # max global gradient norm of a weight step
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # weight-step augmentation (pad-crop, flip)
    alpha_optimizer: str = "adam"  # adam (ProxylessNAS, sparse) or sgd (sparse momentum SGD)
    alpha_lr: float = ALPHA_LR  # alpha learning rate (at the start of its cosine when alpha_lr_min is set)
    alpha_lr_min: float | None = None  # None: constant alpha_lr (ProxylessNAS); else cosine down to this
    alpha_momentum: float = 0.0  # Adam beta1 (ProxylessNAS: 0) or SGD momentum (paper-style: 0.9)
    alpha_init_std: float = 1e-3  # alphas (besides priors) start at this * randn, so no tie picks by op order
    alpha_steps: float | None = None  # alpha steps per weight step; None: the strategy's rule (nasib, darts: 1)
    bn_eval: str = DEFAULT_RULE  # BN statistics at evaluation (nascore.bn): running, batch or recalibrate
    lam: float = 0.1  # P2 temperature lambda: softmax(alpha / lambda); low = exploit
    k: float = 0.1  # exploration probability p of the last epoch (p_0 = 1)
    priors: dict[str, float] = field(default_factory=dict)  # initial alpha per named op (others 0)
    strategy: str = "nasib"  # nasib (two-path), random, darts (first order) or snas; darts/snas need <= 10 ops
    epochs: int | None = None  # fixed number of epochs (bypasses the budget); exactly one of epochs/budget
    # Wall-clock budget ("90s", "45m", "2h", "1.5d") or target epochs ("25ep"), parsed once (contract.budget);
    # a Budget is its text, so config.json records it as written.
    budget: Budget | None = Budget.parse("2h")
    num_samples: int = 50  # architectures sampled into samples.json at the end
    eval_batch_size: int = 256  # batch of the per-epoch validation pass (no gradients)
    warmup_steps: int | None = None  # untimed steps before timing; None: ceil(ops/2), so every op has run
    measure_steps: int = 20  # timed weight and alpha steps that estimate an epoch
    data: DataConfig = field(default_factory=DataConfig)  # CIFAR-10 location and split sizes

    def __post_init__(self) -> None:
        _check(self)

    def named_space(self) -> Space:
        """The space this config's fields name: `space` shaped by m and K (no planted op)."""
        return get_space(self.space, m=self.m, k=self.K)

    def op_names(self) -> tuple[str, ...]:
        """The ops of the space this config names (a search handed another value runs that one's)."""
        return self.named_space().ops

    def check_space(self, space: Space) -> None:
        """The config fits `space`, the value it searches: same name and, for a superkernel, same m and K."""
        if space.name != self.space:
            raise ValueError(f"config space {self.space!r} but the search was handed space {space.name!r}")
        if space.m is not None and (space.m, space.K) != (self.m, self.K):
            raise ValueError(f"config space {self.space} (m={self.m}, K={self.K}) but the search was handed "
                             f"space {space.name} (m={space.m}, K={space.K})")


def _check(cfg: NasibSearchConfig) -> None:
    """One-line errors naming the field."""
    check_method_space("nasib", cfg.space)
    for name in ("m", "K", "channels", "batch_size", "num_samples", "eval_batch_size", "measure_steps"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.layers < 4:
        raise ValueError(f"layers must be >= 4 (3 reductions sit between them), got {cfg.layers}")
    ops = cfg.op_names()
    if len(ops) < 2:
        raise ValueError(f"space {cfg.space!r} with m={cfg.m} has < 2 ops; two are sampled per layer")
    if not 0.0 < cfg.k < 1.0:
        raise ValueError(f"k must be in (0, 1), got {cfg.k}")
    if not (math.isfinite(cfg.lam) and cfg.lam > 0):
        raise ValueError(f"lam (lambda) must be > 0, got {cfg.lam}")
    if not 0 <= cfg.lr_min <= cfg.lr_max:
        raise ValueError(f"need 0 <= lr_min <= lr_max, got {cfg.lr_min}, {cfg.lr_max}")
    if not (cfg.alpha_lr > 0 and (cfg.alpha_lr_min is None or 0 <= cfg.alpha_lr_min <= cfg.alpha_lr)):
        raise ValueError(f"need alpha_lr > 0 and 0 <= alpha_lr_min <= alpha_lr, got {cfg.alpha_lr}, "
                         f"{cfg.alpha_lr_min}")
    if cfg.alpha_optimizer not in ALPHA_OPTIMIZERS:
        raise ValueError(f"unknown alpha_optimizer {cfg.alpha_optimizer!r}; valid: {', '.join(ALPHA_OPTIMIZERS)}")
    if cfg.alpha_steps is not None and not cfg.alpha_steps > 0:
        raise ValueError(f"alpha_steps (alpha steps per weight step) must be > 0, got {cfg.alpha_steps}")
    if cfg.alpha_init_std < 0:
        raise ValueError(f"alpha_init_std must be >= 0, got {cfg.alpha_init_std}")
    check_rule(cfg.bn_eval)
    if not (0 <= cfg.momentum < 1 and 0 <= cfg.alpha_momentum < 1):
        raise ValueError("momentum and alpha_momentum must be in [0, 1)")
    if cfg.grad_clip <= 0 or cfg.weight_decay < 0:
        raise ValueError("grad_clip must be > 0 and weight_decay >= 0")
    if cfg.warmup_steps is not None and cfg.warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {cfg.warmup_steps}")
    if (cfg.epochs is None) == (cfg.budget is None):
        raise ValueError(f"set exactly one of epochs and budget; got epochs={cfg.epochs!r}, "
                         f"budget={cfg.budget!r}")
    if cfg.epochs is not None and cfg.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {cfg.epochs}")
    if cfg.budget is not None and not isinstance(cfg.budget, Budget):
        raise ValueError(f"budget must be a parsed Budget (Budget.parse), got {cfg.budget!r}")
    if cfg.strategy not in STRATEGIES:  # the names module lists the registry's names (a test ties them)
        raise ValueError(f"unknown strategy {cfg.strategy!r}; valid: {', '.join(STRATEGIES)}")
    for op, value in cfg.priors.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"prior for op {op!r} must be a finite number, got {value!r}")
    bad = sorted(set(cfg.priors) - set(ops))
    if bad:
        raise ValueError(f"prior for unknown op {bad[0]!r} in space {cfg.space!r}; valid: {', '.join(ops)}")


def preset(name: str, space: SpaceLike = "superkernel") -> NasibSearchConfig:
    """The named preset for `space` (a name, or a value whose m/K it takes): smoke (2-core CPU, seconds),
    quick (one GPU, ~15 min), paper."""
    check_method_space("nasib", space)  # before resolving: one line naming the NASIB spaces
    value = resolve_space(space)
    fields = {"space": value.name, **({"m": value.m, "K": value.K} if value.m is not None else {})}
    if name == "smoke":
        # Tiny net and subsets: an epoch takes seconds on a laptop CPU; 3 reductions still run (6 layers).
        return NasibSearchConfig(**fields, layers=6, channels=8, batch_size=32, epochs=3, budget=None,
                                 eval_batch_size=100, warmup_steps=2, measure_steps=3,
                                 data=DataConfig(valid_size=200, train_size=1000))
    if name == "quick":
        # The paper's network and data, a 15-minute budget.
        return NasibSearchConfig(**fields, budget=Budget.parse("15m"))
    if name == "paper":
        # Table 1: 1.5 GPU-days of search on one V100.
        return NasibSearchConfig(**fields, budget=Budget.parse("36h"))
    raise ValueError(f"unknown scale {name!r}; valid: {', '.join(PRESETS)}")


def configure(name: str, space: SpaceLike, overrides: dict | None = None) -> tuple[NasibSearchConfig, Space]:
    """The preset for `space` with `overrides`, and the space the search runs, resolved here once.

    A name is shaped by the config's m and K (overrides included); a value (a planted space, say) or a
    record is taken as it is, the config recording its name and m/K, and an override contradicting it fails.
    """
    cfg = apply_overrides(preset(name, space), overrides)
    value = cfg.named_space() if isinstance(space, str) else resolve_space(space)
    cfg.check_space(value)
    return cfg, value


def apply_overrides(cfg: NasibSearchConfig, overrides: dict | None) -> NasibSearchConfig:
    """`cfg` with `overrides` laid on strictly (unknown keys fail; `data`/`augment` merge key by key).

    Setting `budget` clears `epochs` and the other way round, so either can override a preset. A budget
    given as text (YAML, JSON, a test) is parsed here, the edge where a config is built; a `Budget` passes.
    """
    if not overrides:
        return cfg
    changes = dict(overrides)
    if isinstance(changes.get("budget"), str):
        changes["budget"] = Budget.parse(changes["budget"])  # BudgetError lists the accepted forms
    if changes.get("budget") is not None and "epochs" not in changes:
        changes["epochs"] = None
    if changes.get("epochs") is not None and "budget" not in changes:
        changes["budget"] = None
    for key in ("data", "augment"):
        if dataclasses.is_dataclass(changes.get(key)):
            changes[key] = dataclasses.asdict(changes[key])
    return from_dict(NasibSearchConfig, deep_merge(dataclasses.asdict(cfg), changes), "nasib search config")
