"""One claim row of the scorecard and the rule that turns an effect with its interval into a verdict.

Verdicts (docs/claims.md explains them):
- reproduced: the whole 95% interval lies on the paper's side of the threshold;
- not reproduced: the whole interval lies on the other side (or the measured value misses an
  exact threshold such as an op count);
- inconclusive: the interval straddles the threshold, or there are too few seeds for an interval;
  the row says roughly how many seeds per group would settle it if effect and spread hold;
- not run: no records for the claim; not run (scale): records below the claim's scale gate
  (analysis/gates.py), the measured value shown but not judged.

No directional verdict comes from fewer than gates.MIN_UNITS independent units or from a zero
spread (a quantised measure gets a floor on its spread instead, see stats.diff_interval).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from analysis import stats
from analysis.gates import MIN_UNITS

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN = "reproduced", "not reproduced", "inconclusive", "not run"
NOT_RUN_SCALE = "not run (scale)"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN_SCALE, NOT_RUN)
NOT_ESTIMABLE = "not estimable"  # seeds_needed where effect or spread cannot give a number
# What a row tests: a claim of the paper, a check of the kit's own mechanics, or true by construction.
KINDS = ("paper", "mechanics", "tautology")


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
    seeds_needed: int | str | None = None  # inconclusive rows: seeds per group that would settle it, or NOT_ESTIMABLE
    detail: str = ""  # one line: why this verdict, what else was seen
    flags: list[str] = field(default_factory=list)  # provenance warnings: mixed commits, dirty trees, presets
    kind: str = "paper"  # one of KINDS: the headline counts each apart
    spread: dict = field(default_factory=dict)  # n_a, n_b, sd_a, sd_b, margin, sd_floor: recompute seeds_needed

    def as_dict(self) -> dict:
        """JSON-ready dict: NaN turned into None, floats rounded so reruns give the same bytes."""
        return _clean(asdict(self))


def _clean(value: object) -> object:
    """NaN -> None and floats to 6 significant digits, recursively."""
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def judge(claim: Claim, iv: dict, margin: float = 0.0, higher: bool = True, n: str = "") -> Claim:
    """Fill effect, interval and verdict: the claim holds when the effect is above (or below) `margin`.

    iv is a stats.diff_interval / mean_interval / spearman_interval dict."""
    effect, low, high = _num(iv.get("effect")), _num(iv.get("ci_low")), _num(iv.get("ci_high"))
    claim.effect, claim.ci_low, claim.ci_high, claim.n = effect, low, high, n
    claim.spread = {k: _num(iv.get(k)) for k in ("n_a", "n_b", "sd_a", "sd_b", "sd_floor")
                    if iv.get(k) is not None} | {"margin": margin}
    if effect is None:
        claim.verdict, claim.detail = NOT_RUN, claim.detail or "no values to compare"
        return claim
    sign = 1.0 if higher else -1.0
    if why := withheld(iv):
        return _undecided(claim, why)
    lo, hi = sorted((sign * low, sign * high))
    if lo > sign * margin:
        claim.verdict = REPRODUCED
    elif hi < sign * margin:
        claim.verdict = NOT_REPRODUCED
    else:
        claim.verdict = INCONCLUSIVE
        need = stats.seeds_needed(sign * effect, _sd(iv, "sd_a"), _sd(iv, "sd_b"), sign * margin)
        claim.seeds_needed = need or NOT_ESTIMABLE
        if need:
            why = f"about {need} seeds per group would settle it if this effect and spread hold"
        elif iv.get("sd_a") is None or math.isnan(iv["sd_a"]):
            why = "this measure has no per-seed spread, so the seeds that would settle it are not estimable"
        else:
            why = "the measured effect is on the wrong side of the threshold: more seeds are unlikely to confirm it"
        claim.detail = _join(claim.detail, why)
    return claim


def withheld(iv: dict) -> str:
    """Why the rules withhold a directional verdict from this interval ('' when they do not)."""
    units = [int(iv[k]) for k in ("n_a", "n_b") if iv.get(k) is not None]
    if _num(iv.get("ci_low")) is None or _num(iv.get("ci_high")) is None:
        return "fewer than 2 values per group: no interval; run at least 3 seeds"
    if units and min(units) < MIN_UNITS:
        return f"{min(units)} independent unit(s) in a group, fewer than {MIN_UNITS}: no directional verdict"
    if _zero_spread(iv):
        return "zero spread across units (equal values): no directional verdict"
    return ""


def judge_band(claim: Claim, iv: dict, band: tuple[float, float], n: str = "") -> Claim:
    """Reproduced when the whole interval lies inside band, not when wholly outside; the rules first."""
    base = claim.detail
    judge(claim, iv, n=n)
    if claim.effect is None or withheld(iv):
        return claim
    lo, hi = claim.ci_low, claim.ci_high
    inside, outside = band[0] <= lo and hi <= band[1], hi < band[0] or lo > band[1]
    claim.verdict = REPRODUCED if inside else NOT_REPRODUCED if outside else INCONCLUSIVE
    claim.seeds_needed, claim.spread["band"], claim.detail = None, list(band), base
    if claim.verdict == INCONCLUSIVE:
        # Seeds for the interval to fit the band: the distance from the effect to the nearer edge.
        gap = min(claim.effect - band[0], band[1] - claim.effect)
        need = stats.seeds_needed(gap, _sd(iv, "sd_a"), _sd(iv, "sd_b")) if gap > 0 else None
        claim.seeds_needed = need or NOT_ESTIMABLE
        claim.detail = _join(base, f"about {need} seeds would fit the interval in the band" if need
                             else "the effect is outside the band: more seeds are unlikely to bring it in")
    return claim


def _sd(iv: dict, key: str) -> float | None:
    """A group's per-seed SD as the verdict used it: never below the measure's floor."""
    sd = iv.get(key)
    return None if sd is None else max(sd, iv.get("sd_floor") or 0.0) if not math.isnan(sd) else sd


def _zero_spread(iv: dict) -> bool:
    """Every group's values equal and no floor given: an interval of zero width says nothing."""
    sds = [iv.get(k) for k in ("sd_a", "sd_b") if iv.get(k) is not None and not math.isnan(iv[k])]
    return bool(sds) and all(sd == 0 for sd in sds) and not iv.get("sd_floor")


def _undecided(claim: Claim, why: str) -> Claim:
    """Inconclusive without a seeds estimate: the rule, not the data, withholds the verdict."""
    claim.verdict, claim.seeds_needed = INCONCLUSIVE, NOT_ESTIMABLE
    claim.detail = _join(claim.detail, why)
    return claim


def gated(claim: Claim, lacks: str) -> Claim:
    """Below the claim's scale gate: 'not run (scale)' with what the records lack (value kept)."""
    if lacks and claim.verdict != NOT_RUN:
        claim.verdict, claim.seeds_needed = NOT_RUN_SCALE, None
        claim.detail = _join(f"below the scale gate: {lacks}", claim.detail)
    return claim


def verdict_of(iv: dict, margin: float = 0.0, higher: bool = True) -> str:
    """The verdict judge() would give an interval, without a row."""
    return judge(Claim("", "", "", "", "", ""), iv, margin, higher).verdict


def combine(verdicts: list[str]) -> str:
    """A claim made of several comparisons: reproduced only if all are, not reproduced if any is not."""
    if not verdicts or all(v == NOT_RUN for v in verdicts):
        return NOT_RUN
    if any(v == NOT_RUN_SCALE for v in verdicts):
        return NOT_RUN_SCALE
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
