"""`python -m benchmarks`: speed figures on this machine, written to results/bench/.

    python -m benchmarks --device auto [--scale S] [--out results/bench] [--fidelity 30,60]

The scale defaults to `paper` on a GPU and `smoke` on a CPU (a paper-size step on a
2-core CPU takes minutes and measures nothing useful). Each run writes one JSON per
benchmark, named with the device kind and scale, and prints a short summary.
"""
from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import click

from contract.budget import Budget
from contract.names import SCALES, VERSION
from contract.options import CONTEXT
from nascore.cli import reports_errors, threads_option
from nascore.records import atomic_write_json
from nascore.runtime import resolve_device


def _save(out: Path, name: str, data: dict | list) -> Path:
    """Write one benchmark's figures, stamped with when and where they were taken."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    atomic_write_json(path, {"measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                             "host": platform.node(), "cpu": platform.processor() or platform.machine(),
                             "figures": data})
    return path


def _enas(device: str, scale: str) -> dict:
    """ENAS search pieces for both spaces."""
    from benchmarks.enas_bench import run

    return {space: run(device, scale, space=space) for space in ("original", "extended")}


def _print_enas(figs: dict) -> None:
    """One line per ENAS space."""
    for space, f in figs.items():
        click.echo(f"  ENAS {space:9s}: child step {f['ms_per_child_step']:.1f} ms, controller update "
                   f"{f['ms_per_controller_update']:.1f} ms, projected epoch {f['projected_epoch_s']:.1f} s")


def _print_nasib(figs: dict) -> None:
    """One line per NASIB space."""
    for space, f in figs["spaces"].items():
        click.echo(f"  NASIB {space:11s}: weight step {f['ms_per_weight_step']:.1f} ms, alpha step "
                   f"{f['ms_per_alpha_step']:.1f} ms, checkpoint {f['checkpoint_s']:.2f} s, "
                   f"projected epoch {f['projected_epoch_s']:.1f} s")


def _rewards(out: Path) -> None:
    """Routed vs sequential rewards and flat vs per-tensor child update, both spaces, on the CPU."""
    from benchmarks.rewards_bench import run

    figs = run()
    for space, f in figs["spaces"].items():
        c, u = f["controller_update"], f["child_update"]
        click.echo(f"  levers {space:9s}: rewards {c['sequential']['rewards_ops']} -> {c['routed']['rewards_ops']} "
                   f"ops ({c['rewards_ops_ratio']:.1f}x fewer, {c['rewards_ms_ratio']:.1f}x faster), child update "
                   f"{u['per_tensor']['ops']} -> {u['flat']['ops']} ops ({u['time_ratio']:.1f}x faster)")
    click.echo(f"  wrote {_save(out, 'cpu-rewards', figs)}")


def _checkpoints(out: Path) -> None:
    """Checkpoint size and save time at the smoke and paper scales (device-independent state)."""
    from benchmarks.checkpoint_bench import run

    for scale in ("smoke", "paper"):
        figs = run(scale)
        for name, f in figs["searchers"].items():
            click.echo(f"  checkpoint {scale:5s} {name:17s}: {f['checkpoint_mb']:.1f} MB, "
                       f"saved in {f['save_s']:.3f} s; the loop waits {f['loop_s']:.3f} s, written in "
                       f"{f['write_s']:.3f} s")
        click.echo(f"  wrote {_save(out, f'checkpoint-{scale}', figs)}")


@click.command(context_settings=CONTEXT)
@click.version_option(VERSION, prog_name="nasibkit-bench")
@click.option("--device", default="auto", show_default=True)
@click.option("--scale", "--preset", "scale", type=click.Choice(SCALES), default=None,
              help="Default: paper on CUDA, smoke on CPU.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/bench"), show_default=True)
@click.option("--fidelity", default=None, help="Comma-separated budgets in seconds for the budget-fidelity "
              "runs (default: 30,60 on CPU, 120,300,600 on CUDA; 'none' skips them).")
@click.option("--only", type=click.Choice(["enas", "nasib", "checkpoint", "fidelity", "planted", "rewards"]),
              multiple=True,
              help="Run only these benchmarks (repeatable).")
@threads_option
@reports_errors
def main(device: str, scale: str | None, out: Path, fidelity: str | None, only: tuple[str, ...]) -> None:
    """Measure search speed and budget fidelity on this machine."""
    dev = resolve_device(device)  # an unavailable device: one line, before anything runs
    default = "120,300,600" if dev.type == "cuda" else "30,60"
    # Read every budget now, not after minutes of other benchmarks.
    budgets = [] if fidelity == "none" else [Budget.parse(b).wall_seconds() for b in (fidelity or default).split(",")]
    scale = scale or ("paper" if dev.type == "cuda" else "smoke")
    tag = f"{dev.type}-{scale}"
    # planted (minutes) and rewards (the CPU lever study, whatever the device): only when asked
    todo = set(only) or {"enas", "nasib", "checkpoint", "fidelity"}
    click.echo(f"benchmarks on {dev} at scale {scale} -> {out}")
    if "enas" in todo:
        figs = _enas(str(dev), scale)
        _print_enas(figs)
        click.echo(f"  wrote {_save(out, f'enas-{tag}', figs)}")
    if "nasib" in todo:
        from benchmarks.nasib_bench import run

        figs = run(str(dev), scale)
        _print_nasib(figs)
        click.echo(f"  wrote {_save(out, f'nasib-{tag}', figs)}")
    if "planted" in todo:
        from benchmarks.planted import run as planted

        click.echo(f"  wrote {_save(out, 'planted', planted(0, device=str(dev)))}")
    if "rewards" in todo:
        _rewards(out)
    if "checkpoint" in todo:
        _checkpoints(out)
    if "fidelity" in todo and fidelity != "none":
        from benchmarks.nasib_bench import budget_fidelity

        fid_scale = "quick" if dev.type == "cuda" else "smoke"
        rows = budget_fidelity(str(dev), budgets, scale=fid_scale)
        for r in rows:
            click.echo(f"  budget {r['budget_s']:.0f}s: used {r['used_ratio']:.1%} of it (wall {r['wall_ratio']:.1%}), "
                       f"{r['epochs']} epochs, status {r['status']}")
        click.echo(f"  wrote {_save(out, f'budget-fidelity-{dev.type}-{fid_scale}', rows)}")


if __name__ == "__main__":
    sys.exit(main())
