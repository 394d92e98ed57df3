"""`python -m enas_ext`: ENAS macro search (`search`) and sampling from a searched controller (`sample`)."""
from __future__ import annotations

from pathlib import Path

import click

from contract.names import BN_RULES, DEFAULT_BN_RULE, ENAS_BRANCH_MODES, ENAS_OPTION_SETS, ENAS_SPACES, SCALES, VERSION
from contract.options import CONTEXT
from nascore.cli import (
    begin,
    common_options,
    data_config,
    device_option,
    late_threads_option,
    reports_errors,
    seed_option,
)
from nascore.datafiles import DataConfig

# Nothing above imports torch: options are checked and the first line printed before it loads.


@click.group(context_settings=CONTEXT)
@click.version_option(VERSION, prog_name="nasibkit-enas")
def cli() -> None:
    """ENAS macro search (the official TF release's semantics) over the original or extended space."""


def _overrides(epochs, layers, channels, batch_size, train_size, valid_size, test_size, **more) -> dict:
    """Command-line values that replace the scale's (None: keep the scale's)."""
    over = {k: v for k, v in {"epochs": epochs, "layers": layers, "channels": channels,
                              "batch_size": batch_size, **more}.items() if v is not None}
    sizes = {k: v for k, v in {"train_size": train_size, "valid_size": valid_size,
                               "test_size": test_size}.items() if v is not None}
    if sizes:
        over["data"] = sizes
    return over


@cli.command()
@click.option("--space", type=click.Choice(ENAS_SPACES), default="original", show_default=True,
              help="Op space: the 6 ENAS ops or those plus 12 regular convolutions.")
@click.option("--scale", "--preset", "scale", type=click.Choice(SCALES), default="quick", show_default=True,
              help="smoke: seconds on a CPU; quick: minutes on one GPU; paper: the reference's 310 epochs.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the scale's epochs.")
@click.option("--layers", type=click.IntRange(min=1), default=None, help="Override the searched layers.")
@click.option("--channels", type=click.IntRange(min=2), default=None, help="Override the child width (even).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the child batch size.")
@click.option("--branch-mode", type=click.Choice(ENAS_BRANCH_MODES), default=None,
              help="Which op a layer runs during search: the sampled one (intended), or the release's "
                   "last-built branch in every layer whatever was sampled (as-released). Final "
                   "architectures are unaffected (as-released under --options release). [default: intended]")
@click.option("--released-op", default=None, metavar="OP",
              help="as-released: the op in the last-built role [default: the space's last op].")
@click.option("--bn-eval", type=click.Choice(BN_RULES), default=None,
              help=f"BN statistics for rewards and valid accuracy (running under --options release). "
                   f"[default: {DEFAULT_BN_RULE}]")
@click.option("--grad-clip", type=click.FloatRange(min=0), default=None,
              help="Per-tensor norm bound of the child gradient, 0 = none (0 under --options release). [default: 5]")
@click.option("--options", "options", type=click.Choice(ENAS_OPTION_SETS), default="kit", show_default=True,
              help="kit: the kit's listed deviations from the release; release: the release as a whole "
                   "(as-released branch, running BN, no clipping; docs/enas-release.md).")
@common_options
@reports_errors
def search(space, scale, epochs, layers, channels, batch_size, branch_mode, released_op, bn_eval, grad_clip,
           options, out, seed, device, data_dir, download, deterministic, force, train_size, valid_size, test_size):
    """Search an architecture; writes the trial folder OUT (records contract)."""
    begin("nasibkit-enas search", {"strategy": "enas", "space": space, "scale": scale, "epochs": epochs,
                                   "out": out}, device=device, scale=scale, data_dir=data_dir, download=download)
    from enas_ext.search import search_trial
    from nascore.loop import RunSpec

    data = data_config(DataConfig(), data_dir, download, train_size, valid_size, test_size)
    spec = RunSpec(out=out, seed=seed, device=device, data=data, deterministic=deterministic, force=force)
    over = _overrides(epochs, layers, channels, batch_size, train_size, valid_size, test_size,
                      branch_mode=branch_mode, released_op=released_op, bn_eval=bn_eval, grad_clip=grad_clip,
                      options=options)
    result = search_trial(spec, space, scale, over)
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
@seed_option("Sampling seed (0 or more).")
@late_threads_option
@reports_errors
def sample(trial_dir, num, seed):
    """Draw architectures from TRIAL_DIR's checkpointed controller into TRIAL_DIR/samples.json."""
    begin("nasibkit-enas sample", {"trial": trial_dir, "architectures": num, "seed": seed}, data=False)
    from enas_ext.search import sample_from_trial

    samples = sample_from_trial(trial_dir, num, seed)
    click.echo(f"{len(samples)} architectures -> {trial_dir / 'samples.json'}")


@cli.command("bn-rules")
@click.argument("trial_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-n", "--num", type=click.IntRange(min=1), default=10, show_default=True,
              help="Architectures drawn from the trial's controller.")
@click.option("--reference-batches", type=click.IntRange(min=1), default=32, show_default=True,
              help="Calibration batches of the reference rule (an architecture's own statistics).")
@seed_option("Sampling and calibration seed (0 or more).")
@device_option("cpu")
@late_threads_option
@reports_errors
def bn_rules(trial_dir, num, reference_batches, seed, device):
    """Valid accuracy of sampled architectures under each BN rule, same weights -> TRIAL_DIR/bn_rules.json."""
    begin("nasibkit-enas bn-rules", {"trial": trial_dir, "architectures": num, "seed": seed}, device=device,
          data=False)
    from enas_ext.bn_probe import PROBE_FILE, probe

    record = probe(trial_dir, num, reference_batches, seed, device)
    for label, r in record["rules"].items():
        click.echo(f"{label:>16}: valid acc {r['mean_acc']:.4f}, mean |gap| to {record['reference']} "
                   f"{r['mean_abs_gap_to_reference']:.4f}")
    click.echo(f"-> {trial_dir / PROBE_FILE}")


if __name__ == "__main__":
    cli()
