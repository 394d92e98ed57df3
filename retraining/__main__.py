"""`python -m retraining`: retrain any method's arch.json from scratch."""
from __future__ import annotations

from pathlib import Path

import click

from contract.names import SCALE_HELP, SCALES, VERSION
from contract.options import CONTEXT
from nascore.cli import begin, common_options, data_config, reports_errors
from nascore.datafiles import DataConfig

# Nothing above imports torch: options are checked and the first line printed before it loads.


@click.command(context_settings=CONTEXT)
@click.version_option(VERSION, prog_name="nasibkit-retrain")
@click.argument("arch", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scale", "--preset", "scale", type=click.Choice(SCALES), default="quick", show_default=True,
              help=SCALE_HELP)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the scale's epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--channels", type=click.IntRange(min=1), default=None, help="Network width (default: arch.json's).")
@click.option("--recipe", type=click.Choice(["auto", "paper", "enas"]), default="auto", show_default=True,
              help="Weights' recipe: paper (SGD 0.9, cosine from 0.01), enas (Nesterov, 0.05 -> 0.001), "
                   "auto (NASIB architectures: paper; ENAS: enas).")
@common_options
@reports_errors
def cli(arch, scale, epochs, batch_size, channels, recipe, out, seed, device, data_dir, download, deterministic,
            force, train_size, valid_size, test_size):
    """Retrain ARCH (an arch.json) from scratch; reports test accuracy and parameters."""
    begin("nasibkit-retrain", {"arch": arch, "scale": scale, "recipe": recipe, "epochs": epochs, "out": out},
          device=device, scale=scale, data_dir=data_dir, download=download)
    from nascore.loop import RunSpec
    from retraining.train import retrain_trial

    data = data_config(DataConfig(), data_dir, download, train_size, valid_size, test_size)
    overrides = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size, "channels": channels,
                                   "recipe": recipe}.items() if v is not None}
    if any(v is not None for v in (train_size, valid_size, test_size)):
        overrides["data"] = {k: v for k, v in {"train_size": train_size, "test_size": test_size,
                                                 "valid_size": valid_size}.items() if v is not None}
    spec = RunSpec(out=out, seed=seed, device=device, data=data, deterministic=deterministic, force=force)
    result = retrain_trial(spec, arch, scale, overrides)
    if result is not None:
        click.echo(f"{result['status']}: test accuracy {result.get('test_acc', float('nan')):.4f}, "
                   f"{result.get('params', 0):,} parameters -> {out}")


if __name__ == "__main__":
    cli()
