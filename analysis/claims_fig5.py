"""Scorecard rows for Figure 5: slopes per budget against a fixed-schedule control, budget fidelity, ablation."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from analysis import claim_measures as cm
from analysis import stats
from analysis.claims_fig2 import flags_of
from analysis.gates import FIG5_GATE, MECHANICS_GATE, MIN_UNITS, accuracy_quantum, distinct, gate_lacks, se_floor
from analysis.records import Trial, TrialSet, budget_order
from analysis.records import select_experiment as _select
from analysis.verdicts import INCONCLUSIVE, REPRODUCED, Claim, combine, gated, judge, judge_band, not_run

FIDELITY = 10.0  # percent: realised epochs within this of the plan, budget used within this of the budget
ALPHA = 0.05  # the Kruskal-Wallis level for "varies significantly"
Q_SLOPE = "slope of the curve decreases as the workloads approach close to their target epochs"
Q_VARIES = "this slope varies significantly for all four different workloads"
Q_SOONER = ("lower the number of epochs available, the model spends relatively lesser time in exploring the "
            "search space and hence converges quickly by entering the exploitation phase")
Q_FIDELITY = ("the computational budget, which is provided in such a way that they get mapped to the mentioned "
              "value of target epochs")
Q_ABLATION = "NASIB-1 outperforms other methods ... we attribute this to efficient utilization of computational budget"


# Each row's fixed text: id, the paper's sentence, measure, test, threshold.
ROWS = {
    "slope": ("fig5.slope_falls", Q_SLOPE,
              "slope drop (first half - second half, x = epoch / run length, points per run) of each budget's run "
              "minus that of the longest budget's run truncated at the same epochs (a schedule not aimed at "
              "that budget), paired by seed, mean over the smaller budgets", "t 95% interval over seeds",
              "interval above 0"),
    "varies": ("fig5.slope_varies", Q_VARIES,
              "least-squares slope of validation accuracy per epoch over each whole run; effect: the largest "
              "minus the smallest budget mean (points per epoch)",
              "Kruskal-Wallis test across budgets, seeds as units",
              f"p < {ALPHA:g}"),
    "sooner": ("fig5.smaller_converges_sooner", Q_SOONER,
              "Spearman rho between budget and the share of the final accuracy (3-epoch running mean) reached "
              "at half the epochs", "Fisher-z 95% interval of rho",
              "interval below 0 (smaller budget, larger share)"),
    "entropy": ("fig5.p2_entropy_falls", Q_SOONER,
              "P2 entropy / ln K, first epoch - last epoch, per budget (a check of the kit's schedule)",
              "t 95% interval over seeds per budget; the row shows the smallest budget",
              "every budget's interval above 0"),
    "fidelity": ("budget.fidelity", Q_FIDELITY,
              "realised / planned epochs - 1 (%), per trial; budget used / budget shown in the note",
              "t 95% interval over trials", f"interval within ±{FIDELITY:g}%"),
    "ablation": ("fig5.budget_aware_ablation", Q_ABLATION,
              "final validation accuracy (valid_acc: the architecture derived at that epoch) of each smaller "
              "budget's run minus the longest budget's run at the same epoch (its schedule truncated there), "
              "paired by seed, mean over the smaller budgets (points)",
              "t 95% interval over seeds (SD floor: one validation image)",
              "interval above 0 (the budget-aware schedule beats a truncated one)"),
}


def _row(name: str, flags: list[str]) -> Claim:
    """A fresh, unjudged Figure 5 row."""
    key, paper, measure, test, threshold = ROWS[name]
    kind = "mechanics" if name == "entropy" else "paper"
    return Claim(key, "fig5", paper, measure, test, threshold, flags=flags, kind=kind)


def sweep_of(trials: TrialSet) -> list[Trial]:
    """Budgeted NASIB superkernel searches of fig5 (identical curves count once)."""
    picked = [t for t in _select(trials, None, default="fig5").ok
              if t.strategy == "nasib" and t.space == "superkernel"
              and (t.config.get("budget_s") is not None or t.config.get("budget_label"))]
    return distinct(picked)[0]


def by_budget(sweep: list[Trial]) -> dict[float, dict[int, Trial]]:
    """budget order -> seed -> trial."""
    cells: dict[float, list[Trial]] = {}
    for t in sweep:
        cells.setdefault(budget_order(t), []).append(t)
    return {budget: cm.by_seed(trials) for budget, trials in sorted(cells.items())}


def _rows(trial: Trial, upto: int | None = None) -> list[tuple[int, float, float]]:
    rows = cm.curve(trial)
    return rows if upto is None else [r for r in rows if r[0] < upto]


def slope_drop_en(rows: list[tuple[int, float, float]]) -> float | None:
    """Slope over the first half minus the second, x = epoch / epochs of the run (points per whole run)."""
    if len(rows) < 6:
        return None
    n = len(rows)
    scaled = [(e, w, v) for e, w, v in rows]
    half = n // 2
    fit = [np.polyfit([r[0] / n for r in part], [r[2] for r in part], 1)[0] for part in (scaled[:half], scaled[half:])]
    return float(fit[0] - fit[1])


def fig5_claims(trials: TrialSet) -> list[Claim]:
    """Slope falls (vs control), slope varies, sooner convergence, P2 entropy, fidelity, the ablation."""
    sweep = sweep_of(trials)
    flags = flags_of(sweep)
    lacks, mech = gate_lacks(FIG5_GATE, sweep), gate_lacks(MECHANICS_GATE, sweep)
    if not sweep:
        empty = [_row("slope", flags), _row("varies", flags), _row("sooner", flags), _row("entropy", flags),
                 _row("fidelity", flags), _row("ablation", flags)]
        return [not_run(c, "needs budgeted NASIB superkernel trials (fig5)") for c in empty]
    grid = by_budget(sweep)
    return [gated(_slope(grid, flags), lacks), gated(_varies(grid, flags), lacks),
            gated(_sooner(sweep, flags), lacks), gated(_entropy(grid, flags), mech),
            gated(_fidelity(sweep, flags), mech), gated(_ablation(grid, flags), lacks)]


def _paired_with_longest(grid: dict[float, dict[int, Trial]], measure) -> tuple[list[float], list[str], int]:
    """measure(run, longest run of its seed) for every smaller budget: per-seed means, a note per budget, and
    how many pairs the measure left out (None)."""
    longest = grid[max(grid)]
    per_seed: dict[int, list[float]] = {}
    parts, left_out = [], 0
    for runs in list(grid.values())[:-1]:
        diffs = []
        for seed, t in runs.items():
            if seed not in longest:
                continue
            if (d := measure(t, longest[seed])) is None:
                left_out += 1
                continue
            per_seed.setdefault(seed, []).append(d)
            diffs.append(d)
        if diffs:
            parts.append(f"{_label(runs)}: {np.mean(diffs):+.1f} (n {len(diffs)})")
    return [float(np.mean(v)) for v in per_seed.values()], parts, left_out


def _slope_vs_control(run: Trial, ref: Trial) -> float | None:
    own, ctrl = slope_drop_en(_rows(run)), slope_drop_en(_rows(ref, len(run.epochs)))
    return None if own is None or ctrl is None else own - ctrl


def _slope(grid: dict[float, dict[int, Trial]], flags: list[str]) -> Claim:
    claim = _row("slope", flags)
    if len(grid) < 2:
        return not_run(claim, "needs at least two budgets (the longest is the control)")
    values, parts, _ = _paired_with_longest(grid, _slope_vs_control)
    claim.detail = "per budget: " + ", ".join(parts) if parts else "no run with >= 6 epochs and a control"
    return judge(claim, stats.mean_interval(values), n=f"{len(values)} seeds")


def _label(runs: dict[int, Trial]) -> str:
    t = next(iter(runs.values()))
    return str(t.config.get("budget_label") or t.config.get("budget_s"))


def _varies(grid: dict[float, dict[int, Trial]], flags: list[str]) -> Claim:
    claim = _row("varies", flags)
    slopes = {b: [s for t in runs.values() if len(rows := _rows(t)) >= 3
                  and (s := float(np.polyfit([r[0] for r in rows], [r[2] for r in rows], 1)[0])) is not None]
              for b, runs in grid.items()}
    slopes = {b: v for b, v in slopes.items() if v}
    if len(slopes) < 2:
        return not_run(claim, "needs at least two budgets with >= 3 epochs")
    means = [float(np.mean(v)) for v in slopes.values()]
    claim.effect, claim.n = max(means) - min(means), f"{len(slopes)} budgets, {sum(map(len, slopes.values()))} trials"
    few = min(len(v) for v in slopes.values())
    if few < MIN_UNITS:
        claim.verdict, claim.detail = INCONCLUSIVE, f"{few} seed(s) at a budget, fewer than {MIN_UNITS}"
        return claim
    p = float(sps.kruskal(*slopes.values()).pvalue)
    claim.verdict = REPRODUCED if p < ALPHA else INCONCLUSIVE
    claim.detail = f"Kruskal-Wallis p = {p:.3g}" + ("" if p < ALPHA else ": no difference shown (not evidence of none)")
    return claim


def _sooner(sweep: list[Trial], flags: list[str]) -> Claim:
    claim = _row("sooner", flags)
    pairs = [(budget_order(t), v) for t in sweep if (v := cm.share_at_half(t)) is not None]
    return judge(claim, stats.spearman_interval([p[0] for p in pairs], [p[1] for p in pairs]), higher=False,
                 n=f"{len(pairs)} trials, {len({p[0] for p in pairs})} budgets")


def _entropy(grid: dict[float, dict[int, Trial]], flags: list[str]) -> Claim:
    claim = _row("entropy", flags)
    per = {b: [v for t in runs.values() if (v := cm.entropy_drop(t)) is not None] for b, runs in grid.items()}
    per = {b: v for b, v in per.items() if v}
    if not per:
        return not_run(claim, "no trial recorded p2_entropy (records before issue 9)")
    ivs = {b: stats.mean_interval(v) for b, v in per.items()}
    first = min(ivs)
    judge(claim, ivs[first], n=f"{len(per[first])} seeds at the smallest budget")
    verdicts = {b: judge(_row("entropy", []), iv).verdict for b, iv in ivs.items()}
    claim.detail = "per budget: " + ", ".join(f"{b:g}: {iv['effect']:.2f} ({verdicts[b]})" for b, iv in ivs.items())
    claim.verdict = combine(list(verdicts.values()))
    return claim


def _fidelity(sweep: list[Trial], flags: list[str]) -> Claim:
    claim = _row("fidelity", flags)
    pairs = [(float(t.result["realised_epochs"]), float(t.result["planned_epochs"])) for t in sweep
             if t.result.get("realised_epochs") and t.result.get("planned_epochs")]
    if not pairs:
        return not_run(claim, "no trial recorded planned_epochs and realised_epochs")
    floor = se_floor(100 / max(1.0, min(p for _, p in pairs)))  # one epoch of the plan, in percent
    judge_band(claim, stats.mean_interval([100 * (r / p - 1) for r, p in pairs], sd_floor=floor),
               (-FIDELITY, FIDELITY), n=f"{len(pairs)} trials")
    used = [100 * float(t.result["budget_used_s"]) / float(t.result["budget_s"]) for t in sweep
            if t.result.get("budget_used_s") and t.result.get("budget_s")]
    if used:
        claim.detail = f"budget used {min(used):.0f}-{max(used):.0f}% of the budget; {claim.detail}".rstrip("; ")
    return claim


def _truncated_gap(run: Trial, ref: Trial) -> float | None:
    """The run's final accuracy minus the longest run's at the same epoch; None unless the longest went on past it."""
    end = cm.last_epoch(run)
    if cm.last_epoch(ref) <= end:  # not truncated there: two whole schedules, or the longest stopped sooner
        return None
    own, cut = cm.at_epoch(run, end), cm.at_epoch(ref, end)
    return None if own is None or cut is None else own - cut


def _layers_changed(run: Trial, ref: Trial) -> float | None:
    """Share of layers whose argmax op differs between the run's end and the longest run at that epoch."""
    end = cm.last_epoch(run)
    rows = [r.get("argmax_ops") for r in (*[r for r in ref.epochs if r["epoch"] == end], run.epochs[-1])]
    if len(rows) != 2 or not all(rows):
        return None
    return float(np.mean([a != b for a, b in zip(*rows, strict=False)]))


def _ablation(grid: dict[float, dict[int, Trial]], flags: list[str]) -> Claim:
    """The budget-aware schedule vs the longest budget's, truncated at each smaller budget's end, by seed."""
    claim = _row("ablation", flags)
    if len(grid) < 2:
        return not_run(claim, "needs at least two budgets (the longest is truncated)")
    longest = grid[max(grid)]
    values, parts, dropped = _paired_with_longest(grid, _truncated_gap)
    if not values:
        return not_run(claim, "no longest-budget run goes past the last epoch of a smaller run of its seed")
    changed = [c for runs in list(grid.values())[:-1] for seed, t in runs.items()
               if seed in longest and (c := _layers_changed(t, longest[seed])) is not None]
    claim.detail = "per budget: " + ", ".join(parts)
    if dropped:
        claim.detail += f"; {dropped} pair(s) left out (the longest run did not go past the smaller run's end)"
    # argmax_ops only adds which layers differ; the accuracies already measure the derived architectures
    claim.detail += (f"; derived architectures differ in {100 * np.mean(changed):.0f}% of layers" if changed
                     else "; which layers differ: not available for these pairs (no per-epoch argmax_ops)")
    floor = se_floor(accuracy_quantum([t for runs in grid.values() for t in runs.values()])) * 2 ** 0.5
    return judge(claim, stats.mean_interval(values, sd_floor=floor), n=f"{len(values)} seeds")
