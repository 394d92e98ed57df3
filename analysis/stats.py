"""Group statistics and significance tests over trial values (scipy); plain dicts and DataFrames out."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

NO_INTERVAL = "n=1: no interval"
CONFIDENCE = 0.95


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """n, mean, std (ddof=1) and a two-sided t-interval for the mean; NaN spread when n=1."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = int(arr.size)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "note": "n=0: no data"}
    mean = float(arr.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "note": NO_INTERVAL}
    std = float(arr.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "note": ""}


def group_summary(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """summarize() of `value` for every group of `by`, in first-appearance order of the groups."""
    rows = []
    for keys, group in frame.groupby(list(by), sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        stats = summarize(group[value].dropna().tolist())
        rows.append({**dict(zip(by, keys, strict=True)), **stats})
    columns = [*by, "n", "mean", "std", "ci_low", "ci_high", "note"]
    return pd.DataFrame(rows, columns=columns)


def welch_test(a: Sequence[float], b: Sequence[float]) -> dict:
    """Welch t-test of mean(a) vs mean(b): t, df, two-sided p and one-sided p for 'a > b'."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = {"test": "Welch t-test (unequal variances)", "n_a": int(a_arr.size), "n_b": int(b_arr.size),
           "mean_diff": float(a_arr.mean() - b_arr.mean()) if a_arr.size and b_arr.size else math.nan,
           "t": math.nan, "df": math.nan, "p_two_sided": math.nan, "p_one_sided": math.nan, "note": ""}
    if a_arr.size < 2 or b_arr.size < 2:
        out["note"] = "needs n>=2 per group"
        return out
    if a_arr.std(ddof=1) == 0 and b_arr.std(ddof=1) == 0:
        out["note"] = "both groups have zero variance: t undefined"
        return out
    two = sps.ttest_ind(a_arr, b_arr, equal_var=False)
    one = sps.ttest_ind(a_arr, b_arr, equal_var=False, alternative="greater")
    out.update(t=float(two.statistic), df=float(two.df), p_two_sided=float(two.pvalue),
               p_one_sided=float(one.pvalue))
    return out


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> dict:
    """Mann-Whitney U (non-parametric check): U and one-sided p for 'a tends to exceed b'."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = {"test": "Mann-Whitney U", "n_a": int(a_arr.size), "n_b": int(b_arr.size),
           "u": math.nan, "p_two_sided": math.nan, "p_one_sided": math.nan, "note": ""}
    if a_arr.size < 1 or b_arr.size < 1:
        out["note"] = "needs n>=1 per group"
        return out
    two = sps.mannwhitneyu(a_arr, b_arr, alternative="two-sided")
    one = sps.mannwhitneyu(a_arr, b_arr, alternative="greater")
    out.update(u=float(two.statistic), p_two_sided=float(two.pvalue), p_one_sided=float(one.pvalue))
    if a_arr.size < 4 or b_arr.size < 4:
        # With 3 vs 3 the smallest attainable one-sided p is 0.05: say so rather than imply power.
        floor = _min_mw_p(a_arr.size, b_arr.size)
        out["note"] = f"small samples: smallest attainable one-sided p is {floor:.3g}"
    return out


def _min_mw_p(n_a: int, n_b: int) -> float:
    """Smallest one-sided exact Mann-Whitney p-value for sample sizes n_a, n_b (no ties)."""
    return 1.0 / math.comb(n_a + n_b, n_a)


def binomial_share(successes: int, trials: int, expected: float) -> dict:
    """Observed share successes/trials against an expected share: exact binomial test p-values."""
    if trials <= 0:
        return {"k": successes, "n": trials, "share": math.nan, "expected": expected,
                "p_two_sided": math.nan, "p_greater": math.nan, "note": "no choices"}
    two = sps.binomtest(successes, trials, expected, alternative="two-sided")
    greater = sps.binomtest(successes, trials, expected, alternative="greater")
    ci = two.proportion_ci(confidence_level=CONFIDENCE)
    return {"k": successes, "n": trials, "share": successes / trials, "expected": expected,
            "ci_low": float(ci.low), "ci_high": float(ci.high),
            "p_two_sided": float(two.pvalue), "p_greater": float(greater.pvalue), "note": ""}


def one_sample_t(values: Sequence[float], expected: float) -> dict:
    """Two-sided one-sample t-test of mean(values) against `expected` (the per-trial check)."""
    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return {"n": int(arr.size), "t": math.nan, "p_two_sided": math.nan, "note": "needs n>=2"}
    if arr.std(ddof=1) == 0:
        return {"n": int(arr.size), "t": math.nan, "p_two_sided": math.nan, "note": "zero variance"}
    res = sps.ttest_1samp(arr, expected)
    return {"n": int(arr.size), "t": float(res.statistic), "p_two_sided": float(res.pvalue), "note": ""}


def format_mean_std(stats: dict, digits: int = 2) -> str:
    """'mean ± std (n=k)', or 'mean (n=1: no interval)' when there is a single value."""
    if stats["n"] == 0:
        return "no data"
    if stats["n"] == 1:
        return f"{stats['mean']:.{digits}f} ({NO_INTERVAL})"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f} (n={stats['n']})"


def diff_interval(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE,
                  sd_floor: float = 0.0) -> dict:
    """mean(a) - mean(b) with a Welch 95% interval; NaN interval when either side has fewer than 2 values.

    sd_floor: the least per-value SD a quantised measure can have (gates.se_floor); the standard error
    never falls below what it gives, so equal values give an honest interval, not a zero-width one."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = {"effect": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n_a": int(a_arr.size),
           "n_b": int(b_arr.size), "sd_a": math.nan, "sd_b": math.nan, "sd_floor": sd_floor}
    if a_arr.size == 0 or b_arr.size == 0:
        return out
    out["effect"] = float(a_arr.mean() - b_arr.mean())
    if a_arr.size < 2 or b_arr.size < 2:
        return out
    va, vb = a_arr.var(ddof=1) / a_arr.size, b_arr.var(ddof=1) / b_arr.size
    out.update(sd_a=float(a_arr.std(ddof=1)), sd_b=float(b_arr.std(ddof=1)))
    floor = sd_floor**2 * (1 / a_arr.size + 1 / b_arr.size)
    if va + vb < floor:  # quantised values closer than their step: the floor's pooled df
        va, vb = floor / 2, floor / 2
        df = float(a_arr.size + b_arr.size - 2)
    elif va + vb == 0:
        out.update(ci_low=out["effect"], ci_high=out["effect"])
        return out
    else:
        df = (va + vb) ** 2 / (va**2 / (a_arr.size - 1) + vb**2 / (b_arr.size - 1))
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(va + vb)
    out.update(ci_low=out["effect"] - half, ci_high=out["effect"] + half)
    return out


def mean_interval(values: Sequence[float], sd_floor: float = 0.0) -> dict:
    """summarize() in the effect/ci form the claims table uses; the SD never below sd_floor."""
    s = summarize(values)
    out = {"effect": s["mean"], "ci_low": s["ci_low"], "ci_high": s["ci_high"], "n_a": s["n"],
           "sd_a": s["std"], "sd_floor": sd_floor}
    if s["n"] >= 2 and s["std"] < sd_floor:
        half = float(sps.t.ppf(0.5 + CONFIDENCE / 2, df=s["n"] - 1)) * sd_floor / math.sqrt(s["n"])
        out.update(ci_low=s["mean"] - half, ci_high=s["mean"] + half)
    return out


def paired_interval(a: Sequence[float], b: Sequence[float], sd_floor: float = 0.0) -> dict:
    """mean(a_i - b_i) over paired units (seeds) with its t interval; n_a is the number of pairs."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    return mean_interval(diffs, sd_floor)


def seeds_needed(effect: float, sd_a: float, sd_b: float | None = None, margin: float = 0.0,
                 power: float = 0.8, confidence: float = CONFIDENCE) -> int | None:
    """Seeds per group for a 95% interval to clear `margin` with this power, if the effect and spread hold.

    Normal approximation (z, not t), so it is a floor; None when the effect does not reach the margin
    (more seeds would not help) or the spread is unknown."""
    if sd_a is None or math.isnan(sd_a):
        return None  # no per-seed spread (a rank correlation, say): unknown, not zero
    gap = effect - margin
    var = sd_a ** 2 + ((sd_b or 0.0) ** 2 if sd_b is not None else 0.0)
    if not gap > 0 or math.isnan(var):
        return None
    if var == 0:
        return 2
    z = sps.norm.ppf(0.5 + confidence / 2) + sps.norm.ppf(power)
    return max(2, math.ceil(z**2 * var / gap**2))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error), in the input order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def spearman_interval(x: Sequence[float], y: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """Spearman's rho with a Fisher-z 95% interval (Bonett-Wright variance); NaN interval under 4 pairs."""
    n = len(x)
    out = {"effect": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n_a": n}
    if n < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return out
    rho = float(sps.spearmanr(x, y).statistic)
    out["effect"] = rho
    if n < 4 or abs(rho) >= 1:
        return out
    half = sps.norm.ppf(0.5 + confidence / 2) * math.sqrt((1 + rho**2 / 2) / (n - 3))
    out.update(ci_low=math.tanh(math.atanh(rho) - half), ci_high=math.tanh(math.atanh(rho) + half))
    return out
