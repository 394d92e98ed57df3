"""Figure 4: how often the ENAS controller picks each op of the extended space in its final samples."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click
import matplotlib

from contract.options import CONTEXT

matplotlib.use("Agg")  # files only, never a window: runs on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.legend_handler import HandlerTuple  # noqa: E402

from analysis import stats  # noqa: E402
from analysis.provenance import provenance_note
from analysis.records import (  # noqa: E402
    EXPERIMENT_HELP,
    NoTrialsError,
    RecordError,
    Trial,
    TrialSet,
    cli_errors,
    load_trials,
    output_dir,
    read_samples,
    select_experiment,
)

# The six ops of the original ENAS macro space; everything else in the extended space was added.
ORIGINAL_OPS = ("conv3x3", "sep3x3", "conv5x5", "sep5x5", "avgpool3x3", "maxpool3x3")


def select_trials(trials: TrialSet) -> list[Trial]:
    """Finished ENAS extended-space trials with samples.json among already-selected trials."""
    picked = trials.select(family="enas", space="extended")
    without = [t.key for t in picked if not (t.path / "samples.json").exists()]
    if without:
        click.echo(f"  skipped {len(without)} trial(s) without samples.json: {', '.join(without)}")
    picked = [t for t in picked if t.key not in without]
    if not picked:
        raise NoTrialsError(f"no finished ENAS trials with space 'extended' and samples.json "
                            f"({trials.selection}) under {trials.root}")
    return picked


def count_ops(trials: list[Trial]) -> pd.DataFrame:
    """Op x trial counts over all layers of all samples, plus original flag, total and share %."""
    op_names: list[str] | None = None
    counts: dict[str, dict[str, int]] = {}
    for trial in trials:
        data = read_samples(trial)
        if op_names is None:
            op_names = list(data["op_names"])
        elif list(data["op_names"]) != op_names:
            raise RecordError(f"{trial.path / 'samples.json'}: op_names differ from the other trials'")
        column = dict.fromkeys(op_names, 0)
        for sample in data["samples"]:
            for op in sample["ops"]:
                column[op] += 1
        counts[trial.key] = column
    table = pd.DataFrame(counts, index=op_names)
    table.index.name = "op"
    table.insert(0, "original", [op in ORIGINAL_OPS for op in table.index])
    table["total"] = table[list(counts)].sum(axis=1)
    grand = table["total"].sum()
    table["share_pct"] = 100.0 * table["total"] / grand if grand else 0.0
    return table


def added_share_tests(table: pd.DataFrame) -> dict:
    """Share of choices going to added ops vs uniform (n_added/n_ops): pooled binomial + per-trial t."""
    trial_cols = [c for c in table.columns if c not in ("original", "total", "share_pct")]
    added = ~table["original"]
    expected = float(added.sum()) / len(table)
    pooled = stats.binomial_share(int(table.loc[added, "total"].sum()), int(table["total"].sum()), expected)
    per_trial = {c: float(table.loc[added, c].sum() / table[c].sum()) for c in trial_cols if table[c].sum()}
    return {"pooled": pooled, "per_trial": per_trial,
            "across_trials": stats.one_sample_t(list(per_trial.values()), expected),
            "n_added": int(added.sum()), "n_ops": len(table)}


def per_op_tests(table: pd.DataFrame, alpha: float = 0.05) -> list[dict]:
    """Per trial and op: exact binomial 'chosen more than uniform' test, Holm-corrected over all of them.

    Layers of one sample share the controller's state, so the per-trial count overstates independence
    a little; the correction covers the number of tests, not that."""
    trial_cols = [c for c in table.columns if c not in ("original", "total", "share_pct")]
    rows = []
    for col in trial_cols:
        n = int(table[col].sum())
        for op in table.index:
            test = stats.binomial_share(int(table.loc[op, col]), n, 1.0 / len(table))
            rows.append({"trial": col, "op": op, "original": bool(table.loc[op, "original"]), "k": test["k"],
                         "n": n, "share": test["share"], "uniform": test["expected"], "p_greater": test["p_greater"]})
    for row, adj in zip(rows, stats.holm([r["p_greater"] for r in rows]), strict=True):
        row["p_holm"] = adj
        row["above_uniform"] = bool(adj < alpha)
    return rows


def format_table(table: pd.DataFrame) -> str:
    """Printable op table: a mark column (O original, + added), per-trial counts, total, share %."""
    shown = table.copy()
    shown.insert(0, "kind", ["O" if flag else "+" for flag in shown.pop("original")])
    shown["share_pct"] = shown["share_pct"].map(lambda v: f"{v:.1f}")
    return shown.to_string()


def format_tests(result: dict) -> str:
    """Terminal summary of added_share_tests(), with the caveat about dependence between choices."""
    pooled, across = result["pooled"], result["across_trials"]
    lines = [
        f"Added ops ({result['n_added']} of {result['n_ops']}) got {pooled['k']} of {pooled['n']} choices = "
        f"{100 * pooled['share']:.1f}% (uniform controller: {100 * pooled['expected']:.1f}%).",
        f"  exact binomial test vs uniform: two-sided p = {pooled['p_two_sided']:.4g}, "
        f"'more than uniform' p = {pooled['p_greater']:.4g}; 95% CI of the share "
        f"[{100 * pooled['ci_low']:.1f}%, {100 * pooled['ci_high']:.1f}%].",
        "  caveat: choices within one trial share a controller (and layers within a sample are correlated),",
        "  so the pooled binomial test overstates the evidence; the trial is the independent unit:",
    ]
    shares = ", ".join(f"{k}: {100 * v:.1f}%" for k, v in result["per_trial"].items())
    lines.append(f"  per-trial added share: {shares}")
    if across["note"]:
        lines.append(f"  one-sample t-test of per-trial shares vs uniform: not possible ({across['note']}).")
    else:
        lines.append(f"  one-sample t-test of per-trial shares vs uniform (n={across['n']}): "
                     f"two-sided p = {across['p_two_sided']:.4g}.")
    return "\n".join(lines)


def plot_counts(table: pd.DataFrame, path: Path, caption: str) -> None:
    """Stacked bars of counts per op, one segment per trial; blue shades original ops, orange added."""
    trial_cols = [c for c in table.columns if c not in ("original", "total", "share_pct")]
    sns.set_theme(style="whitegrid")
    blues = sns.color_palette("Blues_r", n_colors=len(trial_cols) + 1)
    oranges = sns.color_palette("Oranges_r", n_colors=len(trial_cols) + 1)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * len(table) + 2), 5.0))
    xs = range(len(table))
    bottom = pd.Series(0.0, index=table.index)
    for i, col in enumerate(trial_cols):
        colors = [blues[i] if flag else oranges[i] for flag in table["original"]]
        ax.bar(xs, table[col], bottom=bottom, color=colors, edgecolor="white", linewidth=0.5)
        bottom += table[col]
    uniform = table["total"].sum() / len(table)
    ax.axhline(uniform, color="grey", linestyle="--", linewidth=1, label="uniform controller")
    ax.set_xticks(list(xs), table.index, rotation=60, ha="right")
    ax.set_xlabel("candidate operation")
    ax.set_ylabel("times chosen (all layers, all samples)")
    # One legend entry per segment showing both its shades, so the orange segments are named too.
    pairs = [(_patch(blues[i]), _patch(oranges[i])) for i in range(len(trial_cols))]
    handles = [_patch(blues[0]), _patch(oranges[0]), *pairs, ax.lines[0]]
    names = ["original ENAS ops", "added ops", *(f"segment {i + 1}: {c}" for i, c in enumerate(trial_cols)),
             "uniform controller"]
    ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              handler_map={tuple: HandlerTuple(ndivide=None)})  # outside the axes: it hid the tallest bars
    modes = "intended and as-released (the null) trials" if any("released" in c for c in trial_cols) else "trials"
    text = f"{len(trial_cols)} {modes} stacked, bottom to top; {caption}"
    ax.set_title("Figure 4: op choices of the ENAS controller in its final samples, extended space\n"
                 + "\n".join(textwrap.wrap(text, 100)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _patch(color) -> plt.Rectangle:
    """A legend swatch."""
    return plt.Rectangle((0, 0), 1, 1, color=color)


def run_kernel_freq(results: Path, experiment: str | None = None, out: Path | None = None) -> list[Path]:
    """Count op choices of one experiment's trials (default fig4), print tests, write fig4_kernel_freq.*."""
    trials = select_experiment(load_trials(results), experiment, default="fig4")
    click.echo(trials.summary())
    chosen = select_trials(trials)
    table = count_ops(chosen)
    folder = output_dir(results, out, "figures")
    csv_path, png_path = folder / "fig4_kernel_freq.csv", folder / "fig4_kernel_freq.png"
    table.to_csv(csv_path)
    note = provenance_note(chosen)
    plot_counts(table, png_path, note)
    click.echo("Op choices (O = original ENAS op, + = added):")
    click.echo(format_table(table))
    shares = added_share_tests(table)
    click.echo(format_tests(shares))
    per_op = per_op_tests(table)
    above = [f"{r['op']} ({r['trial']})" for r in per_op if r["above_uniform"]]
    click.echo(f"Per-op exact binomial tests, Holm-corrected over {len(per_op)}: above uniform: "
               f"{', '.join(above) or 'none'}")
    tests_path = folder / "fig4_tests.json"
    tests_path.write_text(json.dumps({"records": note, "added_share": shares, "per_op": per_op},
                                     indent=1, default=str).replace("NaN", "null") + "\n")
    for path in (csv_path, png_path, tests_path):
        click.echo(f"wrote {path}")
    return [csv_path, png_path, tests_path]


@click.command(context_settings=CONTEXT)
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--experiment", default=None, help=EXPERIMENT_HELP.format(default="fig4"))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output root (files go to OUT/figures/); default: RESULTS.")
def main(results: Path, experiment: str | None, out: Path | None) -> None:
    """Figure 4: op frequencies in the samples of finished ENAS extended-space trials under RESULTS."""
    with cli_errors():
        run_kernel_freq(results, experiment, out)


if __name__ == "__main__":
    main()
