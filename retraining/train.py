"""Retrain a fixed architecture (any method's `arch.json`) from scratch and report test accuracy.

The network comes from the architecture's family through `retraining.registry` (ENAS
architectures carry skips and build `enas_ext.child.FixedChild`, NASIB ones
`nasib.supernet.FixedNet`). Training uses
cutout, gradient clipping, weight decay and BN everywhere, as the paper's final training.
The retraining set is train + held-out (all 50,000 images, as ENAS's final training);
the accuracy recorded per epoch is on the test split, for the curve only: nothing is
selected on it.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from contract.format import upgrade
from nascore.config import ConfigError, deep_merge, from_dict, positive
from nascore.data import AugmentConfig, DataConfig, DeviceLoader, Split, Splits
from nascore.loop import RunSpec
from nascore.ops import count_params
from nascore.recipe import Recipe, data_location, run_recipe
from nascore.records import Trial
from nascore.schedules import cosine
from retraining.registry import build_fixed, family_of
from retraining.width import NASIB_PAPER_WIDTH


@dataclass(frozen=True)
class RetrainConfig:
    """How a derived architecture is trained from scratch."""

    epochs: int = 310  # training epochs (ENAS final training: 310)
    batch_size: int = 128  # images per step
    channels: int | None = None  # network width; None keeps the width stored in arch.json
    # NASIB architectures' width when `channels` is None (None: arch.json's); the paper preset sets the
    # width rule's answer (retraining/width.py: Table 1's 6.71M; the paper does not state its width).
    nasib_channels: int | None = None
    # The weights' recipe: "paper" (NASIB's sentence: SGD momentum 0.9, cosine from 0.01, "unchanged
    # for the training of the final compact architecture"), "enas" (ENAS's final training: Nesterov,
    # cosine 0.05 -> 0.001) or "auto" (by the architecture's family: NASIB -> paper, ENAS -> enas).
    recipe: str = "auto"
    lr_max: float | None = None  # cosine learning rate starts here (None: the recipe's)
    lr_min: float | None = None  # ... and ends here (None: the recipe's)
    nesterov: bool | None = None  # Nesterov momentum (None: the recipe's)
    momentum: float = 0.9  # SGD momentum (both recipes)
    weight_decay: float = 5e-4  # L2 as decoupled-from-nothing SGD weight decay
    grad_clip: float = 5.0  # gradient-norm clipping (the paper lists clipping; ENAS intended 5)
    cutout: int = 16  # cutout square side (0 disables)
    dropout: float = 0.5  # dropout before the classifier (ENAS final: keep prob 0.5)
    use_valid: bool = True  # also train on the 5,000 held-out images (all 50k, as ENAS's final run)
    data: DataConfig = field(default_factory=DataConfig)  # data location and subsets

    def __post_init__(self):
        for name in ("epochs", "batch_size", "lr_max"):
            positive(name, getattr(self, name))
        if self.recipe not in ("auto", *RECIPES):
            raise ConfigError(f"unknown recipe {self.recipe!r}; valid: auto, {', '.join(RECIPES)}")
        positive("channels", self.channels)
        positive("nasib_channels", self.nasib_channels)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


RECIPES = {"paper": {"lr_max": 0.01, "lr_min": 0.0, "nesterov": False},  # NASIB's weights recipe
           "enas": {"lr_max": 0.05, "lr_min": 0.001, "nesterov": True}}  # ENAS's final training
FAMILY_RECIPE = {"nasib": "paper", "enas": "enas"}  # what "auto" means for each architecture family


def resolve_recipe(cfg: RetrainConfig, arch: dict) -> RetrainConfig:
    """The config with its recipe named and every learning-rate setting it left open filled in."""
    name = FAMILY_RECIPE.get(family_of(arch), "paper") if cfg.recipe == "auto" else cfg.recipe
    chosen = {k: v for k, v in RECIPES[name].items() if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, recipe=name, **chosen)


PRESETS = {
    "smoke": RetrainConfig(epochs=2, batch_size=64, channels=8,
                           data=DataConfig(valid_size=200, train_size=1000, test_size=500)),
    "quick": RetrainConfig(epochs=30, batch_size=128),
    "paper": RetrainConfig(nasib_channels=NASIB_PAPER_WIDTH),
}


def width_for(cfg: RetrainConfig, arch: dict) -> int | None:
    """The width a retrain builds: channels, else the family's (NASIB: nasib_channels), else None (arch.json's)."""
    if cfg.channels is not None:
        return cfg.channels
    return cfg.nasib_channels if family_of(arch) == "nasib" else None


def preset(name: str) -> RetrainConfig:
    """A named retraining preset, failing with the valid names."""
    if name not in PRESETS:
        raise ConfigError(f"unknown scale {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]


# Everything an arch.json may hold: the space's record keys (its name; m/K, extra ops, a planted op
# where it has them: nascore.spaces.RECORD_KEYS), the architecture, and who made it.
ARCH_KEYS = ("space", "m", "K", "extra", "planted", "planted_form", "ops", "layers", "channels", "skips",
             "family", "strategy", "method")  # method: format 1's name for strategy


def load_arch(path: Path) -> dict:
    """Read and validate an arch.json: every key known, every value of the right type and range."""
    try:
        arch = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read architecture ({e})") from None
    if not isinstance(arch, dict):
        raise ConfigError(f"{path}: expected a JSON object with {', '.join(ARCH_KEYS)}")
    unknown = sorted(set(arch) - set(ARCH_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; valid: {', '.join(ARCH_KEYS)}")
    if not isinstance(arch.get("ops"), list) or not arch["ops"]:
        raise ConfigError(f"{path}: key 'ops': an architecture needs a non-empty 'ops' list of op names")
    if not isinstance(arch.get("method", ""), str):
        raise ConfigError(f"{path}: key 'method': expected a string, got {arch['method']!r}")
    arch = upgrade(arch)  # a format-1 arch.json names its strategy `method`
    _check_arch_values(arch, path)
    return arch


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_arch_values(arch: dict, path: Path) -> None:
    """One line naming the file and the key for the first value of the wrong type or out of range."""
    from contract.names import METHOD_SPACES
    from nascore.ops import parse_op
    from nascore.spaces import resolve_space

    def bad(key: str, want: str) -> ConfigError:
        return ConfigError(f"{path}: key {key!r}: expected {want}, got {arch[key]!r}")

    space = arch.get("space")
    if space not in METHOD_SPACES["retrain"]:
        raise ConfigError(f"{path}: key 'space': {space!r}; valid: {', '.join(METHOD_SPACES['retrain'])}")
    try:  # the space the search ran, rebuilt from the record
        value = resolve_space(arch)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: space record {space!r}: {e}") from None
    # A file written before arch.json recorded m/K names its space only: its ops are then held to
    # the op grammar alone, as they were, since the parameters that made them are unknown.
    allowed = None if set(value.to_record()) - set(arch) else value.ops
    for i, op in enumerate(arch["ops"]):
        try:
            if not isinstance(op, str) or (allowed is not None and op not in allowed):
                raise ValueError
            parse_op(op)
        except ValueError:
            raise ConfigError(f"{path}: key 'ops'[{i}]: {op!r} is not an op of space {space!r}") from None
    for key in ("layers", "channels"):
        if key in arch and not (_is_int(arch[key]) and arch[key] >= 1):
            raise bad(key, "a positive integer")
    if "layers" in arch and arch["layers"] != len(arch["ops"]):
        raise ConfigError(f"{path}: key 'layers': {arch['layers']} but 'ops' lists {len(arch['ops'])}")
    skips = arch.get("skips")
    if skips is not None and not (isinstance(skips, list) and len(skips) == len(arch["ops"]) and all(
            isinstance(row, list) and len(row) == i and all(b in (0, 1) and not isinstance(b, float) for b in row)
            for i, row in enumerate(skips))):
        raise bad("skips", f"{len(arch['ops'])} rows of 0/1, row i holding i entries")
    for key in ("family", "strategy"):
        if arch.get(key) is not None and not isinstance(arch[key], str):
            raise bad(key, "a string")


class Retrain:
    """Searcher-protocol wrapper that trains one fixed network."""

    def __init__(self, net: nn.Module, cfg: RetrainConfig, train: Split, test: Split, mean, std, device,
                 source: dict | None = None):
        self.cfg, self.device, self.net = cfg, device, net.to(device)
        self.source = source or {}  # which search trial the architecture came from, for result.json
        self.train = DeviceLoader(train, cfg.batch_size, device, mean, std, AugmentConfig(cutout=cfg.cutout))
        self.test = DeviceLoader(test, 500, device, mean, std, None, shuffle=False, drop_last=False)
        self.opt = torch.optim.SGD(net.parameters(), lr=cfg.lr_max, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                   weight_decay=cfg.weight_decay)
        self.last_test_acc = float("nan")

    def state_dict(self) -> dict:
        """Network, optimizer and the last test accuracy."""
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "test_acc": self.last_test_acc}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() returned."""
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.last_test_acc = state["test_acc"]

    def done(self, epoch: int) -> bool:
        """True once the configured epochs have run."""
        return epoch >= self.cfg.epochs

    def planned_epochs(self) -> int:
        """The configured epoch count."""
        return self.cfg.epochs

    def lr(self, epoch: int) -> float:
        """Cosine decay from lr_max to lr_min over the run."""

        return cosine(self.cfg.lr_max, self.cfg.lr_min, epoch, self.cfg.epochs)

    def run_epoch(self, epoch: int) -> dict:
        """One pass over the training images, then test accuracy."""
        lr = self.lr(epoch)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.net.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen = 0
        for x, y in self.train:
            logits = self.net(x)
            loss = F.cross_entropy(logits, y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
            self.opt.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        self.last_test_acc = evaluate(self.net, self.test)
        return {"train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen, "valid_acc": None,
                "test_acc": self.last_test_acc, "lr": lr}

    def finish(self, trial: Trial, epochs: list[dict]) -> dict:
        """Result fields: test accuracy and error, parameters, where the architecture came from."""
        acc = self.last_test_acc
        return {"test_acc": acc, "test_error": 100.0 * (1.0 - acc), "params": count_params(self.net),
                "final_valid_acc": None, "device": str(self.device), **self.source}


@torch.no_grad()
def evaluate(net: nn.Module, loader: DeviceLoader) -> float:
    """Top-1 accuracy of `net` over a loader, in eval mode."""
    net.eval()
    correct = torch.zeros((), device=loader.device)
    for x, y in loader:
        correct += (net(x).argmax(1) == y).sum()
    return correct.item() / len(loader.split)


def retrain_trial(spec: RunSpec, arch_path: Path, scale: str = "quick",
                  overrides: dict | None = None) -> dict | None:
    """Retrain `arch_path` into the trial folder `spec.out`; None when already finished."""
    base = dataclasses.asdict(preset(scale))
    base["data"].update(data_location(spec))
    cfg = from_dict(RetrainConfig, deep_merge(base, overrides), "retrain overrides")
    arch = load_arch(arch_path)
    cfg = resolve_recipe(cfg, arch)
    channels = width_for(cfg, arch)
    width = {"channels_used": channels if channels is not None else arch.get("channels"),
             "arch_channels": arch.get("channels")}  # recorded: a preset's width never replaces it unseen
    if channels is not None and arch.get("channels") not in (None, channels):
        print(f"note: {arch_path} asks for {arch['channels']} channels; scale {scale!r} trains "
              f"{channels} (recorded in config.json as channels_used)", file=sys.stderr)
    src = Path(arch_path).resolve().parent
    source = {"source_trial": f"{src.parent.name}/{src.name}", "source_strategy": arch.get("strategy"),
              "source_space": arch.get("space")}

    def build(splits: Splits, device: torch.device) -> Retrain:
        train = splits.train
        if cfg.use_valid:
            train = Split(torch.cat([splits.train.x, splits.valid.x]), torch.cat([splits.train.y, splits.valid.y]))
        net = build_fixed(arch, channels, cfg.dropout)
        return Retrain(net, cfg, train, splits.test, splits.mean, splits.std, device, source)

    return run_recipe(spec, Recipe(
        family="retrain", strategy=None, space=arch.get("space"), scale=scale, config=dataclasses.asdict(cfg),
        data=cfg.data, build=build, batch_size=cfg.batch_size, layers=arch.get("layers") or len(arch["ops"]),
        extra={"source_arch": str(arch_path), "arch": arch, **width}))
