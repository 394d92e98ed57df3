"""The planted-op check: does each search find the one op that is known to be best?

In a planted space every op of a layer but one (the planted op) is replaced by
`noise@op`, an op of the same output shape whose output is fresh Gaussian noise
(`nascore.spaces.planted_space`), so the planted op is the best op of every layer and any
learning search must derive it. The data are synthetic (class-coloured noisy images,
learnable in a few steps), so the check needs no dataset and runs in minutes on a 2-core
CPU. Each row: strategy, space, planted op, seed, `planted_share` (share of layers whose
derived op is the planted one), `p2_entropy` (NASIB's final P2 entropy / ln K, else
None), epochs, seconds, and whether the goals are met. `random` is the control: how much
the best-of-samples selection alone finds. The planted op is drawn from the seed unless
given, and may be any op of the space.

The ENAS row uses `lossy@` instead (`nascore.ops`: the input passes, but each sample is
lost to loud noise with a fixed probability): ENAS's macro layer has no residual path, so
with `noise@` one noise layer erases the signal and the reward rises only when nearly
every layer holds the planted op, leaving REINFORCE nothing to climb; with `lossy@` the
share of samples that survive falls with each lossy layer, so the reward is graded. It runs
ENAS's own search (`enas_ext.search.EnasSearch`, handed the planted space as a value), so it
tests the search users run. Its images are smaller and simpler (`ENAS_TASK`), and it runs
many more controller updates than the NASIB rows run alpha steps, because ENAS's controller
moves slowly (docs/planted.md, how the ENAS row got there).

    python -m benchmarks.planted --seed 0 [--planted OP] [--out results/bench/planted.json]
"""
from __future__ import annotations

import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import torch

from contract.options import CONTEXT
from nascore.cli import threads_option
from nascore.data import Split, Splits
from nascore.records import atomic_write_json, provenance
from nascore.runtime import resolve_device, seed_everything
from nascore.spaces import planted_space, resolve_space
from nasib.presets import configure
from nasib.search import NasibSearch

GOAL_SHARE = 0.75  # a learning search must derive the planted op in at least this share of layers
GOAL_ENTROPY = 0.5  # and NASIB's final P2 entropy / ln K must be at most this
# Child epochs of the ENAS check, each 31 child steps then the release's 50 controller updates
# of 20 architectures: at 40 epochs (2,000 updates) the greedy architecture held the planted
# op in 2 to 6 of 6 layers over 8 measured runs, at 80 in 5 or 6 (docs/planted.md).
ENAS_EPOCHS = 80
# The ENAS row's settings beyond ENAS's smoke scale (6 layers x 12 channels, batch 32), all
# EnasSearchConfig fields: the release's controller (50 updates of 20 architectures an epoch,
# where smoke has 5 of 5) and the check's synthetic split sizes (docs/planted.md).
ENAS_SETTINGS = {"controller": {"train_steps": 50, "num_aggregate": 20},
                 "data": {"train_size": 1000, "valid_size": 200}}


@dataclass(frozen=True)
class Task:
    """Synthetic class-coloured images: how many classes, how large, how noisy."""

    classes: int = 10  # number of classes, each one colour
    size: int = 32  # image side in pixels
    grain: float = 40.0  # std of the per-pixel noise (0-255 scale)
    jitter: float = 0.0  # std of a per-image colour shift, constant over the image (0-255 scale)
    palette: bool = False  # PALETTE's well-separated colours instead of colours drawn from the seed

    def __post_init__(self) -> None:
        if self.palette and not 1 <= self.classes <= len(PALETTE):
            raise ValueError(f"a palette task has 1..{len(PALETTE)} classes, got {self.classes}")


PALETTE = ((255, 40, 40), (40, 255, 40), (40, 40, 255), (255, 255, 40))  # red, green, blue, yellow
NASIB_TASK = Task()
# ENAS's check: its epoch is mostly reward evaluation (20 children per controller update), so
# 16x16 images make it 4x cheaper; the class lies in a flat colour only, as the lost samples'
# noise of `lossy@` is flat, so nothing in the image's texture survives a loss.
ENAS_TASK = Task(classes=len(PALETTE), size=16, grain=5.0, jitter=25.0, palette=True)


@dataclass(frozen=True)
class Case:
    """One search of the check: strategy, space, how long, and any setting it needs beyond the defaults."""

    strategy: str  # nasib, random, darts or snas
    space: str  # narrow or superkernel
    epochs: int  # epochs of the synthetic task (each: TRAIN // 32 weight steps)
    overrides: dict = field(default_factory=dict)  # NasibSearchConfig fields beyond the smoke scale
    train: int = 1000  # synthetic training images
    valid: int = 200  # synthetic held-out images


# Default settings throughout; only the length differs. The 81-op space needs more epochs (at 40,
# a seed-0 run left 2 of 6 layers locked on a noise op; at 80 it found 5 of 6):
# each op is drawn about 2/81 of the time while P1 explores, and Adam moves an alpha ~lr per draw.
CASES = (Case("nasib", "narrow", 6), Case("nasib", "superkernel", 80), Case("darts", "narrow", 6),
         Case("snas", "narrow", 6), Case("random", "narrow", 6))


def coloured_splits(n_train: int, n_valid: int, seed: int, task: Task = NASIB_TASK) -> Splits:
    """Class-coloured noisy uint8 images (as `nascore.synthetic`), in memory."""
    g = torch.Generator().manual_seed(seed)
    if task.palette:
        base = torch.tensor(PALETTE[:task.classes]).float()[:, :, None, None]
    else:
        base = torch.randint(0, 255, (task.classes, 3, 1, 1), generator=g).float()

    def split(n: int) -> Split:
        y = torch.randint(0, task.classes, (n,), generator=g)
        x = base[y] + task.grain * torch.randn(n, 3, task.size, task.size, generator=g)
        if task.jitter:
            x += task.jitter * torch.randn(n, 3, 1, 1, generator=g)
        return Split(x.clamp(0, 255).to(torch.uint8), y)

    train = split(n_train)
    mean = tuple(train.x.float().mean(dim=(0, 2, 3)).tolist())
    std = tuple(train.x.float().std(dim=(0, 2, 3)).tolist())
    return Splits(train, split(n_valid), split(1), mean, std, "synthetic (planted-op check)")


def pick_planted(space: str, seed: int, planted: str | None = None) -> str:
    """The planted op: `planted` when the space has it, else one drawn from the seed."""
    ops = resolve_space(space).ops
    return planted if planted in ops else random.Random(f"{seed}:{space}").choice(ops)


def run_case(case: Case, planted: str, seed: int, device: str = "cpu") -> dict:
    """Run one search of the check to its end; its row of planted.json."""
    t0 = time.perf_counter()
    seed_everything(seed, deterministic=False)
    space = planted_space(resolve_space(case.space), planted)  # the search is handed it, as ENAS's row is
    cfg, space = configure("smoke", space, {
        "epochs": case.epochs, "strategy": case.strategy, **case.overrides,
        "data": {"train_size": case.train, "valid_size": case.valid}})
    search = NasibSearch(cfg, coloured_splits(case.train, case.valid, seed), torch.device(device), seed,
                         space=space)
    records = [search.run_epoch(e) for e in range(case.epochs) if not search.done(e)]
    samples = search.strategy.samples(cfg.num_samples, search.generator)
    names = search.strategy.derive(samples, lambda arch: search._accuracy([[i] for i in arch]),
                                   search.generator)
    share = sum(n == planted for n in names) / len(names)
    entropy = records[-1].get("p2_entropy")
    row = {"strategy": case.strategy, "space": case.space, "planted": planted, "seed": seed,
           "planted_share": share, "p2_entropy": entropy, "epochs": len(records),
           "seconds": round(time.perf_counter() - t0, 1), "num_ops": len(space), "op_form": "noise",
           "valid_acc": records[-1]["valid_acc"], "derived": names,
           "p2_entropy_per_epoch": [r.get("p2_entropy") for r in records]}
    if case.strategy != "random":
        row["goal_met"] = share >= GOAL_SHARE and (entropy is None or entropy <= GOAL_ENTROPY)
    return row


def run_enas(planted: str, seed: int, epochs: int = ENAS_EPOCHS, device: str = "cpu") -> dict:
    """The real ENAS search (`EnasSearch`) on a `lossy@` planted extended space; derived: its greedy ops.

    Everything ENAS users run is the check's: the child's Nesterov SGD with the reference's L2,
    the per-tensor clip, the cosine-with-restarts schedule, the rewards and the BN rule; only
    the settings in ENAS_SETTINGS (EnasSearchConfig fields) and the space and data differ.
    """
    from enas_ext.presets import configure
    from enas_ext.search import EnasSearch

    t0 = time.perf_counter()
    seed_everything(seed, deterministic=False)
    space = planted_space(resolve_space("extended"), planted, "lossy")
    cfg = configure("smoke", space, {**ENAS_SETTINGS, "epochs": epochs})
    splits = coloured_splits(cfg.data.train_size, cfg.data.valid_size, seed, ENAS_TASK)
    search = EnasSearch(cfg, splits, torch.device(device), seed, space=space)
    per_epoch = []  # planted layers in the controller's greedy architecture after each epoch
    for epoch in range(epochs):
        record = search.run_epoch(epoch)
        per_epoch.append(sum(space.ops[i] == planted for i in search.controller.greedy()[0]))
    names = [space.ops[i] for i in search.controller.greedy()[0]]
    return {"strategy": "enas", "space": "extended", "planted": planted, "seed": seed,
            "planted_share": sum(n == planted for n in names) / len(names), "p2_entropy": None,
            "epochs": epochs, "seconds": round(time.perf_counter() - t0, 1), "num_ops": len(space),
            "op_form": "lossy", "controller_updates": epochs * cfg.controller.train_steps,
            "image_size": ENAS_TASK.size, "valid_acc": record["valid_acc"], "derived": names,
            "settings": ENAS_SETTINGS, "planted_layers_per_epoch": per_epoch}


def run(seed: int = 0, planted: str | None = None, cases: tuple[Case, ...] = CASES,
        device: str = "cpu", enas: bool = True) -> list[dict]:
    """Every case of the check with one seed; prints a line per search."""
    rows = []
    for case in cases:
        row = run_case(case, pick_planted(case.space, seed, planted), seed, device)
        ent = "-" if row["p2_entropy"] is None else f"{row['p2_entropy']:.3f}"
        click.echo(f"  {row['strategy']:6s} {row['space']:11s} planted {row['planted']:10s} seed {seed}: "
                   f"share {row['planted_share']:.2f}, P2 entropy {ent}, {row['epochs']} epochs, "
                   f"{row['seconds']:.0f}s, goal {row.get('goal_met', 'control')}")
        rows.append(row)
    if enas:
        row = run_enas(pick_planted("extended", seed, planted), seed, device=device)
        row["goal_met"] = row["planted_share"] >= GOAL_SHARE
        click.echo(f"  enas   extended    planted {row['planted']:10s} seed {seed}: share "
                   f"{row['planted_share']:.2f}, {row['epochs']} epochs, {row['seconds']:.0f}s, "
                   f"goal {row['goal_met']}")
        rows.append(row)
    return rows


@click.command(context_settings=CONTEXT)
@click.option("--seed", "seeds", default="0", show_default=True, help="Seed(s), comma-separated.")
@click.option("--planted", default=None, help="The planted op (default: drawn from the seed per space).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", default="results/bench/planted.json", show_default=True)
@threads_option
def main(seeds: str, planted: str | None, device: str, out: str) -> None:
    """Run the planted-op check and write its rows."""
    dev = str(resolve_device(device))
    rows = [r for s in seeds.split(",") for r in run(int(s), planted, device=dev)]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(),
                             "cpu": platform.processor() or platform.machine(),
                             "provenance": provenance(dev, False, "synthetic (planted-op check)"), "figures": rows})
    click.echo(f"  wrote {path}")
    failed = [r for r in rows if r.get("goal_met") is False]
    if failed:
        raise SystemExit(f"goal missed by {len(failed)} search(es): "
                         + ", ".join(f"{r['strategy']}/{r['space']}/{r['planted']}" for r in failed))


if __name__ == "__main__":
    main()
