"""`python -m analysis all RESULTS`: every figure and table the records under RESULTS allow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from analysis.claims import main as claims_main
from analysis.claims import run_claims
from analysis.curves import main as curves_main
from analysis.curves import run_curves
from analysis.kernel_freq import main as kernel_freq_main
from analysis.kernel_freq import run_kernel_freq
from analysis.records import NoTrialsError, cli_errors, load_trials
from analysis.table1 import main as table1_main
from analysis.table1 import run_table1
from contract.names import VERSION
from contract.options import CONTEXT


@click.group(context_settings=CONTEXT)
@click.version_option(VERSION, prog_name="nasibkit-analysis")
def cli() -> None:
    """Analyse trial records (never trains): curves, kernel frequencies, Table 1."""


def _jobs(results: Path, out: Path | None) -> list[tuple[str, Callable[[], object]]]:
    """(name, thunk) per analysis, in paper order; each reads its own experiment (see select_experiment)."""
    # Each default is the job's own name: its trials.json, so shared trials come along and no other
    # experiment's budgets are pooled in.
    jobs: list[tuple[str, Callable[[], object]]] = [
        (fig, lambda fig=fig: run_curves(results, fig, out)) for fig in ("fig2", "fig3")
    ]
    jobs.append(("fig4", lambda: run_kernel_freq(results, None, out)))
    jobs.append(("fig5", lambda: run_curves(results, "fig5", out)))
    jobs.append(("table1", lambda: run_table1(results, out)))
    jobs.append(("claims", lambda: run_claims(results, out)))  # last: the scorecard of everything above
    return jobs


@cli.command("all")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output root (OUT/figures, OUT/tables); default: RESULTS.")
def run_all(results: Path, out: Path | None) -> None:
    """Figures 2-5, Table 1 and the claims scorecard, each from RESULTS/<name>/trials.json (else by name)."""
    with cli_errors():
        load_trials(results)  # fail early, once, when there is nothing finished at all
        skipped = []
        for name, job in _jobs(results, out):
            click.echo(f"== {name} ==")
            try:
                job()
            except NoTrialsError as err:
                click.echo(f"{name}: skipped ({err})")
                skipped.append(name)
        if skipped:
            click.echo(f"skipped: {', '.join(skipped)}")


cli.add_command(curves_main, "curves")
cli.add_command(kernel_freq_main, "kernel-freq")
cli.add_command(table1_main, "table1")
cli.add_command(claims_main, "claims")


if __name__ == "__main__":
    cli()
