"""Search curves with mean +- std bands (Figures 2, 3, 5) and the Figure 2 significance test."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import click
import matplotlib

matplotlib.use("Agg")  # files only, never a window: runs on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis import stats  # noqa: E402
from analysis.claims_fig2 import fig2_rows  # noqa: E402
from analysis.provenance import provenance_note
from analysis.records import (  # noqa: E402
    EXPERIMENT_HELP,
    NoTrialsError,
    Trial,
    TrialSet,
    budget_order,
    cli_errors,
    epochs_frame,
    load_trials,
    output_dir,
    select_experiment,
    trial_scale,
    write_text,
)
from contract.options import CONTEXT  # noqa: E402

FIGURES = ("fig2", "fig3", "fig5")
METRICS = {"fig2": ("valid_acc",), "fig3": ("valid_acc", "valid_acc@wall"),
           "fig5": ("valid_acc", "train_loss", "p_explore", "p2_entropy")}
AXIS_NAMES = {
    "valid_acc": "validation accuracy (%)", "train_loss": "training loss", "p_explore": "p_explore (P1)",
    "p2_entropy": "P2 entropy / ln K", "valid_acc@wall": "validation accuracy (%)",
}
WALL = "@wall"  # metric suffix: the same value against wall-clock seconds instead of epochs
MIN_SEEDS = 3  # points resting on fewer seeds are drawn dotted, without a band (as the caption says)
CHANCE = 10.0  # percent: ten balanced classes; every accuracy panel draws it and starts at 0
TIME_POINTS = 60  # wall-clock grid per group
TITLES = {
    "fig2": "Figure 2: ENAS macro search, original vs extended space",
    "fig3": "Figure 3: validation accuracy during search",
    "fig5": "Figure 5: NASIB superkernel search, one line per budget",
}
METHOD_NAMES = {"enas": "ENAS", "nasib": "NASIB", "darts": "DARTS", "snas": "SNAS", "random": "random"}
# The space each baseline is normally run in gets no suffix in its label.
DEFAULT_SPACE = {"enas": "original", "darts": "narrow", "snas": "narrow", "random": "narrow"}
NASIB_LABELS = {"narrow": "NASIB-1 (narrow)", "superkernel": "NASIB-2 (superkernel)"}
CLAIM = "Paper's claim (extended above original by ~10 points)"
Groups = list[tuple[str, list[Trial]]]


def method_label(strategy: str, space: str) -> str:
    """Figure 3 legend name of a (strategy, space) pair, e.g. 'ENAS', 'NASIB-2 (superkernel)'."""
    if strategy == "nasib" and space in NASIB_LABELS:
        return NASIB_LABELS[space]
    base = METHOD_NAMES.get(strategy, strategy)
    return base if DEFAULT_SPACE.get(strategy) == space else f"{base} ({space})"


def _budget_key(trial: Trial) -> tuple[float, str]:
    return (budget_order(trial), _budget_label(trial))


def _budget_label(trial: Trial) -> str:
    label = trial.config.get("budget_label")
    budget = trial.config.get("budget_s")
    return str(label) if label else f"{float(budget):g}s"


def _mode(trial: Trial) -> str:
    """ENAS branch mode (issue 10); records without it ran the intended mode."""
    return str(trial.config.get("branch_mode") or "intended")


def figure_groups(trials: TrialSet, figure: str) -> Groups:
    """Ordered (label, trials) pairs a figure plots from already-selected trials; NoTrialsError if none."""
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; valid: {', '.join(FIGURES)}")
    pool = [t for t in trials.ok if t.family != "retrain"]
    groups: dict[str, list[Trial]] = {}
    if figure == "fig2":
        modes = sorted({_mode(t) for t in pool if t.family == "enas"}, key=lambda m: (m != "intended", m))
        for mode in modes:
            for space in ("original", "extended"):
                picked = [t for t in pool if t.family == "enas" and t.space == space and _mode(t) == mode]
                if picked:
                    groups[f"ENAS {space}" + ("" if mode == "intended" else f" ({mode})")] = picked
    elif figure == "fig3":
        for t in sorted(pool, key=lambda t: (t.strategy, t.space)):
            groups.setdefault(method_label(t.strategy, t.space), []).append(t)
    else:
        # Only budgeted searches belong to the budget sweep; a fixed-epoch superkernel run does not.
        budgeted = [t for t in pool if t.strategy == "nasib" and t.space == "superkernel"
                    and (t.config.get("budget_s") is not None or t.config.get("budget_label"))]
        for t in sorted(budgeted, key=_budget_key):
            groups.setdefault(_budget_label(t), []).append(t)
    if not groups:
        raise NoTrialsError(f"no finished trials for {figure} ({trials.selection}) under {trials.root}")
    return list(groups.items())


def curve_table(groups: Groups, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per label, metric and epoch: n, mean, std, 95% t-interval over trials (percent accuracies)."""
    frames = []
    for label, trials in groups:
        frame = epochs_frame(trials)
        for metric in metrics:
            if metric.endswith(WALL):
                part = time_summary(frame, metric.removesuffix(WALL))
            elif metric in frame.columns:
                part = stats.group_summary(frame.dropna(subset=[metric]), ["epoch"], metric).sort_values("epoch")
            else:
                continue
            if part.empty:
                continue
            part.insert(0, "metric", metric)
            part.insert(0, "label", label)
            # No interval from one value, and a tail resting on fewer seeds than the rest is marked.
            part["reliable"] = part["n"] >= MIN_SEEDS
            frames.append(part)
    # x is "epoch" for per-epoch rows and "wall_s" (seconds since the search started) for '@wall' rows.
    columns = ["label", "metric", "epoch", "wall_s", "n", "mean", "std", "ci_low", "ci_high", "reliable"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True).reindex(columns=columns)


def time_summary(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per wall-clock second on a grid: each trial's value at its last epoch finished by then (epoch = seconds).

    A trial counts from its first finished epoch to its last, so n falls where runs ended."""
    if metric not in frame.columns or "wall_s" not in frame.columns or frame["wall_s"].isna().all():
        return pd.DataFrame()
    rows = []
    trials = {tid: g.sort_values("wall_s") for tid, g in frame.dropna(subset=[metric, "wall_s"]).groupby("trial_id")}
    end = max(g["wall_s"].max() for g in trials.values())
    for t in [end * (i + 1) / TIME_POINTS for i in range(TIME_POINTS)]:
        values = [g.loc[g["wall_s"] <= t, metric].iloc[-1] for g in trials.values()
                  if g["wall_s"].min() <= t <= g["wall_s"].max() + 1e-9]
        if values:
            rows.append({"wall_s": t, **stats.summarize(values)})
    return pd.DataFrame(rows)


def plot_curves(table: pd.DataFrame, figure: str, labels: list[str], path: Path, caption: str) -> None:
    """Mean line and mean +- std band per label; one panel per metric, two panels a row (page width)."""
    metrics = [m for m in METRICS[figure] if (table["metric"] == m).any()]
    missing = [AXIS_NAMES.get(m, m) for m in METRICS[figure] if m not in metrics]
    sns.set_theme(style="whitegrid")
    cols = min(2, max(len(metrics), 1))
    rows = math.ceil(max(len(metrics), 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.6 * rows + 1.0), squeeze=False)
    colors = dict(zip(labels, sns.color_palette("tab10", n_colors=max(len(labels), 1)), strict=False))
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for label in labels:
            part = table[(table["label"] == label) & (table["metric"] == metric)]
            if not part.empty:
                _draw(ax, part, label, colors[label])
        _axes(ax, metric, table[table["metric"] == metric])
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    note = f"; not recorded by these trials (panel skipped): {', '.join(missing)}" if missing else ""
    text = (f"lines: {', '.join(labels)}; mean ± std over seeds (n per line in the legend); dotted, no band: "
            f"fewer than {MIN_SEEDS} seeds; {caption}{note}")
    fig.suptitle(TITLES[figure] + "\n" + "\n".join(textwrap.wrap(text, 75 * cols)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _axes(ax, metric: str, part: pd.DataFrame) -> None:
    """Axis labels, and for accuracy a chance line with the axis from 0, so noise does not read as a trend."""
    ax.set_xlabel("wall-clock seconds" if metric.endswith(WALL) else "epoch (0 = first)")
    if not metric.endswith(WALL):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(AXIS_NAMES.get(metric, metric))
    if metric.startswith("valid_acc"):
        ax.axhline(CHANCE, color="grey", linestyle="--", linewidth=1, label=f"chance ({CHANCE:g}%)")
        top = float((part["mean"] + part["std"].fillna(0)).max()) if not part.empty else CHANCE
        ax.set_ylim(0, min(100.0, max(2 * CHANCE, top * 1.1)))
    if ax.lines:
        ax.legend(fontsize=8)


def _draw(ax, part: pd.DataFrame, label: str, color) -> None:
    """Solid line and band where enough seeds agree; a dotted line without band elsewhere."""
    style = "--" if "as-released" in label else "-"
    x = "wall_s" if part["epoch"].isna().all() else "epoch"
    solid = part[part["reliable"].astype(bool)]
    n = int(part["n"].max())
    ax.plot(part[x], part["mean"], color=color, linestyle=":", linewidth=1.2,
            label=None if len(solid) else f"{label} (n={n}, dotted)")
    if len(solid):
        ax.plot(solid[x], solid["mean"], color=color, linestyle=style, label=f"{label} (n={n})")
        spread = solid["std"]
        ax.fill_between(solid[x], solid["mean"] - spread, solid["mean"] + spread, color=color, alpha=0.25,
                        linewidth=0, where=spread.notna().tolist())


def final_values(trials: list[Trial]) -> list[float]:
    """Final validation accuracy (percent) of each trial, from result.json."""
    return [float(t.result["final_valid_acc"]) * trial_scale(t) for t in trials]


def above_every_epoch(table: pd.DataFrame) -> tuple[bool | None, int, int]:
    """Whether the extended mean curve is above the original at every shared epoch; (all, above, shared)."""
    acc = table[table["metric"] == "valid_acc"]
    wide = acc.pivot(index="epoch", columns="label", values="mean")
    if not {"ENAS original", "ENAS extended"} <= set(wide.columns):
        return None, 0, 0
    shared = wide[["ENAS original", "ENAS extended"]].dropna()
    if shared.empty:
        return None, 0, 0
    above = int((shared["ENAS extended"] > shared["ENAS original"]).sum())
    return above == len(shared), above, int(len(shared))


def fig2_test(groups: Groups, table: pd.DataFrame, trials: list[Trial] | None = None) -> dict:
    """Final-epoch accuracy per space, Welch and Mann-Whitney as description; the verdict is the scorecard's.

    The verdict is row fig2.sign of analysis.claims (same trials, same rules and scale gate), so this
    file, the caption and the scorecard never disagree."""
    by_label = dict(groups)
    orig = final_values(by_label.get("ENAS original", []))
    ext = final_values(by_label.get("ENAS extended", []))
    welch = stats.welch_test(ext, orig)
    pool = trials if trials is not None else [t for _, members in groups for t in members]
    rows = {r.id: r for r in fig2_rows(pool)}
    sign, margin = rows["fig2.sign"], rows["fig2.margin"]
    every, above, shared = above_every_epoch(table)
    return {
        "original": {**stats.summarize(orig), "values": orig},
        "extended": {**stats.summarize(ext), "values": ext},
        "mean_diff_points": welch["mean_diff"],
        "welch": welch,
        "mann_whitney": stats.mann_whitney(ext, orig),
        "verdict": sign.verdict,
        "scorecard": {r.id: r.verdict for r in rows.values()},
        "sentence": f"{CLAIM}: extended above original {sign.verdict}, ~10 points {margin.verdict} "
                    f"(scorecard rows fig2.sign, fig2.margin; {sign.detail or 'see claims.md'})",
        "extended_above_at_every_epoch": every,
        "epochs_above": above,
        "epochs_compared": shared,
    }


def format_fig2(result: dict) -> str:
    """Human summary of fig2_test() for the terminal."""
    welch, mw = result["welch"], result["mann_whitney"]
    lines = [
        "Final-epoch validation accuracy (%):",
        f"  original: {stats.format_mean_std(result['original'])}",
        f"  extended: {stats.format_mean_std(result['extended'])}",
        f"  mean difference (extended - original): {result['mean_diff_points']:+.2f} points (paper: ~+10)",
        f"  Welch t-test, one-sided 'extended > original': p = {welch['p_one_sided']:.4g}"
        + (f" ({welch['note']})" if welch["note"] else ""),
        f"  Mann-Whitney U (check): U = {mw['u']:.4g}, one-sided p = {mw['p_one_sided']:.4g}"
        + (f" ({mw['note']})" if mw["note"] else ""),
    ]
    every = result["extended_above_at_every_epoch"]
    if every is None:
        lines.append("  Mean curves: no shared epochs to compare.")
    else:
        word = "at every epoch" if every else "NOT at every epoch"
        lines.append(f"  Mean curves: extended above original at {result['epochs_above']} of "
                     f"{result['epochs_compared']} shared epochs ({word}).")
    lines.append(result["sentence"] + ".")
    return "\n".join(lines)


def _json_safe(value: object) -> object:
    """NaN -> None recursively, so the JSON file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def run_curves(results: Path, figure: str, out: Path | None = None,
               experiment: str | None = None) -> list[Path]:
    """Write <figure>_curves.csv/.png (and fig2_test.json) from one experiment (default: the figure)."""
    trials = select_experiment(load_trials(results), experiment, default=figure)
    click.echo(trials.summary())
    groups = figure_groups(trials, figure)
    for label, members in groups:
        exps = sorted({t.experiment for t in members})
        budgets = sorted({str(t.config.get("budget_label") or t.config.get("budget_s")) for t in members})
        click.echo(f"  {label}: {len(members)} trial(s) from {', '.join(exps)}")
        if len(exps) > 1 or len(budgets) > 1:
            click.echo(f"  note: '{label}' pools experiments {exps} / budgets {budgets}; "
                       "narrow with --experiment")
    table = curve_table(groups, METRICS[figure])
    folder = output_dir(results, out, "figures")
    csv_path, png_path = folder / f"{figure}_curves.csv", folder / f"{figure}_curves.png"
    table.to_csv(csv_path, index=False)
    caption = provenance_note(t for _, members in groups for t in members)
    result = fig2_test(groups, table, trials.ok) if figure == "fig2" else None
    extra = "; scorecard: " + ", ".join(f"{k} {v}" for k, v in result["scorecard"].items()
                                            if k in ("fig2.sign", "fig2.interaction")) if result else ""
    if figure == "fig3" and any(t.family == "enas" for _, members in groups for t in members):
        extra = "; ENAS runs its own fixed schedule (no budget), the others one budget"
    plot_curves(table, figure, [label for label, _ in groups], png_path, caption + extra)
    written = [csv_path, png_path]
    if result is not None:
        test_path = folder / "fig2_test.json"
        write_text(test_path, json.dumps(_json_safe({**result, "records": caption}), indent=2, sort_keys=True) + "\n")
        click.echo(format_fig2(result))
        written.append(test_path)
    for path in written:
        click.echo(f"wrote {path}")
    return written


@click.command(context_settings=CONTEXT)
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--figure", type=click.Choice(FIGURES), required=True, help="Which figure to draw.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output root (files go to OUT/figures/); default: RESULTS.")
@click.option("--experiment", default=None, help=EXPERIMENT_HELP.format(default="the figure's name"))
def main(results: Path, figure: str, out: Path | None, experiment: str | None) -> None:
    """Search curves (mean +- std over seeds) for Figure 2, 3 or 5 from the records under RESULTS."""
    with cli_errors():
        run_curves(results, figure, out, experiment)


if __name__ == "__main__":
    main()
