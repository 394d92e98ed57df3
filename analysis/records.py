"""Reading side of the trial-folder records contract: find, validate and load finished trials."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click
import pandas as pd

from contract.budget import Budget, BudgetError
from contract.errors import RecordError
from contract.format import READABLE, READABLE_TEXT, moved_aside, upgrade
from contract.names import EPOCHS, MANIFEST, STATUSES

# Columns every per-epoch frame carries before the epochs.jsonl fields.
ID_COLUMNS = ("trial_id", "experiment", "family", "strategy", "space", "seed", "budget_label", "budget_s", "status")
EVERY = "all"  # --experiment value that reads every trial under RESULTS, manifests ignored
EXPERIMENT_HELP = (
    "Experiment whose trials to read: the folders listed in RESULTS/<name>/trials.json (shared trials "
    "owned by another experiment included), or, with no such manifest, trials whose config.json names "
    "<name>. Default: {default}, when its manifest exists or any trial names it; otherwise every trial. "
    "Under a RESULTS with manifests, a trial none of them names (a demo, a hand-run search) is never read, "
    f"except by '{EVERY}': every trial under RESULTS."
)


class NoTrialsError(RecordError):
    """No finished trial (or none matching a selection) was found under a results folder."""


@dataclass(frozen=True)
class Trial:
    """One finished trial folder: its config.json, result.json and epochs.jsonl contents."""

    path: Path  # the trial folder
    config: dict[str, Any]  # config.json, format-checked
    result: dict[str, Any]  # result.json, format-checked
    epochs: list[dict[str, Any]]  # epochs.jsonl rows in file order (empty when the file is absent)

    @property
    def trial_id(self) -> str:
        """Trial id from config.json (the folder name when the config lacks one)."""
        return str(self.config.get("trial_id") or self.path.name)

    @property
    def experiment(self) -> str:
        """Experiment name from config.json (the parent folder name when missing)."""
        return str(self.config.get("experiment") or self.path.parent.name)

    @property
    def strategy(self) -> str:
        """How the trial picked ops: enas, a NASIB strategy (nasib, random, darts, snas); '' for a retraining."""
        return str(self.config.get("strategy", self.result.get("strategy")) or "")

    @property
    def family(self) -> str:
        """The program that ran the trial: enas | nasib | retrain."""
        return str(self.config.get("family", self.result.get("family")) or "")

    @property
    def space(self) -> str:
        """Search space name of the trial."""
        return str(self.config.get("space", self.result.get("space", "")))

    @property
    def status(self) -> str:
        """result.json status: ok, diverged or interrupted."""
        return str(self.result["status"])

    @property
    def key(self) -> str:
        """'<experiment>/<trial-id>', the form retrain results use in source_trial."""
        return f"{self.experiment}/{self.trial_id}"


@dataclass(frozen=True)
class TrialSet:
    """Trials found under a results root, split by status; only `ok` trials enter statistics."""

    root: Path  # the folder that was searched
    ok: list[Trial] = field(default_factory=list)  # finished with status ok
    excluded: list[Trial] = field(default_factory=list)  # diverged/interrupted: reported, never averaged
    unfinished: list[Path] = field(default_factory=list)  # folders with config.json but no result.json
    selection: str = "every trial"  # how these trials were chosen, for messages
    # Finished trials under a root with manifests that no manifest names (a demo, a hand-run search):
    # left out of every figure and the scorecard; only --experiment all reads them.
    strays: list[Trial] = field(default_factory=list)

    def summary(self) -> str:
        """One line saying what was selected, loaded, excluded and skipped."""
        parts = [f"{len(self.ok)} finished trial(s) under {self.root} ({self.selection})"]
        for status in STATUSES[1:]:
            names = [t.key for t in self.excluded if t.status == status]
            if names:
                parts.append(f"{len(names)} {status} (not averaged: {', '.join(names)})")
        parts.append(f"skipped {len(self.unfinished)} unfinished (no result.json)")
        if self.strays:
            parts.append(f"left out {len(self.strays)} no manifest names: {', '.join(t.key for t in self.strays)}")
        no_log = [t.key for t in self.ok if not (t.path / EPOCHS).exists()]
        if no_log:  # counted, never silently left out of a curve
            parts.append(f"{len(no_log)} without {EPOCHS} (no curve): {', '.join(no_log)}")
        return "; ".join(parts)

    def select(self, **where: Any) -> list[Trial]:
        """The ok trials whose properties equal every given value (None values are ignored)."""
        picked = self.ok
        for name, wanted in where.items():
            if wanted is not None:
                picked = [t for t in picked if getattr(t, name) == wanted]
        return picked


def budget_order(trial: Trial) -> float:
    """A number that orders a trial's budget: its seconds, else its target epochs ('50ep'), else inf.

    Target-epoch budgets record their seconds only in result.json (known after the timing run); on one
    machine, more target epochs always means more seconds, so either orders the sweep."""
    seconds = trial.config.get("budget_s")
    if seconds is not None:
        return float(seconds)
    try:
        budget = Budget.from_record({"budget_label": trial.config.get("budget_label")})
    except BudgetError:
        budget = None  # an unreadable label orders by the seconds result.json holds
    if budget is not None and budget.epochs is not None:
        return float(budget.epochs)
    return float(trial.result.get("budget_s") or math.inf)


def read_json(path: Path, require_format: bool) -> dict[str, Any]:
    """Load a JSON object; check its format is readable (required, or only when present) and upgrade it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise RecordError(f"{path}: cannot read JSON ({err})") from err
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object at top level")
    if (require_format or "format" in data) and data.get("format") not in READABLE:
        raise RecordError(f"{path}: unsupported record format {data.get('format')!r} "
                          f"(expected {READABLE_TEXT})")
    return upgrade(data)


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """Load epochs.jsonl rows; a missing file gives [] and a bad line an error naming file and line."""
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise RecordError(f"{path}: cannot read ({err})") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise RecordError(f"{path}:{lineno}: bad JSON line ({err})") from err
        if not isinstance(row, dict) or "epoch" not in row:
            raise RecordError(f"{path}:{lineno}: expected an object with an 'epoch' key")
        rows.append(row)
    return rows


def find_trial_dirs(root: Path) -> list[Path]:
    """Folders holding config.json at any depth, skipping scratch ('.' or '_' names) and trials --force moved aside."""
    root = Path(root)
    if not root.is_dir():
        raise NoTrialsError(f"results folder {root} does not exist")
    found = []
    for cfg in root.rglob("config.json"):
        rel = cfg.parent.relative_to(root).parts
        if any(part.startswith((".", "_")) or moved_aside(part) for part in rel):
            continue
        found.append(cfg.parent)
    return sorted(found)


def load_trial(folder: Path) -> Trial | None:
    """Load one trial folder; None when it has no result.json yet (unfinished)."""
    result_path = folder / "result.json"
    if not result_path.exists():
        return None
    config = read_json(folder / "config.json", require_format=True)
    result = read_json(result_path, require_format=True)
    if result.get("status") not in STATUSES:
        raise RecordError(f"{result_path}: unknown status {result.get('status')!r}; "
                          f"valid: {', '.join(STATUSES)}")
    return Trial(folder, config, result, read_epochs(folder / "epochs.jsonl"))


def load_trials(root: Path | str) -> TrialSet:
    """Every trial under root that counts (see _counted; the rest are strays); NoTrialsError when none finished."""
    root = Path(root)
    ok, excluded, unfinished = [], [], []
    for folder in find_trial_dirs(root):
        trial = load_trial(folder)
        if trial is None:
            unfinished.append(folder)
        elif trial.status == "ok":
            ok.append(trial)
        else:
            excluded.append(trial)
    counted = _counted(root)
    strays = [t for t in ok + excluded if not counted(t.path, t.config.get("experiment"))]
    ok, excluded = ([t for t in group if counted(t.path, t.config.get("experiment"))] for group in (ok, excluded))
    unfinished = [p for p in unfinished if counted(p, p.parent.name)]
    if not ok and not excluded:
        left = f"; {len(strays)} finished trial(s) no manifest names ({MANIFEST})" if strays else ""
        raise NoTrialsError(f"no finished trials (with result.json) under {root}; "
                            f"{len(unfinished)} unfinished{left}")
    return TrialSet(root, ok, excluded, unfinished, strays=strays)


def _counted(root: Path) -> Callable[[Path, object], bool]:
    """Whether a trial counts: a manifest <root>/*/trials.json names it, or its recorded experiment has none
    here (older records); a standalone run (no experiment recorded) counts only where no manifest is."""
    paths = sorted(Path(root).glob(f"*/{MANIFEST}"))
    if not paths:
        return lambda folder, experiment: True
    listed = set().union(*(read_manifest(root, p.parent.name) or set() for p in paths))
    named = {p.parent.name for p in paths}
    return lambda folder, experiment: (folder.resolve() in listed
                                       or (bool(experiment) and str(experiment) not in named))


def read_manifest(root: Path, experiment: str) -> set[Path] | None:
    """Resolved trial folders listed in <root>/<experiment>/trials.json; None when there is no manifest."""
    path = Path(root) / experiment / MANIFEST
    if not path.is_file():
        return None
    data = read_json(path, require_format=True)
    rows = data.get("trials")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("folder"), str)
                                             for r in rows):
        raise RecordError(f"{path}: 'trials' must be a list of objects each with a 'folder' string")
    return {(Path(root) / r["folder"]).resolve() for r in rows}


def _restrict(trials: TrialSet, keep: Callable[[Path, str], bool], selection: str) -> TrialSet:
    """The subset whose (folder, config experiment) pass keep; unfinished folders use their parent's name."""
    return replace(
        trials, selection=selection,
        ok=[t for t in trials.ok if keep(t.path, t.experiment)],
        excluded=[t for t in trials.excluded if keep(t.path, t.experiment)],
        unfinished=[p for p in trials.unfinished if keep(p, p.parent.name)],
    )


def select_experiment(trials: TrialSet, experiment: str | None, default: str | None = None) -> TrialSet:
    """The trials an experiment uses: its manifest's folders, else its config.json name (EXPERIMENT_HELP).

    experiment None means `default`, which, unlike a name asked for, falls back to every trial when
    neither a manifest nor a trial names it (records written before manifests, or a hand-made folder)."""
    name = default if experiment is None else experiment
    if name == EVERY:  # strays included: the one way to read a trial no manifest names
        return replace(trials, selection="every trial", strays=[],
                       ok=trials.ok + [t for t in trials.strays if t.status == "ok"],
                       excluded=trials.excluded + [t for t in trials.strays if t.status != "ok"])
    if name is None:
        return replace(trials, selection="every trial")
    folders = read_manifest(trials.root, name)
    if folders is not None:
        listed = f"manifest {Path(trials.root) / name / MANIFEST}"
        absent = [f for f in folders if not (f / "config.json").exists()]
        if absent:
            listed += f", {len(absent)} listed folder(s) not written yet"
        return _restrict(trials, lambda path, _: path.resolve() in folders, listed)
    named = _restrict(trials, lambda _, exp: exp == name, f"config experiment {name!r}, no {MANIFEST}")
    if experiment is None and not (named.ok or named.excluded or named.unfinished):
        return replace(trials, selection=f"every trial: no {name} manifest or trials")
    return named


def read_samples(trial: Trial) -> dict[str, Any]:
    """samples.json of a trial, checked: op_names a list and every sampled op one of them."""
    path = trial.path / "samples.json"
    if not path.exists():
        raise RecordError(f"{path}: missing (needed for kernel frequencies)")
    data = read_json(path, require_format=False)
    names = data.get("op_names")
    if not isinstance(names, list) or not isinstance(data.get("samples"), list):
        raise RecordError(f"{path}: needs 'op_names' and 'samples' lists")
    for i, sample in enumerate(data["samples"]):
        unknown = sorted(set(sample.get("ops", [])) - set(names))
        if unknown:
            raise RecordError(f"{path}: sample {i} uses ops not in op_names: {', '.join(unknown)}")
    return data


def percent_scale(values: Iterable[float]) -> float:
    """100 when accuracies look like fractions (all <= 1), else 1: CIFAR-10 accuracy never sits below 1%."""
    vals = [float(v) for v in values if v is not None]
    return 100.0 if vals and max(vals) <= 1.0 else 1.0


def trial_scale(trial: Trial) -> float:
    """Factor turning this trial's recorded accuracies into percent."""
    vals = [row.get("valid_acc") for row in trial.epochs]
    vals.append(trial.result.get("final_valid_acc"))
    return percent_scale(vals)


def epochs_frame(trials: Iterable[Trial]) -> pd.DataFrame:
    """One row per (trial, epoch): id columns plus every epochs.jsonl field; accuracies in percent."""
    rows = []
    for trial in trials:
        scale = trial_scale(trial)
        ident = {
            "trial_id": trial.trial_id, "experiment": trial.experiment,
            "family": trial.family, "strategy": trial.strategy,
            "space": trial.space, "seed": trial.config.get("seed"),
            "budget_label": trial.config.get("budget_label"), "budget_s": trial.config.get("budget_s"),
            "status": trial.status,
        }
        for row in trial.epochs:
            merged = {**ident, **row}
            for key in ("valid_acc", "train_acc"):
                if merged.get(key) is not None:
                    merged[key] = float(merged[key]) * scale
            rows.append(merged)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=[*ID_COLUMNS, "epoch"])
    return frame


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn record errors, and permission or disk errors, into click's one-line 'Error: ...' and exit 1."""
    try:
        yield
    except RecordError as err:
        raise click.ClickException(str(err)) from None
    except OSError as err:  # PermissionError, a full disk: one line naming the path, never a traceback
        where = err.filename or "a results file"
        raise click.ClickException(f"cannot read or write {where}: {err.strerror or err}") from None


def write_text(path: Path, text: str) -> None:
    """Write an output file; an unwritable path is a RecordError naming it."""
    try:
        Path(path).write_text(text)
    except OSError as err:
        raise RecordError(f"cannot write {path}: {err.strerror or err}") from None


def output_dir(results: Path, out: Path | None, kind: str) -> Path:
    """<out or results>/<kind> (kind: figures or tables), created."""
    folder = Path(out if out is not None else results) / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RecordError(f"cannot write outputs to {folder}: {err.strerror or err}") from None
    return folder
