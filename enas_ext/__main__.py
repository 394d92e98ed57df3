"""`python -m enas_ext`: ENAS macro search (`search`) and sampling from a searched controller (`sample`)."""
from __future__ import annotations

from pathlib import Path

import click

from enas_ext.presets import ENAS_SPACES, PRESETS
from nascore.cli import common_options, data_config, reports_errors, threads_option
from nascore.data import DataConfig
from nascore.loop import RunSpec
from nascore.names import VERSION


@click.group()
@click.version_option(VERSION, prog_name="nasibkit-enas")
def cli() -> None:
    """ENAS macro search (the official TF release's semantics) over the original or extended space."""


def _overrides(epochs, layers, channels, batch_size, train_size, valid_size, test_size) -> dict:
    """Command-line values that replace the preset's (None: keep the preset's)."""
    over = {k: v for k, v in {"epochs": epochs, "layers": layers, "channels": channels,
                              "batch_size": batch_size}.items() if v is not None}
    sizes = {k: v for k, v in {"train_size": train_size, "valid_size": valid_size,
                               "test_size": test_size}.items() if v is not None}
    if sizes:
        over["data"] = sizes
    return over


@cli.command()
@click.option("--space", type=click.Choice(ENAS_SPACES), default="original", show_default=True,
              help="Op space: the 6 ENAS ops or those plus 12 regular convolutions.")
@click.option("--scale", "--preset", "preset", type=click.Choice(PRESETS), default="quick", show_default=True,
              help="smoke: seconds on a CPU; quick: minutes on one GPU; paper: the reference's 310 epochs.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the preset's epochs.")
@click.option("--layers", type=click.IntRange(min=1), default=None, help="Override the searched layers.")
@click.option("--channels", type=click.IntRange(min=2), default=None, help="Override the child width (even).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the child batch size.")
@common_options
@reports_errors
def search(space, preset, epochs, layers, channels, batch_size, out, seed, device, data_dir, download,
           deterministic, force, train_size, valid_size, test_size):
    """Search an architecture; writes the trial folder OUT (records contract)."""
    from enas_ext.search import search_trial

    data = data_config(DataConfig(), data_dir, download, train_size, valid_size, test_size)
    spec = RunSpec(out=out, seed=seed, device=device, data=data, deterministic=deterministic, force=force)
    over = _overrides(epochs, layers, channels, batch_size, train_size, valid_size, test_size)
    result = search_trial(spec, space, preset, over)
    if result is None:
        return
    if result["status"] != "ok":
        click.echo(f"{result['status']} after {result['epochs']} epochs: {result.get('reason', '')} -> {out}")
        return
    click.echo(f"ok: {result['epochs']} epochs in {result['search_s']:.0f}s, final valid acc "
               f"{result['final_valid_acc']:.4f} (best {result['best_valid_acc']:.4f}), derived net "
               f"{result['params']:,} parameters -> {out}/arch.json")


@cli.command()
@click.argument("trial_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-n", "--num", type=click.IntRange(min=1), default=50, show_default=True,
              help="Architectures to draw.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@threads_option
@reports_errors
def sample(trial_dir, num, seed):
    """Draw architectures from TRIAL_DIR's checkpointed controller into TRIAL_DIR/samples.json."""
    from enas_ext.search import sample_from_trial

    samples = sample_from_trial(trial_dir, num, seed)
    click.echo(f"{len(samples)} architectures -> {trial_dir / 'samples.json'}")


if __name__ == "__main__":
    cli()
