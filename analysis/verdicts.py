"""One claim row of the scorecard and the rule that turns an effect with its interval into a verdict.

Verdicts (docs/claims.md explains them):
- reproduced: the whole 95% interval lies on the paper's side of the threshold;
- not reproduced: the whole interval lies on the other side (or the measured value misses an
  exact threshold such as an op count);
- inconclusive: the interval straddles the threshold, or there are too few seeds for an interval;
  the row says roughly how many seeds per group would settle it if effect and spread hold;
- not run: no records for the claim (or not at the scale the claim needs).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from analysis import stats

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)


@dataclass
class Claim:
    """One row of the scorecard."""

    id: str  # stable key, e.g. fig2.margin or fig3.nasib1_best@wall-clock
    figure: str  # fig2 | fig3 | fig4 | fig5 | table1
    paper: str  # the paper's sentence, quoted
    measure: str  # what was measured, with its unit
    test: str  # how the interval was computed
    threshold: str  # what the interval must clear
    verdict: str = NOT_RUN  # one of VERDICTS
    effect: float | None = None  # the measured effect (None when not run)
    ci_low: float | None = None  # 95% interval of the effect (None when there is none)
    ci_high: float | None = None
    n: str = ""  # seeds / trials behind the effect, e.g. "3 vs 3 seeds"
    seeds_needed: int | None = None  # inconclusive rows: seeds per group that would likely settle it
    detail: str = ""  # one line: why this verdict, what else was seen
    flags: list[str] = field(default_factory=list)  # provenance warnings: mixed commits, dirty trees, presets

    def as_dict(self) -> dict:
        """JSON-ready dict, NaN turned into None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def judge(claim: Claim, iv: dict, margin: float = 0.0, higher: bool = True, n: str = "") -> Claim:
    """Fill effect, interval and verdict: the claim holds when the effect is above (or below) `margin`.

    iv is a stats.diff_interval / mean_interval / spearman_interval dict."""
    effect, low, high = _num(iv.get("effect")), _num(iv.get("ci_low")), _num(iv.get("ci_high"))
    claim.effect, claim.ci_low, claim.ci_high, claim.n = effect, low, high, n
    if effect is None:
        claim.verdict, claim.detail = NOT_RUN, claim.detail or "no values to compare"
        return claim
    sign = 1.0 if higher else -1.0
    if low is None or high is None:
        claim.verdict = INCONCLUSIVE
        claim.detail = _join(claim.detail, "fewer than 2 values per group: no interval; run at least 3 seeds")
        return claim
    lo, hi = sorted((sign * low, sign * high))
    if lo > sign * margin:
        claim.verdict = REPRODUCED
    elif hi < sign * margin:
        claim.verdict = NOT_REPRODUCED
    else:
        claim.verdict = INCONCLUSIVE
        need = stats.seeds_needed(sign * effect, iv.get("sd_a"), iv.get("sd_b"), sign * margin)
        claim.seeds_needed = need
        if need:
            why = f"about {need} seeds per group would settle it if this effect and spread hold"
        elif iv.get("sd_a") is None or math.isnan(iv["sd_a"]):
            why = "this measure has no per-seed spread, so the seeds that would settle it are not estimated"
        else:
            why = "the measured effect is on the wrong side of the threshold: more seeds are unlikely to confirm it"
        claim.detail = _join(claim.detail, why)
    return claim


def verdict_of(iv: dict, margin: float = 0.0, higher: bool = True) -> str:
    """The verdict judge() would give an interval, without a row."""
    return judge(Claim("", "", "", "", "", ""), iv, margin, higher).verdict


def combine(verdicts: list[str]) -> str:
    """A claim made of several comparisons: reproduced only if all are, not reproduced if any is not."""
    if not verdicts or all(v == NOT_RUN for v in verdicts):
        return NOT_RUN
    if any(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    return REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE


def not_run(claim: Claim, why: str) -> Claim:
    """Mark a claim as not run, saying which records are missing."""
    claim.verdict, claim.detail = NOT_RUN, why
    return claim


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for the table, or a dash."""
    return "–" if value is None else f"{value:.{digits}f}"


def effect_cell(claim: Claim) -> str:
    """'effect [low, high]' or the effect alone."""
    if claim.effect is None:
        return "–"
    if claim.ci_low is None:
        return f"{fmt(claim.effect)} (no interval)"
    return f"{fmt(claim.effect)} [{fmt(claim.ci_low)}, {fmt(claim.ci_high)}]"
