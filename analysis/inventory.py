"""`python -m analysis.inventory RESULTS`: what produced every trial under RESULTS, from its records.

Writes RESULTS/inventory.md (and .csv): one row per finished trial with its experiment,
family, strategy, space, budget, seed, scale, status, epochs, search time, device, data folder,
start date, commit and dirty flag. Every figure in RESULTS was drawn from trials listed
here (with any trial no manifest names, which no figure reads), so this is the provenance table
`results/README.md` points at.
"""
from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from analysis.provenance import code_flags, data_label
from analysis.records import Trial, cli_errors, load_trials, read_manifest, write_text
from contract.options import CONTEXT


def _row(trial: Trial) -> dict:
    """One inventory row, read from config.json and result.json."""
    cfg, res = trial.config, trial.result
    prov = cfg.get("provenance", {}) or {}
    commit = prov.get("git_commit") or ""
    return {
        "trial": trial.key, "family": trial.family, "strategy": trial.strategy, "space": trial.space,
        "budget": cfg.get("budget_label") or "",
        "seed": cfg.get("seed"), "scale": cfg.get("scale"), "status": trial.status, "epochs": res.get("epochs"),
        "search_s": round(float(res.get("search_s") or 0.0), 1),
        "device": prov.get("device_name") or prov.get("device"), "data": data_label(trial),
        "started_at": prov.get("started_at"), "commit": commit[:10] + ("+dirty" if prov.get("git_dirty") else ""),
    }


def inventory(results: Path) -> pd.DataFrame:
    """The inventory table of every finished trial under `results` (those no manifest names too)."""
    trials = load_trials(results)
    rows = [_row(t) for t in trials.ok + trials.excluded + trials.strays]
    return pd.DataFrame(rows).sort_values("trial").reset_index(drop=True)


def figure_flags(results: Path) -> list[str]:
    """One line per experiment whose trials (its manifest's, else those naming it) mix commits or dirty trees."""
    trials = load_trials(results)
    everything = trials.ok + trials.excluded
    lines = []
    names = {t.experiment for t in everything} | {p.parent.name for p in Path(results).glob("*/trials.json")}
    for name in sorted(names):
        listed = read_manifest(results, name)
        members = [t for t in everything
                   if (t.path.resolve() in listed if listed is not None else t.experiment == name)]
        flags = code_flags(members)
        if flags:
            lines.append(f"- **{name}** ({len(members)} trials): {'; '.join(flags)}")
    return lines


@click.command(context_settings=CONTEXT)
@click.argument("results", type=click.Path(exists=True, file_okay=False, path_type=Path))
def main(results: Path) -> None:
    """Write RESULTS/inventory.{md,csv}: the provenance of every finished trial."""
    with cli_errors():  # an unwritable RESULTS is one line naming the file, never a traceback
        table = inventory(results)
        table.to_csv(results / "inventory.csv", index=False)
        head = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
        body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in table.itertuples(index=False))
        flags = figure_flags(results)
        warn = ("Figures whose trials were not all run by one clean commit:\n\n" + "\n".join(flags) + "\n\n"
                if flags else "Every figure's trials were run by one clean commit.\n\n")
        write_text(results / "inventory.md", f"# Trials under {results}\n\n{warn}{head}{body}")
    click.echo(f"{len(table)} trial(s) -> {results / 'inventory.md'}, {results / 'inventory.csv'}")


if __name__ == "__main__":
    main()
