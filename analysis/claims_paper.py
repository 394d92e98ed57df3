"""Scorecard rows for Figure 4 / Filter Choices and Table 1 (see analysis/claims.py for the others)."""

from __future__ import annotations

import math

from analysis import claim_measures as cm
from analysis import stats
from analysis.kernel_freq import count_ops, per_op_tests
from analysis.records import RecordError, Trial, TrialSet, code_flags, read_json, read_samples, select_experiment
from analysis.table1 import load_paper_rows, retrain_trials, search_trials
from analysis.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Claim, judge, not_run

Q_FIG4 = ("it clearly asssigns high confidence to many of the operations from the extended search space. "
          "Most of these additional candidate operations are rarely used in the CNN architectures.")
Q_FILTERS = "We were surprised by the discovery of a lot of unconventional filters like non-square and even sized ones."
Q_TABLE1 = "NASIB | CIFAR10 | 6.71M | 3.57 | 81 | 1.5 (Table 1)"
ERROR_TOLERANCE = 1.0  # points of test error around the paper's 3.57%
PARAMS_TOLERANCE = 0.25  # relative, around the paper's 6.71M


def _flags(trials: list[Trial]) -> list[str]:
    presets = sorted({str(t.config.get("preset", "?")) for t in trials})
    return [f"preset {', '.join(presets)}", *code_flags(trials)] if trials else []


def fig4_claims(trials: TrialSet) -> list[Claim]:
    """Per-op tests of the ENAS controller, and unconventional-kernel shares for ENAS and NASIB-2."""
    enas = [t for t in select_experiment(trials, None, default="fig4").select(method="enas", space="extended")
            if (t.path / "samples.json").exists()]
    nasib2 = [t for t in trials.select(method="nasib", space="superkernel") if _arch_ops(t)]
    return [_per_op(enas), _enas_share(enas), _nasib2_share(nasib2)]


def _per_op(enas: list[Trial]) -> Claim:
    """How many unconventional added ops each trial's controller picks above uniform (Holm, 5%)."""
    claim = Claim("fig4.ops_above_uniform", "fig4", Q_FIG4,
                  "unconventional added ops chosen above uniform per ENAS trial (count)",
                  "exact binomial test per trial and op, Holm-corrected over all; t interval over trials",
                  "every trial has at least one such op", flags=_flags(enas))
    if not enas:
        return not_run(claim, "needs ENAS extended-space trials with samples.json (fig4)")
    rows = per_op_tests(count_ops(enas))
    per_trial = {t.key: 0 for t in enas}
    for r in rows:
        if r["above_uniform"] and not r["original"] and cm.unconventional(r["op"]):
            per_trial[r["trial"]] += 1
    counts = list(per_trial.values())
    judge(claim, stats.mean_interval(counts), n=f"{len(counts)} trials, {len(rows)} tests")
    winners = sorted({r["op"] for r in rows if r["above_uniform"] and not r["original"]})
    claim.detail = f"ops above uniform: {', '.join(winners) or 'none'}"
    hits = sum(c > 0 for c in counts)
    claim.verdict = REPRODUCED if hits == len(counts) else NOT_REPRODUCED if hits == 0 else INCONCLUSIVE
    return claim


def _space_share(op_names: list[str]) -> float:
    return sum(cm.unconventional(op) for op in op_names) / len(op_names)


def _enas_share(enas: list[Trial]) -> Claim:
    """Share of unconventional kernels among the controller's sampled choices vs their share of the space."""
    claim = Claim("fig4.unconventional_share[enas]", "fig4", Q_FILTERS,
                  f"share of {cm.UNCONVENTIONAL}s among the ENAS controller's sampled ops - share in the "
                  "space (points)", "t 95% interval over trials (the trial is the unit)", "interval above 0",
                  flags=_flags(enas))
    if not enas:
        return not_run(claim, "needs ENAS extended-space trials with samples.json (fig4)")
    diffs = []
    for t in enas:
        data = read_samples(t)
        ops = [op for s in data["samples"] for op in s["ops"]]
        if ops:
            diffs.append(100 * (sum(map(cm.unconventional, ops)) / len(ops) - _space_share(data["op_names"])))
    claim.detail = f"space share {100 * _space_share(read_samples(enas[0])['op_names']):.1f}%"
    return judge(claim, stats.mean_interval(diffs), n=f"{len(diffs)} trials")


def _arch_ops(trial: Trial) -> list[str]:
    """The derived architecture's ops: result.json 'arch', else arch.json 'ops' ([] when neither)."""
    ops = trial.result.get("arch")
    if not ops and (trial.path / "arch.json").exists():
        try:
            ops = read_json(trial.path / "arch.json", require_format=False).get("ops")
        except RecordError:
            ops = None
    return [str(op) for op in ops] if isinstance(ops, list) else []


def _nasib2_share(nasib2: list[Trial]) -> Claim:
    """Share of unconventional kernels in NASIB-2's derived architectures vs the superkernel space."""
    claim = Claim("fig4.unconventional_share[nasib-2]", "fig4", Q_FILTERS,
                  f"share of {cm.UNCONVENTIONAL}s in NASIB-2's derived architectures - share in the "
                  "superkernel space (points)", "t 95% interval over search trials (every experiment)",
                  "interval above 0", flags=_flags(nasib2))
    if not nasib2:
        return not_run(claim, "needs NASIB superkernel searches with an arch (fig3/fig5/table1)")
    m = int((nasib2[0].config.get("config") or {}).get("m") or 9)
    space = [f"conv{i}x{j}" for i in range(1, m + 1) for j in range(1, m + 1)]
    diffs = [100 * (sum(map(cm.unconventional, ops)) / len(ops) - _space_share(space))
             for t in nasib2 if (ops := _arch_ops(t))]
    claim.detail = f"space share {100 * _space_share(space):.1f}% (m = {m})"
    return judge(claim, stats.mean_interval(diffs), n=f"{len(diffs)} trials")


# --- Table 1 ------------------------------------------------------------------------------

def _paper_nasib() -> dict:
    rows = [r for r in load_paper_rows() if r["network"].upper().startswith("NASIB")]
    return rows[0] if rows else {"test_error": 3.57, "params_m": 6.71, "num_ops": 81, "search_cost": 1.5}


def table1_claims(trials: TrialSet) -> list[Claim]:
    """NASIB's test error, parameters, #ops and search cost beside the paper's row."""
    paper = _paper_nasib()
    picked = select_experiment(trials, None, default="table1")
    retrains = retrain_trials(picked, "nasib", "superkernel")
    searches = search_trials(picked, "nasib", "superkernel", retrains, trials.ok)
    used = retrains + searches
    at_paper = bool(used) and all(t.config.get("preset") == "paper" for t in used)
    scale_note = "" if at_paper else "records are not at the paper preset: shown for reference, not judged"

    def row(key: str, measure: str, threshold: str) -> Claim:
        return Claim(f"table1.{key}", "table1", Q_TABLE1, measure, "t 95% interval over seeds", threshold,
                     flags=_flags(used))

    err = row("test_error", f"NASIB-2 retrained test error (%), paper {paper['test_error']}",
              f"interval within {paper['test_error']} + {ERROR_TOLERANCE:g}")
    params = row("params", f"NASIB-2 parameters (M), paper {paper['params_m']}",
                 f"interval within ±{PARAMS_TOLERANCE:.0%} of {paper['params_m']}")
    ops = row("num_ops", f"candidate ops per layer, paper {paper['num_ops']}", f"equal to {paper['num_ops']}")
    cost = row("search_cost", f"search GPU-days, paper {paper['search_cost']}", f"mean <= {paper['search_cost']}")
    if not used:
        return [not_run(c, "needs NASIB superkernel searches and their retrains (table1)")
                for c in (err, params, ops, cost)]
    errors = [float(t.result["test_error"]) for t in retrains if t.result.get("test_error") is not None]
    _paper_scale(err, stats.mean_interval(errors), paper["test_error"] + ERROR_TOLERANCE, False, scale_note,
                 f"{len(errors)} retrains")
    values = [float(t.result["params"]) / 1e6 for t in (retrains or searches) if t.result.get("params")]
    iv = stats.mean_interval(values)
    _paper_scale(params, iv, paper["params_m"], None, scale_note, f"{len(values)} trials")
    counts = sorted({int(t.result["num_ops"]) for t in searches if t.result.get("num_ops") is not None})
    ops.effect, ops.n = (float(counts[0]) if len(counts) == 1 else None), f"{len(searches)} searches"
    ops.verdict = REPRODUCED if counts == [paper["num_ops"]] else NOT_REPRODUCED if counts else ops.verdict
    ops.detail = f"recorded: {counts}" if counts else "no num_ops recorded"
    days = [float(t.result["gpu_days"]) for t in searches if t.result.get("gpu_days") is not None]
    if days:
        _paper_scale(cost, stats.mean_interval(days), paper["search_cost"], False, scale_note,
                     f"{len(days)} searches")
    else:
        hours = [float(t.result.get("search_s") or math.nan) / 3600 for t in searches]
        not_run(cost, f"no GPU search recorded (CPU searches took {sum(hours) / len(hours):.3g} h each)")
    return [err, params, ops, cost]


def _paper_scale(claim: Claim, iv: dict, target: float, higher: bool | None, scale_note: str, n: str) -> Claim:
    """Judge a Table 1 value (higher None: within ±PARAMS_TOLERANCE), or show it unjudged off the paper preset."""
    if higher is None:
        judge(claim, {**iv, "effect": iv["effect"]}, n=n)
        lo, hi = claim.ci_low, claim.ci_high
        band = (target * (1 - PARAMS_TOLERANCE), target * (1 + PARAMS_TOLERANCE))
        if claim.effect is not None:
            inside = lo is not None and band[0] <= lo and hi <= band[1]
            outside = lo is not None and (hi < band[0] or lo > band[1])
            claim.verdict = REPRODUCED if inside else NOT_REPRODUCED if outside else INCONCLUSIVE
    else:
        judge(claim, iv, target, higher=higher, n=n)
    if scale_note and claim.effect is not None:
        claim.verdict, claim.detail = "not run", f"{scale_note}; {claim.detail}".strip("; ")
    return claim
