"""Table 1: the paper's rows beside the rows measured from this kit's search and retrain records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
import pandas as pd

from analysis import stats
from analysis.provenance import data_label, provenance_note
from analysis.records import (
    EXPERIMENT_HELP,
    RecordError,
    Trial,
    TrialSet,
    cli_errors,
    load_trials,
    output_dir,
    select_experiment,
)
from contract.options import CONTEXT

PAPER_PATH = Path(__file__).with_name("paper_table1.json")
NOT_RUN = "not run"
# (row name, search strategy, search space) of the measured rows.
MEASURED = (
    ("ENAS", "enas", "original"),
    ("ENAS-extended", "enas", "extended"),
    ("NASIB-1", "nasib", "narrow"),
    ("NASIB-2", "nasib", "superkernel"),
)
COLUMNS = ["source", "network", "dataset", "params_m", "test_error", "test_error_std", "num_ops",
           "search_cost", "search_unit", "n_search", "n_retrain", "notes"]


def load_paper_rows(path: Path = PAPER_PATH) -> list[dict]:
    """The paper's Table 1 rows, kept as data in paper_table1.json."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RecordError(f"{path}: cannot read paper rows ({err})") from err
    if doc.get("format") != 1:
        raise RecordError(f"{path}: unsupported format {doc.get('format')!r} (expected 1)")
    return [
        {"source": r["source"], "network": r["network"], "dataset": r["dataset"], "params_m": r["params_m"],
         "test_error": r["test_error"], "test_error_std": "", "num_ops": r["num_ops"],
         "search_cost": r["search_gpu_days"], "search_unit": "GPU-days", "n_search": "", "n_retrain": "",
         "notes": ""}
        for r in doc["rows"]
    ]


def retrain_trials(trials: TrialSet, strategy: str, space: str) -> list[Trial]:
    """Finished retrain trials whose source search used this strategy and space."""
    return [t for t in trials.select(family="retrain")
            if t.result.get("source_strategy") == strategy and t.result.get("source_space") == space]


def search_trials(trials: TrialSet, strategy: str, space: str, retrains: list[Trial],
                  lookup: list[Trial]) -> list[Trial]:
    """The searches (found in lookup) the retrains came from, else every selected search of strategy/space."""
    by_key = {t.key: t for t in lookup}
    sources = [by_key[t.result["source_trial"]] for t in retrains if t.result.get("source_trial") in by_key]
    if sources:
        return list({t.key: t for t in sources}.values())
    return trials.select(strategy=strategy, space=space)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _params(retrains: list[Trial], searches: list[Trial]) -> tuple[object, str]:
    """Mean params in millions (retrained nets first, else the search's derived net) and a note."""
    for group, note in ((retrains, ""), (searches, "search width, no retrain")):
        values = [float(t.result["params"]) / 1e6 for t in group if t.result.get("params") is not None]
        if values:
            return _mean(values), note
    return NOT_RUN, ""


def _search_cost(searches: list[Trial]) -> tuple[object, str]:
    """Mean search GPU-days, or mean search hours with the device named when it was not CUDA."""
    if not searches:
        return NOT_RUN, ""
    days = [t.result.get("gpu_days") for t in searches]
    if all(d is not None for d in days):
        return _mean([float(d) for d in days]), "GPU-days"
    hours = [float(t.result.get("search_s", math.nan)) / 3600 for t in searches]
    devices = sorted({str(t.result.get("device", "?")).split(":")[0].upper() for t in searches})
    return _mean(hours), f"hours ({'/'.join(devices)})"


def measured_row(trials: TrialSet, name: str, strategy: str, space: str, lookup: list[Trial]) -> dict:
    """One measured row; every missing piece is 'not run', never a zero."""
    retrains = retrain_trials(trials, strategy, space)
    searches = search_trials(trials, strategy, space, retrains, lookup)
    err = stats.summarize([float(t.result["test_error"]) for t in retrains if "test_error" in t.result])
    params, note = _params(retrains, searches)
    cost, unit = _search_cost(searches)
    ops = [t.result.get("num_ops") for t in (*searches, *retrains) if t.result.get("num_ops") is not None]
    return {
        "source": "measured", "network": name,
        "dataset": ", ".join(sorted({data_label(t) for t in (*searches, *retrains)})) or NOT_RUN,
        "params_m": params,
        "test_error": err["mean"] if err["n"] else NOT_RUN,
        "test_error_std": err["std"] if err["n"] > 1 else (err["note"] if err["n"] else NOT_RUN),
        "num_ops": ops[0] if ops else NOT_RUN,
        "search_cost": cost, "search_unit": unit,
        "n_search": len(searches), "n_retrain": len(retrains), "notes": note,
    }


def build_table(trials: TrialSet, lookup: list[Trial] | None = None) -> pd.DataFrame:
    """Paper rows, then measured rows of the selected trials; retrains find their searches in lookup."""
    rows = load_paper_rows()
    # A retrain's source search counts even when the selection missed it (records without a manifest).
    pool = trials.ok if lookup is None else lookup
    rows += [measured_row(trials, *spec, pool) for spec in MEASURED]
    return pd.DataFrame(rows, columns=COLUMNS)


def _error_cell(row: pd.Series) -> str:
    if row["source"] != "measured" or row["test_error"] == NOT_RUN:
        return str(row["test_error"])
    std = row["test_error_std"]
    mean = f"{row['test_error']:.2f}"
    return f"{mean} ± {std:.2f}" if isinstance(std, float) else f"{mean} ({std})"


def _cost_cell(row: pd.Series) -> str:
    if row["search_cost"] == NOT_RUN:
        return NOT_RUN
    cost = f"{row['search_cost']:.4g}"
    return cost if row["search_unit"] == "GPU-days" else f"{cost} {row['search_unit'].replace('hours', 'h')}"


def to_markdown(table: pd.DataFrame, note: str) -> str:
    """Markdown: one table, paper rows then measured rows (marked), and the scale/device/data note."""
    header = ("| Source | Network | Dataset | Params (millions) | Test error (%) | #OPs (candidates per layer) "
              "| Search cost (GPU-days; hours where marked) | Seeds |\n|---|---|---|---|---|---|---|---|")
    lines = ["# Table 1: paper vs measured", "", header]
    for _, row in table.iterrows():
        seeds = "" if row["source"] != "measured" else f"search {row['n_search']}, retrain {row['n_retrain']}"
        params = row["params_m"] if row["params_m"] == NOT_RUN else f"{row['params_m']:.4g}"
        if row["notes"]:
            params = f"{params} ({row['notes']})"
        lines.append(f"| {row['source']} | {row['network']} | {row['dataset']} | {params} | "
                     f"{_error_cell(row)} | {row['num_ops']} | {_cost_cell(row)} | {seeds} |")
    lines += ["", "Paper rows: copied from the NASIB paper's Table 1 on official CIFAR-10; its NASIB row ran on one "
              "V100, the other rows are the costs their own papers report (other GPUs and counts).",
              f"Measured rows: {note}.",
              "Test error: mean ± std (ddof=1) over retrain seeds; 'not run' marks pieces with no records.",
              "Search cost: mean over search trials; shown as hours with the device where it was not a GPU."]
    return "\n".join(lines) + "\n"


def run_table1(results: Path, out: Path | None = None, experiment: str | None = None) -> list[Path]:
    """Table 1 from one experiment's records (default table1): OUT/tables/table1.csv/.md, markdown printed."""
    everything = load_trials(results)
    trials = select_experiment(everything, experiment, default="table1")
    click.echo(trials.summary())
    table = build_table(trials, everything.ok)
    used = [t for t in trials.ok if t.family == "retrain" or t.strategy in {m for _, m, _ in MEASURED}]
    note = provenance_note(used) if used else "no matching records"
    folder = output_dir(results, out, "tables")
    csv_path, md_path = folder / "table1.csv", folder / "table1.md"
    table.to_csv(csv_path, index=False)
    markdown = to_markdown(table, note)
    md_path.write_text(markdown)
    click.echo(markdown)
    for path in (csv_path, md_path):
        click.echo(f"wrote {path}")
    return [csv_path, md_path]


@click.command(context_settings=CONTEXT)
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output root (files go to OUT/tables/); default: RESULTS.")
@click.option("--experiment", default=None, help=EXPERIMENT_HELP.format(default="table1"))
def main(results: Path, out: Path | None, experiment: str | None) -> None:
    """Table 1: paper rows beside rows measured from the records under RESULTS."""
    with cli_errors():
        run_table1(results, out, experiment)


if __name__ == "__main__":
    main()
