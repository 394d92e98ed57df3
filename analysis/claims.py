"""`python -m analysis.claims RESULTS`: every claim of the paper tested from the records, one row each.

Writes <out>/figures/claims.md and claims.json: the paper's sentence, the measured effect with
its 95% interval, n, the test, the threshold and a verdict (analysis/verdicts.py). Claims whose
records are missing are listed as "not run", so the table always has every row.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from analysis import claim_measures as cm
from analysis import stats
from analysis.claims_paper import fig4_claims, table1_claims
from analysis.records import (
    NoTrialsError,
    Trial,
    TrialSet,
    budget_order,
    cli_errors,
    code_flags,
    load_trials,
    output_dir,
)
from analysis.records import select_experiment as _select
from analysis.verdicts import NOT_RUN, VERDICTS, Claim, combine, effect_cell, judge, not_run, verdict_of

MARGIN = 5.0  # points: "by a margin of 10%" counts as reproduced when the whole interval is above half of it
WALL_TOLERANCE = 10.0  # percent: "no increase in wall-clock time per epoch" allows this much
MIN_SEEDS = 2  # per group and epoch: fewer values give no interval
Q_FIG2 = ("As shown in Figure 2, there is a significant increase in the accuracy of ENAS with extended "
          "search space throughout the validation phase of architecture search.")
Q_MARGIN = ("Just by augmenting the search space of ENAS, we increase the validation accuracy of "
            "architecture search by a margin of 10%.")
Q_WALL = ("Although we increase the search space for ENAS in our experiments, we do not observe any "
          "increase in the wall clock time between two epochs.")
Q_NASIB1 = ("NASIB-1 outperforms other methods when trained with a small search space similar to the "
            "other methods.")
Q_DARTS = "the curve corresponding to DARTS converges faster than NASIB-1"
Q_SUPER = "The search space induced by superkernels makes our method slightly inefficient compared to other methods."
Q_SLOPE = ("slope of the curve decreases as the workloads approach close to their target epochs")
Q_SOONER = ("lower the number of epochs available, the model spends relatively lesser time in exploring the "
            "search space and hence converges quickly by entering the exploitation phase")


def _flags(trials: list[Trial]) -> list[str]:
    """Provenance warnings plus the presets the trials ran at."""
    presets = sorted({str(t.config.get("preset", "?")) for t in trials})
    return [f"preset {', '.join(presets)}", *code_flags(trials)] if trials else []


def _nseeds(a: list, b: list | None = None) -> str:
    return f"{len(a)} vs {len(b)} trials" if b is not None else f"{len(a)} trials"


# --- Figure 2 -----------------------------------------------------------------------------

def branch_mode(trial: Trial) -> str:
    """ENAS branch mode of a trial (issue 10's config field); records before it ran as intended."""
    return str(trial.config.get("branch_mode") or (trial.config.get("config") or {}).get("branch_mode")
               or "intended")


def fig2_claims(trials: TrialSet) -> list[Claim]:
    """Extended above original throughout, by ~10 points, and no slower per epoch: per branch mode."""
    enas = [t for t in _select(trials, None, default="fig2").ok if t.method == "enas"]
    modes = sorted({branch_mode(t) for t in enas} | {"intended"})
    rows = []
    for mode in modes:
        suffix = "" if mode == "intended" else f"[{mode}]"
        orig = [t for t in enas if branch_mode(t) == mode and t.space == "original"]
        ext = [t for t in enas if branch_mode(t) == mode and t.space == "extended"]
        rows += [_fig2_throughout(orig, ext, suffix), _fig2_margin(orig, ext, suffix), _fig2_wall(orig, ext, suffix)]
    return rows


def _fig2_throughout(orig: list[Trial], ext: list[Trial], suffix: str) -> Claim:
    """Per-epoch difference extended - original; the claim needs every shared epoch above zero."""
    claim = Claim(f"fig2.above_throughout{suffix}", "fig2", Q_FIG2,
                  "validation accuracy, extended - original, at every epoch both have >= 2 seeds (points)",
                  "Welch 95% interval per epoch; the row shows the epoch with the lowest lower bound",
                  "every epoch's interval above 0", flags=_flags(orig + ext))
    if not orig or not ext:
        return not_run(claim, "needs ENAS original and extended trials (fig2)")
    last = min(max(cm.last_epoch(t) for t in orig), max(cm.last_epoch(t) for t in ext))
    per_epoch = []
    for epoch in range(last + 1):
        a = [v for t in ext if (v := cm.at_epoch(t, epoch)) is not None]
        b = [v for t in orig if (v := cm.at_epoch(t, epoch)) is not None]
        if len(a) >= MIN_SEEDS and len(b) >= MIN_SEEDS:
            per_epoch.append((epoch, stats.diff_interval(a, b), len(a), len(b)))
    if not per_epoch:  # too few seeds anywhere: the final epochs give an effect without an interval
        return judge(claim, stats.diff_interval(_final(ext), _final(orig)), n=_nseeds(ext, orig))
    worst = min(per_epoch, key=lambda e: e[1]["ci_low"])
    above = sum(iv["effect"] > 0 for _, iv, _, _ in per_epoch)
    sig = sum(iv["ci_low"] > 0 for _, iv, _, _ in per_epoch)
    below = [e for e, iv, _, _ in per_epoch if iv["ci_high"] < 0]
    claim.detail = (f"mean above at {above} of {len(per_epoch)} epochs, interval above 0 at {sig}; "
                    f"row shows epoch {worst[0]}" + (f"; significantly below at epochs {below}" if below else ""))
    return judge(claim, worst[1], n=f"{worst[2]} vs {worst[3]} seeds")


def _final(trials: list[Trial]) -> list[float]:
    return [v for t in trials if (v := cm.at_epoch(t, cm.last_epoch(t))) is not None]


def _fig2_margin(orig: list[Trial], ext: list[Trial], suffix: str) -> Claim:
    """Final-epoch gap extended - original against the paper's ~10 points."""
    claim = Claim(f"fig2.margin{suffix}", "fig2", Q_MARGIN,
                  "final-epoch validation accuracy, extended - original (points)",
                  "Welch 95% interval of the difference of means over seeds",
                  f"interval above {MARGIN:g} points (half the paper's 10)", flags=_flags(orig + ext))
    if not orig or not ext:
        return not_run(claim, "needs ENAS original and extended trials (fig2)")
    return judge(claim, stats.diff_interval(_final(ext), _final(orig)), MARGIN, n=_nseeds(ext, orig))


def _epoch_seconds(trials: list[Trial]) -> list[float]:
    """Mean epoch_s of each trial (its own epochs, checkpoint time excluded by the loop)."""
    out = []
    for t in trials:
        secs = [float(r["epoch_s"]) for r in t.epochs if r.get("epoch_s") is not None]
        if secs:
            out.append(sum(secs) / len(secs))
    return out


def _fig2_wall(orig: list[Trial], ext: list[Trial], suffix: str) -> Claim:
    """Epoch time of the extended space relative to the original, in percent."""
    claim = Claim(f"fig2.no_slower{suffix}", "fig2", Q_WALL,
                  "mean seconds per epoch, extended / original - 1 (%)",
                  "Welch 95% interval of the difference, divided by the original mean",
                  f"interval below +{WALL_TOLERANCE:g}%", flags=_flags(orig + ext))
    a, b = _epoch_seconds(ext), _epoch_seconds(orig)
    if not a or not b:
        return not_run(claim, "needs ENAS original and extended trials with epoch_s (fig2)")
    iv = stats.diff_interval(a, b)
    base = sum(b) / len(b)
    scaled = {k: (v / base * 100 if k in ("effect", "ci_low", "ci_high", "sd_a", "sd_b") else v)
              for k, v in iv.items()}
    return judge(claim, scaled, WALL_TOLERANCE, higher=False, n=_nseeds(ext, orig))


# --- Figure 3 -----------------------------------------------------------------------------

def _fig3_groups(trials: TrialSet) -> dict[str, list[Trial]]:
    """Figure 3's searches by method label: NASIB-1, NASIB-2, DARTS, SNAS, random, ENAS."""
    from analysis.curves import method_label  # matplotlib only when figure 3 is judged

    groups: dict[str, list[Trial]] = {}
    for t in _select(trials, None, default="fig3").ok:
        if t.method != "retrain":
            groups.setdefault(method_label(t.method, t.space), []).append(t)
    return groups


def _aligned(a: list[Trial], b: list[Trial], mode: str) -> tuple[list[float], list[float], str]:
    """Accuracy of both groups at the last epoch all reached, or at the wall-clock all reached."""
    both = a + b
    if mode == "epochs":
        epoch = min(cm.last_epoch(t) for t in both)
        return ([v for t in a if (v := cm.at_epoch(t, epoch)) is not None],
                [v for t in b if (v := cm.at_epoch(t, epoch)) is not None], f"epoch {epoch + 1}")
    seconds = min(cm.last_wall(t) for t in both)
    return ([v for t in a if (v := cm.at_time(t, seconds)) is not None],
            [v for t in b if (v := cm.at_time(t, seconds)) is not None], f"{seconds:.0f} s")


def fig3_claims(trials: TrialSet) -> list[Claim]:
    """NASIB-1 best, DARTS converges faster, superkernel slightly less efficient: at equal epochs and time."""
    groups = _fig3_groups(trials)
    nasib1, nasib2 = groups.get("NASIB-1 (narrow)", []), groups.get("NASIB-2 (superkernel)", [])
    darts = groups.get("DARTS", [])
    rows = []
    for mode in ("epochs", "wall-clock"):
        rows.append(_nasib1_best(groups, nasib1, mode))
        rows.append(_darts_faster(nasib1, darts, mode))
        rows.append(_superkernel_slower(nasib1, nasib2, mode))
    return rows


def _nasib1_best(groups: dict[str, list[Trial]], nasib1: list[Trial], mode: str) -> Claim:
    """NASIB-1 minus each other method; the row shows the closest competitor."""
    others = {k: v for k, v in groups.items() if k != "NASIB-1 (narrow)" and not k.startswith("NASIB-2")}
    used = nasib1 + [t for v in others.values() for t in v]
    claim = Claim(f"fig3.nasib1_best@{mode}", "fig3", Q_NASIB1,
                  f"validation accuracy, NASIB-1 - each other method, at equal {mode} (points)",
                  "Welch 95% interval per comparison; the row shows the closest competitor",
                  "every comparison's interval above 0", flags=_flags(used))
    if not nasib1 or not others:
        return not_run(claim, "needs NASIB-1 (narrow) and at least one other method (fig3)")
    comps = {}
    for name, members in others.items():
        a, b, where = _aligned(nasib1, members, mode)
        comps[name] = (stats.diff_interval(a, b), where)
    name, (iv, where) = min(comps.items(), key=lambda kv: kv[1][0]["effect"])
    judged = {k: verdict_of(v) for k, (v, _) in comps.items()}
    claim.detail = f"closest: {name} at {where}; " + ", ".join(f"vs {k}: {v}" for k, v in judged.items())
    judge(claim, iv, n=f"{iv['n_a']} vs {iv['n_b']} seeds")
    claim.verdict = combine(list(judged.values()))
    return claim


def _darts_faster(nasib1: list[Trial], darts: list[Trial], mode: str) -> Claim:
    """Epochs (or seconds) to 90% of the best smoothed accuracy: NASIB-1 minus DARTS."""
    unit = "epochs" if mode == "epochs" else "seconds"
    claim = Claim(f"fig3.darts_converges_faster@{mode}", "fig3", Q_DARTS,
                  f"{unit} until the 3-epoch running mean reaches 90% of its best, NASIB-1 - DARTS",
                  "Welch 95% interval of the difference of means", "interval above 0",
                  flags=_flags(nasib1 + darts))
    if not nasib1 or not darts:
        return not_run(claim, "needs NASIB-1 (narrow) and DARTS trials (fig3)")
    pick = 0 if mode == "epochs" else 1
    a = [c[pick] for t in nasib1 if (c := cm.to_converge(t))]
    b = [c[pick] for t in darts if (c := cm.to_converge(t))]
    return judge(claim, stats.diff_interval(a, b), n=_nseeds(a, b))


def _superkernel_slower(nasib1: list[Trial], nasib2: list[Trial], mode: str) -> Claim:
    """NASIB-1 minus NASIB-2 accuracy at equal epochs or time: the superkernel space costs accuracy."""
    claim = Claim(f"fig3.superkernel_less_efficient@{mode}", "fig3", Q_SUPER,
                  f"validation accuracy, NASIB-1 (narrow) - NASIB-2 (superkernel), at equal {mode} (points)",
                  "Welch 95% interval of the difference of means", "interval above 0",
                  flags=_flags(nasib1 + nasib2))
    if not nasib1 or not nasib2:
        return not_run(claim, "needs NASIB-1 and NASIB-2 trials (fig3)")
    a, b, where = _aligned(nasib1, nasib2, mode)
    claim.detail = f"compared at {where}"
    return judge(claim, stats.diff_interval(a, b), n=_nseeds(a, b))


# --- Figure 5 -----------------------------------------------------------------------------

def fig5_claims(trials: TrialSet) -> list[Claim]:
    """Slopes fall near the target epochs; smaller budgets converge sooner; P2 entropy falls."""
    sweep = [t for t in _select(trials, None, default="fig5").ok
             if t.method == "nasib" and t.space == "superkernel"
             and (t.config.get("budget_s") is not None or t.config.get("budget_label"))]
    flags = _flags(sweep)
    slope = Claim("fig5.slope_falls", "fig5", Q_SLOPE,
                  "least-squares slope of validation accuracy, first half - second half of each run "
                  "(points per epoch)", "t 95% interval of the mean over trials (all budgets)",
                  "interval above 0", flags=flags)
    sooner = Claim("fig5.smaller_converges_sooner", "fig5", Q_SOONER,
                   "Spearman rho between budget (seconds or target epochs) and the share of the final "
                   "accuracy reached at half the epochs (3-epoch running mean)", "Fisher-z 95% interval of rho",
                   "interval below 0 (smaller budget, larger share)", flags=flags)
    entropy = Claim("fig5.p2_entropy_falls", "fig5", Q_SOONER,
                    "P2 entropy / ln K, first epoch - last epoch", "t 95% interval of the mean over trials",
                    "interval above 0", flags=flags)
    if not sweep:
        return [not_run(c, "needs budgeted NASIB superkernel trials (fig5)") for c in (slope, sooner, entropy)]
    drops = [v for t in sweep if (v := cm.slope_drop(t)) is not None]
    judge(slope, stats.mean_interval(drops), n=_nseeds(drops))
    pairs = [(budget_order(t), v) for t in sweep if (v := cm.share_at_half(t)) is not None]
    judge(sooner, stats.spearman_interval([p[0] for p in pairs], [p[1] for p in pairs]), higher=False,
          n=f"{len(pairs)} trials, {len({p[0] for p in pairs})} budgets")
    ent = [v for t in sweep if (v := cm.entropy_drop(t)) is not None]
    if ent:
        judge(entropy, stats.mean_interval(ent), n=_nseeds(ent))
    else:
        not_run(entropy, "no trial recorded p2_entropy (records before issue 9)")
    return [slope, sooner, entropy]


# --- the table ----------------------------------------------------------------------------

def all_claims(trials: TrialSet) -> list[Claim]:
    """Every claim row, in paper order."""
    return [*fig2_claims(trials), *fig3_claims(trials), *fig4_claims(trials), *fig5_claims(trials),
            *table1_claims(trials)]


def to_markdown(claims: list[Claim], root: Path) -> str:
    """The scorecard as a markdown table, then the counts and how to read it."""
    lines = [f"# Claims scorecard: {root}", "",
             "| Claim | Paper | Measure | Effect [95% CI] | n | Threshold | Verdict | Notes |",
             "|---|---|---|---|---|---|---|---|"]
    for c in claims:
        notes = "; ".join(x for x in (c.detail, *c.flags) if x)
        lines.append(f"| {c.id} | \"{c.paper}\" | {c.measure}; {c.test} | {effect_cell(c)} | {c.n or '–'} | "
                     f"{c.threshold} | **{c.verdict}** | {notes.replace('|', '/')} |")
    counts = Counter(c.verdict for c in claims)
    lines += ["", "Verdicts: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v]) + ".",
              "reproduced / not reproduced: the whole 95% interval lies on one side of the threshold; "
              "inconclusive: it straddles it (or n < 2); not run: no records. See docs/claims.md."]
    return "\n".join(lines) + "\n"


def run_claims(results: Path, out: Path | None = None) -> list[Path]:
    """Write figures/claims.md and figures/claims.json under OUT (default RESULTS); print the counts."""
    try:
        trials = load_trials(results)
    except NoTrialsError as err:
        if not Path(results).is_dir():
            raise
        click.echo(f"no records ({err}): every claim is 'not run'")
        trials = TrialSet(Path(results))
    claims = all_claims(trials)
    folder = output_dir(results, out, "figures")
    md_path, json_path = folder / "claims.md", folder / "claims.json"
    md_path.write_text(to_markdown(claims, Path(results)))
    json_path.write_text(json.dumps({"format": 1, "results": str(results),
                                     "claims": [c.as_dict() for c in claims]}, indent=1) + "\n")
    for c in claims:
        click.echo(f"  {c.verdict:15s} {c.id}: {effect_cell(c)} (n {c.n or '–'})")
    counts = Counter(c.verdict for c in claims)
    click.echo(f"{len(claims)} claims: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v]))
    click.echo(f"wrote {md_path}\nwrote {json_path}")
    return [md_path, json_path]


@click.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output root (files go to OUT/figures/); default: RESULTS.")
def main(results: Path, out: Path | None) -> None:
    """The paper's claims, each tested from the records under RESULTS: figures/claims.md and claims.json."""
    with cli_errors():
        run_claims(results, out)


__all__ = ["NOT_RUN", "all_claims", "run_claims"]

if __name__ == "__main__":
    main()
