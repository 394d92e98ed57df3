"""`python -m nasib`: search (NASIB and its baselines) and plan (budget -> epochs)."""
from __future__ import annotations

import click

from contract.budget import Budget, BudgetError
from contract.names import BN_RULES, DEFAULT_BN_RULE, METHOD_SPACES, SCALE_HELP, SCALES, VERSION
from contract.names import STRATEGIES as _STRATEGIES
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
_SPACES = METHOD_SPACES["nasib"]  # the spaces NASIB and its baselines search, said once in contract.names


@click.group(context_settings=CONTEXT)
@click.version_option(VERSION, prog_name="nasibkit-nasib")
def cli() -> None:
    """NASIB: budget-aware architecture search over superkernels."""


# --- search and plan (NASIB) ---------------------------------------------------------------



def _budget_option(ctx, param, value):
    """Parse a budget such as 2h here, once: a typo fails before anything loads, and the value travels on."""
    if value is None:
        return None
    try:
        return Budget.parse(value)
    except BudgetError as e:
        raise click.BadParameter(str(e)) from None


def _priors_option(ctx, param, values):
    """--prior OP=VALUE (repeatable) -> {op: value}."""
    priors = {}
    for item in values:
        op, sep, num = item.partition("=")
        try:
            priors[op.strip()] = float(num)
        except ValueError:
            sep = ""
        if not sep or not op.strip():
            raise click.BadParameter(f"{item!r}: use OP=VALUE, e.g. --prior conv3x3=2.0")
    return priors


def _search_overrides(**options) -> dict:
    """Command-line settings that were given, as NasibSearchConfig overrides."""
    return {key: val for key, val in options.items() if val not in (None, {})}


@cli.command()
@click.option("--space", type=click.Choice(_SPACES), required=True,
              help="narrow (NASIB-1, 7 ops) or superkernel (NASIB-2, m*m ops).")
@click.option("--budget", default=None, callback=_budget_option,
              help="Wall-clock budget for the whole search: 90s, 45m, 2h, 1.5d.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Run exactly N epochs instead (no budget). Neither: the scale's default.")
@click.option("--scale", "--preset", "scale", type=click.Choice(SCALES), default="quick", show_default=True,
              help=SCALE_HELP)
@click.option("--prior", "priors", multiple=True, callback=_priors_option, metavar="OP=VALUE",
              help="Initial alpha of an op in every layer (repeatable), e.g. conv3x3=2.0.")
@click.option("--lam", type=click.FloatRange(min=0, min_open=True), default=None,
              help="P2 temperature lambda (> 0). [scale default: 0.1]")
@click.option("--k", "k", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Exploration probability of the last epoch, in (0, 1). [scale default: 0.1]")
@click.option("--m", "m", type=click.IntRange(min=1), default=None, help="Superkernel side m. [scale default: 9]")
@click.option("--K", "sep_above", type=click.IntRange(min=1), default=None,
              help="Superkernel kernels with i*j > K are separable. [scale default: 9]")
@click.option("--layers", type=click.IntRange(min=4), default=None, help="Searched layers.")
@click.option("--channels", type=click.IntRange(min=1), default=None, help="Stem width.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--strategy", type=click.Choice(_STRATEGIES), default=None,
              help="nasib (default), random, or darts / snas (narrow spaces only).")
@click.option("--alpha-optimizer", type=click.Choice(["adam", "sgd"]), default=None,
              help="NASIB's alpha optimiser: adam (ProxylessNAS, default) or sgd (momentum).")
@click.option("--alpha-lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Alpha learning rate. [default: 0.02]")
@click.option("--alpha-momentum", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Adam beta1 or SGD momentum of the alphas. [default: 0]")
@click.option("--alpha-steps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Alpha steps per weight step. [default: the strategy's rule, 1 for nasib and darts]")
@click.option("--bn-eval", type=click.Choice(BN_RULES), default=None,
              help=f"BN statistics at evaluation. [default: {DEFAULT_BN_RULE}]")
@click.option("--weights-recipe", type=click.Choice(["paper", "enas"]), default="paper", show_default=True,
              help="Supernet weights: the paper's SGD 0.9, cosine from 0.01; or ENAS's child (Nesterov, 0.05).")
@common_options
@reports_errors
def search(space, budget, epochs, scale, priors, lam, k, m, sep_above, layers, channels, batch_size,
           strategy, alpha_optimizer, alpha_lr, alpha_momentum, alpha_steps, bn_eval, weights_recipe, out, seed,
           device, data_dir, download, deterministic, force, train_size, valid_size, test_size):
    """Search an architecture within a wall-clock budget (or for a fixed number of epochs)."""
    if budget is not None and epochs is not None:
        raise click.UsageError("give either --budget or --epochs, not both")
    begin("nasibkit-nasib search", {"strategy": strategy or "nasib", "space": space, "scale": scale, "budget": budget,
                                    "epochs": epochs, "out": out}, device=device, scale=scale,
          data_dir=data_dir, download=download)
    from nascore.loop import RunSpec
    from nasib.presets import WEIGHT_RECIPES
    from nasib.search import search_trial

    over = _search_overrides(budget=budget, epochs=epochs, priors=priors, lam=lam, k=k, m=m, K=sep_above,
                             layers=layers, channels=channels, batch_size=batch_size, strategy=strategy,
                             alpha_optimizer=alpha_optimizer, alpha_lr=alpha_lr, alpha_momentum=alpha_momentum,
                             alpha_steps=alpha_steps, bn_eval=bn_eval, **WEIGHT_RECIPES[weights_recipe])
    sizes = {"train_size": train_size, "valid_size": valid_size, "test_size": test_size}
    if any(v is not None for v in sizes.values()):
        over["data"] = {key: val for key, val in sizes.items() if val is not None}
    if budget is None and epochs is None:
        click.echo(f"no --budget or --epochs given: using the {scale} scale's default", err=True)
    data = data_config(DataConfig(), data_dir, download, None, None, None)
    spec = RunSpec(out=out, seed=seed, device=device, data=data, deterministic=deterministic, force=force)
    result = search_trial(spec, space, scale, over)
    if result is not None and result["status"] == "ok":
        click.echo(f"ok: {result['epochs']} epochs, valid accuracy {result['final_valid_acc']:.4f} "
                   f"(best {result['best_valid_acc']:.4f}), {result['budget_used_s']:.1f}s used; "
                   f"arch: {' '.join(result['arch'])} -> {out}/arch.json")
    elif result is not None:
        click.echo(f"{result['status']}: {result.get('reason', '')} -> {out}", err=True)
        raise SystemExit(1)


@cli.command()
@click.option("--budget", required=True, callback=_budget_option,
              help="Wall-clock budget: 90s, 45m, 2h, 1.5d.")
@click.option("--space", type=click.Choice(_SPACES), default="superkernel", show_default=True)
@click.option("--scale", "--preset", "scale", type=click.Choice(SCALES), default="quick", show_default=True,
              help=SCALE_HELP)
@device_option()
@click.option("--k", "k", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None)
@click.option("--m", "m", type=click.IntRange(min=1), default=None)
@click.option("--K", "sep_above", type=click.IntRange(min=1), default=None)
@click.option("--layers", type=click.IntRange(min=4), default=None)
@click.option("--channels", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--strategy", type=click.Choice(_STRATEGIES), default=None)
@click.option("--train-size", type=click.IntRange(min=1), default=None, help="Training images an epoch uses.")
@click.option("--valid-size", type=click.IntRange(min=1), default=None, help="Held-out images.")
@seed_option()
@click.option("--json", "as_json", is_flag=True, help="Print the whole plan as JSON.")
@late_threads_option
@reports_errors
def plan(budget, space, scale, device, k, m, sep_above, layers, channels, batch_size, strategy, train_size,
         valid_size, seed, as_json):
    """Measure an epoch on this machine and show the epochs, beta and p schedule a budget buys."""
    import json

    # The first line goes to stderr: with --json, stdout is the plan alone.
    begin("nasibkit-nasib plan", {"strategy": strategy or "nasib", "space": space, "scale": scale, "budget": budget},
          device=device, scale=scale, data=False)
    from nasib.plan import plan as make_plan

    over = _search_overrides(k=k, m=m, K=sep_above, layers=layers, channels=channels, batch_size=batch_size,
                             strategy=strategy)
    sizes = {key: val for key, val in {"train_size": train_size, "valid_size": valid_size}.items() if val}
    if sizes:
        over["data"] = sizes
    click.echo("timing the weight, alpha and evaluation steps on this machine ...", err=True)
    result = make_plan(space, scale, budget, device, over, seed)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    t, sched = result["timing"], result["schedule"]
    shown = sched if len(sched) <= 10 else sched[:5] + [None] + sched[-3:]
    click.echo(f"{result['space']} ({result['num_ops']} ops), scale {scale}, on {result['device']}: "
               f"weight step {t['weight_s'] * 1e3:.1f} ms, alpha step {t['alpha_s'] * 1e3:.1f} ms, "
               f"eval batch {t['eval_s'] * 1e3:.1f} ms, checkpoint {t['checkpoint_s']:.2f} s")
    click.echo(f"epoch ({result['train_images']} train / {result['valid_images']} held-out images): "
               f"measured {result['epoch_s']:.2f} s, planned with {result['estimate_s']:.2f} s")
    click.echo(f"budget {budget} = {result['budget_s']:.0f} s: {result['used_s']:.1f} s timing run, "
               f"{result['reserve_s']:.1f} s reserve -> n = {result['n']} epochs, "
               f"beta = {result['beta']:.5f}, k = {result['k']:g}")
    click.echo("p schedule: " + ", ".join("..." if p is None else f"{p:.3f}" for p in shown))



if __name__ == "__main__":
    cli()
