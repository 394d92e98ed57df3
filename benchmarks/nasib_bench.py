"""NASIB search speed and budget fidelity.

`run` times the search's own steps (`nasib.search.NasibSearch.measure`: warm-up, then timed
weight steps, alpha steps, evaluation batches and one checkpoint serialisation, each
synced on both ends) for both spaces on synthetic uint8 images, and projects an epoch for
the scale's split sizes exactly as a budgeted search plans its first epoch:
train_batches * weight step + alpha steps * alpha step + eval batches * eval batch
+ the checkpoint's snapshot (its write overlaps the next epoch; only what outlasts the
epoch's work counts: `nasib.search.projected_epoch`). It then runs one whole epoch of a search
on splits of the scale's sizes, after the same warm-up, and reports it as `measured_epoch_s`
(weight and alpha steps, both validations; what the gate holds when present).

`budget_fidelity` runs real budgeted searches on a synthetic CIFAR-10 stand-in and
reports how much of each budget was used (the kit promises used / budget <= 1).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from nascore.data import DataConfig
from nascore.loop import RunSpec
from nascore.ops import count_params
from nascore.records import Trial
from nascore.runtime import resolve_device, seed_everything, sync
from nascore.synthetic import write_fake_cifar
from nasib.presets import apply_overrides
from nasib.presets import preset as get_preset
from nasib.search import NasibSearch, search_trial
from nasib.timing import CIFAR_TRAIN, batch_counts, synthetic_splits

SPACES = ("narrow", "superkernel")


def _space_timing(scale: str, space: str, dev: torch.device) -> dict:
    """Step timings and the projected epoch of one space."""
    cfg = get_preset(scale, space)
    n_valid = cfg.data.valid_size
    n_train = min(cfg.data.train_size or CIFAR_TRAIN, CIFAR_TRAIN - n_valid)
    small = 2 * max(cfg.batch_size, cfg.eval_batch_size)  # batches are cycled; sizes only set the counts
    search = NasibSearch(cfg, synthetic_splits(small, small), dev, seed=0)
    counts = batch_counts(n_train, n_valid, cfg)
    t = search.measure(counts)
    return {"measured_epoch_s": _measured_epoch(cfg, dev, n_train, n_valid),
            "num_ops": len(search.op_names), "supernet_params": count_params(search.model),
            "layers": cfg.layers, "channels": cfg.channels, "batch_size": cfg.batch_size,
            "warmup_steps": -(-len(search.op_names) // 2) if cfg.warmup_steps is None else cfg.warmup_steps,
            "timed_steps": cfg.measure_steps, "ms_per_weight_step": 1000 * t["weight_s"],
            "ms_per_alpha_step": 1000 * t["alpha_s"], "ms_per_eval_batch": 1000 * t["eval_s"],
            "checkpoint_s": t["checkpoint_s"], "checkpoint_snapshot_s": t["snapshot_s"],
            "train_batches": counts["train"],
            "alpha_steps": int(t["alpha_steps"]), "eval_batches": counts["eval"],
            "projected_epoch_s": t["epoch_s"]}


def _measured_epoch(cfg, dev: torch.device, n_train: int, n_valid: int) -> float:
    """Seconds of one whole epoch (synced on both ends) of a fixed-epoch search on splits of the scale's sizes."""
    search = NasibSearch(apply_overrides(cfg, {"epochs": 1}), synthetic_splits(n_train, n_valid), dev, seed=0)
    search.measure()  # the warm-up and timed steps, state restored
    sync(dev)
    t0 = time.perf_counter()
    search.run_epoch(0)
    sync(dev)
    return time.perf_counter() - t0


def run(device: str = "auto", scale: str = "quick") -> dict:
    """Time the NASIB search steps of `scale` on `device` for both spaces."""
    dev = resolve_device(device)
    seed_everything(0, deterministic=False)
    spaces = {space: _space_timing(scale, space, dev) for space in SPACES}
    return {"bench": "nasib_search", "scale": scale, "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "torch": torch.__version__, "spaces": spaces}


def budget_fidelity(device: str = "auto", budgets: list[float] | None = None, scale: str = "smoke",
                    space: str = "superkernel") -> list[dict]:
    """Run one budgeted search per budget (seconds) on synthetic data; report used / budget."""
    base = get_preset(scale, space).data
    n_train = (base.train_size or CIFAR_TRAIN - base.valid_size) + base.valid_size
    rows = []
    with tempfile.TemporaryDirectory(prefix="nasib-fidelity-") as tmp:
        root = write_fake_cifar(Path(tmp) / "data", n_train=n_train, n_test=100)
        for i, budget in enumerate(budgets or [30.0, 60.0]):
            spec = RunSpec(out=Path(tmp) / f"b{i}", seed=0, device=device,
                           data=DataConfig(data_dir=str(root)), force=True)
            t0 = time.perf_counter()
            result = search_trial(spec, space, scale, {"budget": f"{budget}s"})
            wall = time.perf_counter() - t0
            epochs = Trial(spec.out).read_epochs()
            rows.append({"budget_s": budget, "used_s": result["budget_used_s"], "wall_s": wall,
                         "used_ratio": result["budget_used_s"] / budget, "wall_ratio": wall / budget,
                         "status": result["status"], "epochs": result["epochs"],
                         "planned_after_first_epoch": epochs[0]["planned_epochs"] if epochs else None,
                         "measured_epoch_s": result.get("measured_epoch_s"),
                         "mean_epoch_s": sum(e["epoch_s"] for e in epochs) / max(len(epochs), 1),
                         "cut_short": any(e.get("cut_short") for e in epochs),
                         "scale": scale, "space": space, "device": result.get("device")})
    return rows
