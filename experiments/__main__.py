"""`python -m experiments run|list`: run a figure's or table's trials, or list what can be run.

    python -m experiments list
    python -m experiments run fig2 --scale quick --seeds 0,1,2 --device auto   # into runs/quick/
    python -m experiments run fig2 --scale smoke --jobs 2                      # two trials at once
    python -m experiments run table1 --scale smoke --dry-run

Expected problems (unknown experiment or scale, a bad config) are one line on stderr and
exit 2; a trial that fails is reported, the others still run, and the exit is 1.
"""
from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import click

from contract.names import EXPERIMENT_SCALES, SCALE_HELP, VERSION
from contract.options import CONTEXT, data_dir_option, deterministic_option, device_option, download_option
from contract.threads import RUNNER_THREADS_HELP
from experiments import checks, launchers
from experiments.launchers import (
    STATUSES,
    Outcome,
    RunContext,
    dropped_from_manifests,
    get_launcher,
    run_one,
    trial_state,
    write_manifests,
)
from experiments.runner import (
    SCALES,
    TrialPlan,
    available,
    expand,
    expand_all,
    load_config,
    merge,
    parse_seeds,
)
from nascore.config import ConfigError

RUNS = "runs"  # the default results root's parent: runs/<scale>/, git-ignored, apart from the shipped results/


def one_line_errors(fn):
    """Bad names, seeds or configs: 'Error: ...' and exit 2; Ctrl-C: one line and exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (KeyboardInterrupt, RuntimeError) as e:
            if isinstance(e, RuntimeError) and not launchers.is_interrupt(e):
                raise
            click.echo("Error: interrupted; finished trials are kept and the interrupted one resumes "
                       "from its checkpoint: run the same command again", err=True)
            sys.exit(130)
        except (ConfigError, ValueError, KeyError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            click.echo(f"Error: {message}", err=True)
            sys.exit(2)
        except OSError as e:  # an unwritable results folder, a full disk: one line naming the path
            click.echo(f"Error: cannot write {e.filename or 'the results'}: {e.strerror or e}", err=True)
            sys.exit(1)

    return wrapper


def table(header: Sequence[str], rows: list[Sequence[object]]) -> str:
    """Left-aligned plain-text columns."""
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def plan_table(plans: list[TrialPlan], conflicts: dict[str, str] | None = None) -> str:
    """The expanded trials, one row each, with what the folder already holds (or that it conflicts)."""
    conflicts = conflicts or {}
    rows = [(n, p.key, p.experiment, p.family, p.space, p.strategy, p.budget, p.seed, p.scale,
             checks.CONFLICT if p.key in conflicts else trial_state(p.folder),
             p.source.parent.relative_to(p.folder.parent.parent) if p.source else None)
            for n, p in enumerate(plans, start=1)]
    return table(("#", "trial", "for", "family", "space", "strategy", "budget", "seed", "base", "state",
                  "retrains"), rows)


def summary_table(outcomes: list[Outcome]) -> str:
    """One row per trial outcome, then the counts."""
    rows = [(o.plan.key, o.plan.family, o.plan.space, o.plan.budget, o.plan.seed, o.status,
             f"{o.seconds:.0f}s" if o.seconds else None, o.detail) for o in outcomes]
    counts = Counter(o.status for o in outcomes)
    tally = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    return (table(("trial", "family", "space", "budget", "seed", "outcome", "time", "detail"), rows)
            + f"\n{len(outcomes)} trial(s): {tally}")


@click.group(context_settings=CONTEXT)
@click.version_option(VERSION, prog_name="nasibkit-experiments")
def cli() -> None:
    """Run the paper's experiments (figures 2-5, Table 1) as seeded trials under runs/<scale>/."""


@cli.command("run")
@click.argument("names", nargs=-1, required=True)
@click.option("--scale", "--preset", "scale", type=click.Choice(EXPERIMENT_SCALES), default="quick", show_default=True,
              help=SCALE_HELP)
@click.option("--seeds", default=None, help="Comma-separated seeds, e.g. 0,1,2 (default: the config's).")
@click.option("--results", type=click.Path(path_type=Path), default=None,
              help="Results root; trials go to RESULTS/<experiment>/<trial-id>/. Default: runs/<scale> "
              "(git-ignored), never the shipped records in results/reference/.")
@device_option()
@data_dir_option()
@download_option()
@deterministic_option("Deterministic kernels.")
@click.option("--force", is_flag=True, help="Re-run finished trials (old folders are moved aside).")
@click.option("--launcher", default="local", show_default=True,
              help=f"Where trials run: {', '.join(checks.KNOWN_LAUNCHERS)} (checked before anything runs).")
@click.option("--address", default=None, help="ray: the cluster to join ('auto', host:6379); default: a local Ray.")
@click.option("--gpus-per-trial", type=float, default=None,
              help="ray: GPUs each trial reserves; fractions pack trials on one GPU (0.25: four per GPU). "
              "Default: 1 when Ray sees GPUs, else 0.")
@click.option("--cpus-per-trial", type=float, default=None, help="ray: CPUs each trial reserves (default 1).")
@click.option("--dry-run", is_flag=True, help="Print the expanded trial table and run nothing.")
@click.option("--threads", default="auto", show_default=True, help=RUNNER_THREADS_HELP + " With --jobs N: "
              "each trial's threads (auto: the cores split between the N).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="local: trials run at once, each in its own process (GPUs dealt round-robin, "
              "retrains after their searches); 1 runs them one by one in this process.")
@one_line_errors
def run_cmd(names, scale, seeds, results, device, data_dir, download, deterministic, force, launcher,
            address, gpus_per_trial, cpus_per_trial, dry_run, threads, jobs) -> None:
    """Run the trials of experiment NAMES (e.g. fig2), skipping finished ones; a config path also works."""
    results = Path(RUNS) / scale if results is None else results
    seed_list = parse_seeds(seeds) if seeds else None
    per_experiment = expand_all(names, scale, results, seed_list)
    plans = merge(per_experiment)
    checks.check_launcher(launcher)
    checks.check_results(results)
    checks.check_threads(threads)
    conflicts = checks.conflicts(plans, force)
    if dry_run:
        click.echo(plan_table(plans, conflicts))
        for key, why in conflicts.items():
            click.echo(f"conflict {key}: {why}")
        click.echo(f"{len(plans)} trial(s) at scale {scale}, {len(conflicts)} conflict(s) (dry run: nothing was run)")
        return
    if conflicts:
        raise ValueError(checks.conflict_error(conflicts))
    runner = get_launcher(launcher, jobs=jobs, threads=threads, device=device, address=address,
                          gpus_per_trial=gpus_per_trial, cpus_per_trial=cpus_per_trial)
    if launcher == "local":
        checks.check_device(device)  # a remote launcher's workers check their own devices
        if jobs == 1:  # the pool's workers set their own threads and say so
            click.echo(f"torch threads: {checks.apply_threads(threads)}", err=True)
    for line in dropped_from_manifests(per_experiment, results, scale):
        click.echo(f"warning: {line}", err=True)
    write_manifests(per_experiment, results, scale)  # after every check: a refused run writes nothing
    ctx = RunContext(device=device, data_dir=data_dir, download=download, deterministic=deterministic,
                     force=force)
    # A partial of module-level names, so the pool can hand it to its worker processes.
    outcomes = runner.run(plans, functools.partial(run_one, ctx=ctx, methods=launchers.METHODS))
    click.echo(summary_table(outcomes))
    failed = [o.plan.key for o in outcomes if o.failed]
    if failed:
        click.echo(f"Error: {len(failed)} trial(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


def _medium(exp) -> str | None:
    """The medium scale's trial count and measured CPU-hours, or None where it is not defined."""
    scale = exp.scales.medium
    if scale is None:
        return None
    n = len(expand(exp, "medium", Path("results"), check_shared=False))
    return f"{n}" + (f" (~{scale.cpu_hours:g} CPU-h)" if scale.cpu_hours is not None else "")


@cli.command("list")
@one_line_errors
def list_cmd() -> None:
    """Show each experiment, its trial counts per scale (medium with its CPU-hours) and what it is."""
    rows = []
    for name in available():
        exp = load_config(name)
        counts = "/".join(str(len(expand(exp, s, Path("results"), check_shared=False))) for s in SCALES)
        shared = sorted({g.shared_with for g in exp.trials if g.shared_with})
        rows.append((name, counts, _medium(exp), ", ".join(shared) or None, exp.description))
    click.echo(table(("experiment", "trials " + "/".join(SCALES), "medium", "shares with", "description"), rows))
    click.echo("run: python -m experiments run NAME --scale smoke|medium|quick|paper [--seeds 0,1,2] [--jobs N] "
               "[--dry-run]")


if __name__ == "__main__":
    cli()
