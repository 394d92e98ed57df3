"""Scorecard rows for Figure 4: the intended ENAS controllers' op choices against the as-released null."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from analysis import claim_measures as cm
from analysis import stats
from analysis.claims_fig2 import branch_mode, flags_of
from analysis.gates import FIG3_GATE, FIG4_GATE, MIN_UNITS, distinct, fingerprint, gate_lacks
from analysis.kernel_freq import count_ops, per_op_tests
from analysis.records import RecordError, Trial, TrialSet, read_json, read_samples, select_experiment
from analysis.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Claim, gated, judge, not_run

Q_FIG4 = ("it clearly asssigns high confidence to many of the operations from the extended search space. "
          "Most of these additional candidate operations are rarely used in the CNN architectures.")
Q_FILTERS = "We were surprised by the discovery of a lot of unconventional filters like non-square and even sized ones."
Q_AGREE = "While experiments do not seem to prefer the same set of structural decisions over the others"
ALPHA = 0.05  # permutation level for "the trials agree beyond chance"
STRONG = 0.5  # Kendall's W from which trials count as preferring the same ops
PERMUTATIONS = 2000  # permutations for W's p (a fixed generator: the same records give the same p)


def controllers(trials: TrialSet) -> tuple[list[Trial], list[Trial], list[str]]:
    """(intended, as-released, duplicates): distinct extended-space ENAS trials with samples.json."""
    enas = [t for t in select_experiment(trials, None, default="fig4").select(family="enas", space="extended")
            if (t.path / "samples.json").exists()]
    intended, dup_a = distinct([t for t in enas if branch_mode(t) == "intended"], "samples")
    released, dup_b = distinct([t for t in enas if branch_mode(t) != "intended"], "samples")
    null = {fingerprint(t, "samples"): t.key for t in released}
    # Samples equal across branch modes: the controller never saw the difference (still two units, one each side).
    across = [f"{t.key} = {null[k]} (across modes)" for t in intended if (k := fingerprint(t, "samples")) in null]
    return intended, released, dup_a + dup_b + across


def fig4_claims(trials: TrialSet) -> list[Claim]:
    """Per-op tests, unconventional shares (ENAS vs the null, NASIB-2 vs its space) and trial agreement."""
    intended, released, dupes = controllers(trials)
    nasib2 = distinct([t for t in trials.select(strategy="nasib", space="superkernel") if arch_ops(t)])[0]
    lacks = gate_lacks(FIG4_GATE, intended + released)
    note = f"identical samples: {', '.join(dupes)}" if dupes else ""
    rows = [_per_op(intended, released), _enas_share(intended, released), _agreement(intended)]
    for row in rows:
        row.detail = "; ".join(x for x in (row.detail, note) if x)
    return [*(gated(r, lacks) for r in rows), gated(_nasib2_share(nasib2), gate_lacks(FIG3_GATE, nasib2))]


def _above_counts(trials: list[Trial]) -> tuple[list[int], list[str]]:
    """Per trial: unconventional added ops chosen above uniform (Holm over these trials' tests)."""
    rows = per_op_tests(count_ops(trials))
    per_trial = {t.key: 0 for t in trials}
    for r in rows:
        if r["above_uniform"] and not r["original"] and cm.unconventional(r["op"]):
            per_trial[r["trial"]] += 1
    return list(per_trial.values()), sorted({r["op"] for r in rows if r["above_uniform"] and not r["original"]})


def _per_op(intended: list[Trial], released: list[Trial]) -> Claim:
    """How many unconventional added ops each intended controller picks above uniform."""
    claim = Claim("fig4.ops_above_uniform", "fig4", Q_FIG4,
                  "unconventional added ops chosen above uniform per intended ENAS controller (count)",
                  "exact binomial test per trial and op, Holm-corrected over the intended trials; "
                  "t interval over trials",
                  "every trial has at least one such op", flags=flags_of(intended + released))
    if not intended:
        return not_run(claim, "needs intended ENAS extended-space trials with samples.json (fig4)")
    counts, winners = _above_counts(intended)
    judge(claim, stats.mean_interval(counts), n=f"{len(counts)} distinct trials")
    null = f"; as-released null: {_above_counts(released)[0]}" if released else ""
    claim.detail = f"ops above uniform: {', '.join(winners) or 'none'}{null}"
    hits = sum(c > 0 for c in counts)
    if len(counts) < MIN_UNITS:
        claim.verdict = INCONCLUSIVE
        claim.detail += f"; {len(counts)} distinct trials, fewer than {MIN_UNITS}"
    else:
        claim.verdict = REPRODUCED if hits == len(counts) else NOT_REPRODUCED if hits == 0 else INCONCLUSIVE
    return claim


def _shares(trials: list[Trial]) -> list[float]:
    """Per trial: share of unconventional kernels among the sampled ops (percent)."""
    out = []
    for t in trials:
        ops = [op for s in read_samples(t)["samples"] for op in s["ops"]]
        if ops:
            out.append(100 * sum(map(cm.unconventional, ops)) / len(ops))
    return out


def space_share(op_names: list[str]) -> float:
    """Share of unconventional kernels among a space's ops (0-1)."""
    return sum(cm.unconventional(op) for op in op_names) / len(op_names)


def _enas_share(intended: list[Trial], released: list[Trial]) -> Claim:
    """Unconventional share of the intended controllers minus the as-released null (else the space's share)."""
    null = "the as-released controllers (the null)" if released else "the space"
    claim = Claim("fig4.unconventional_share[enas]", "fig4", Q_FILTERS,
                  f"share of {cm.UNCONVENTIONAL}s among the intended ENAS controllers' sampled ops - that of {null} "
                  "(points)", "Welch (or t) 95% interval over distinct trials", "interval above 0",
                  flags=flags_of(intended + released))
    if not intended:
        return not_run(claim, "needs intended ENAS extended-space trials with samples.json (fig4)")
    base = 100 * space_share(read_samples(intended[0])["op_names"])
    mine = _shares(intended)
    if released:
        iv = stats.diff_interval(mine, _shares(released))
    else:
        iv = stats.mean_interval([v - base for v in mine])
    claim.detail = f"space share {base:.1f}%"
    return judge(claim, iv, n=f"{len(mine)} vs {len(released)} distinct trials" if released else f"{len(mine)} trials")


def kendall_w(table: np.ndarray) -> float:
    """Kendall's W of a raters x items table (ranks within each rater, ties averaged)."""
    table = np.asarray(table, dtype=float)
    m, n = table.shape
    ranks = np.vstack([sps.rankdata(row) for row in table])
    totals = ranks.sum(axis=0)
    return float(12 * ((totals - totals.mean()) ** 2).sum() / (m**2 * (n**3 - n)))


def _agreement(intended: list[Trial]) -> Claim:
    """Kendall's W between the intended controllers' op counts, with a permutation p."""
    claim = Claim("fig4.agreement", "fig4", Q_AGREE,
                  "Kendall's W of the op counts across intended ENAS trials (0: no agreement, 1: the same ranking)",
                  f"permutation test ({PERMUTATIONS} shuffles of each trial's counts)",
                  f"p >= {ALPHA:g} and W < {STRONG:g} (no shared preference); p < {ALPHA:g} reads not reproduced",
                  flags=flags_of(intended))
    if len(intended) < 2:
        return not_run(claim, "needs at least two intended ENAS extended-space trials (fig4)")
    table = count_ops(intended)
    counts = table[[t.key for t in intended]].to_numpy(dtype=float).T
    w = kendall_w(counts)
    rng = np.random.default_rng(0)
    null = [kendall_w(np.vstack([rng.permutation(row) for row in counts])) for _ in range(PERMUTATIONS)]
    p = (1 + sum(v >= w for v in null)) / (1 + PERMUTATIONS)
    claim.effect, claim.n = w, f"{len(intended)} distinct trials, {counts.shape[1]} ops"
    claim.detail = f"permutation p = {p:.3g}"
    if len(intended) < MIN_UNITS:
        claim.verdict = INCONCLUSIVE
        claim.detail += f"; {len(intended)} distinct trials, fewer than {MIN_UNITS}"
    elif p < ALPHA:
        claim.verdict = NOT_REPRODUCED
    else:
        claim.verdict = REPRODUCED if w < STRONG else INCONCLUSIVE
    return claim


def arch_ops(trial: Trial) -> list[str]:
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
                  "interval above 0", flags=flags_of(nasib2))
    if not nasib2:
        return not_run(claim, "needs NASIB superkernel searches with an arch (fig3/fig5/table1)")
    m = int((nasib2[0].config.get("config") or {}).get("m") or 9)
    space = [f"conv{i}x{j}" for i in range(1, m + 1) for j in range(1, m + 1)]
    diffs = [100 * (sum(map(cm.unconventional, ops)) / len(ops) - space_share(space))
             for t in nasib2 if (ops := arch_ops(t))]
    claim.detail = f"space share {100 * space_share(space):.1f}% (m = {m})"
    return judge(claim, stats.mean_interval(diffs), n=f"{len(diffs)} trials")
