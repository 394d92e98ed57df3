"""`python -m analysis.claims RESULTS`: every claim of the paper tested from the records, one row each.

Writes <out>/figures/claims.md and claims.json: the paper's sentence, the measured effect with
its 95% interval, n, the test, the threshold and a verdict (analysis/verdicts.py), after the rules
of analysis/gates.py (units, spread, scale). Claims whose records are missing are listed as
"not run", so the table always has every row.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import click

from analysis.claims_fig2 import fig2_claims
from analysis.claims_fig3 import fig3_claims
from analysis.claims_fig4 import fig4_claims
from analysis.claims_fig5 import fig5_claims
from analysis.claims_paper import table1_claims
from analysis.records import NoTrialsError, Trial, TrialSet, cli_errors, load_trials, output_dir, write_text
from analysis.verdicts import KINDS, NOT_RUN, VERDICTS, Claim, effect_cell, fmt
from contract.names import SYNTHETIC_DATA, data_copy
from contract.options import CONTEXT

KIND_NAMES = {"paper": "claims of the paper", "mechanics": "checks of the kit's own mechanics",
              "tautology": "true by construction"}


def all_claims(trials: TrialSet) -> list[Claim]:
    """Every claim row, in paper order."""
    return [*fig2_claims(trials), *fig3_claims(trials), *fig4_claims(trials), *fig5_claims(trials),
            *table1_claims(trials)]


def on_synthetic(trial: Trial) -> bool:
    """A trial that trained on the synthetic stand-in (its recorded data name says so): never evidence."""
    prov = trial.config.get("provenance", {}) or {}
    return data_copy(prov.get("data_copy") or prov.get("data_source")) == SYNTHETIC_DATA


def refuse_synthetic(trials: TrialSet) -> tuple[TrialSet, list[str]]:
    """The trials without the synthetic-data ones, and the keys of those refused."""
    refused = sorted(t.key for t in (*trials.ok, *trials.excluded) if on_synthetic(t))
    if not refused:
        return trials, []
    kept = replace(trials, ok=[t for t in trials.ok if not on_synthetic(t)],
                   excluded=[t for t in trials.excluded if not on_synthetic(t)])
    return kept, refused


def headline(claims: list[Claim]) -> list[str]:
    """One line per kind of row: its verdict counts (paper claims first, never pooled with the others)."""
    lines = []
    for kind in KINDS:
        counts = Counter(c.verdict for c in claims if c.kind == kind)
        if counts:
            total = sum(counts.values())
            lines.append(f"{total} {KIND_NAMES[kind]}: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v]))
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def to_markdown(claims: list[Claim], root: Path, refused: list[str] = ()) -> str:
    """A short table (claim, effect, CI, n, verdict) a terminal can show, then each row's long text."""
    note = [f"Refused {len(refused)} trial(s) run on synthetic data: {', '.join(refused)}.", ""] if refused else []
    lines = [f"# Claims scorecard: {root}", "", *note, *(f"- {line}" for line in headline(claims)), "",
             "| Claim | Kind | Effect | 95% CI | n | Verdict |", "|---|---|---|---|---|---|"]
    for c in claims:
        ci = "–" if c.ci_low is None else f"[{fmt(c.ci_low)}, {fmt(c.ci_high)}]"
        lines.append(f"| {c.id} | {c.kind} | {fmt(c.effect)} | {ci} | {c.n or '–'} | **{c.verdict}** |")
    lines += ["", "reproduced / not reproduced: the whole 95% interval lies on one side of the threshold; "
              "inconclusive: it straddles it, or the rules withhold a direction (fewer than 3 distinct seeds, "
              "zero spread); not run (scale): below the claim's scale gate; not run: no records. "
              "See docs/claims.md.", "", "## Each claim", ""]
    for c in claims:
        seeds = f" Seeds that would settle it: {c.seeds_needed}." if c.seeds_needed is not None else ""
        notes = "; ".join(x for x in (c.detail, *c.flags) if x)
        lines += [f"### {c.id}: {c.verdict}", "", f"- Paper: \"{_cell(c.paper)}\"",
                  f"- Measure: {_cell(c.measure)}", f"- Test: {_cell(c.test)}; holds when {_cell(c.threshold)}",
                  f"- Effect: {effect_cell(c)} (n {c.n or '–'}).{seeds}", f"- Notes: {_cell(notes) or '–'}", ""]
    return "\n".join(lines)


def run_claims(results: Path, out: Path | None = None) -> list[Path]:
    """Write figures/claims.md and figures/claims.json under OUT (default RESULTS); print the counts."""
    try:
        trials = load_trials(results)
    except NoTrialsError as err:
        if not Path(results).is_dir():
            raise
        click.echo(f"no records ({err}): every claim is 'not run'")
        trials = TrialSet(Path(results))
    trials, refused = refuse_synthetic(trials)
    if refused:
        click.echo(f"refused {len(refused)} trial(s) run on synthetic data (not CIFAR-10): {', '.join(refused)}",
                   err=True)
    claims = all_claims(trials)
    folder = output_dir(results, out, "figures")
    md_path, json_path = folder / "claims.md", folder / "claims.json"
    write_text(md_path, to_markdown(claims, Path(results), refused))
    record = {"format": 1, "results": str(results), "headline": headline(claims),
              "claims": [c.as_dict() for c in claims], **({"refused_synthetic": refused} if refused else {})}
    write_text(json_path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    for c in claims:
        click.echo(f"  {c.verdict:15s} {c.id}: {effect_cell(c)} (n {c.n or '–'})")
    for line in headline(claims):
        click.echo(line)
    click.echo(f"wrote {md_path}\nwrote {json_path}")
    return [md_path, json_path]


@click.command(context_settings=CONTEXT)
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
