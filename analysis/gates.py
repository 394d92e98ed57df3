"""Rules a verdict must pass before it is drawn: independent units, a spread, and a scale gate per claim.

Each gate is a named constant with its reason (docs/claims.md lists them). Below a gate the row
reads "not run (scale)" and says what the records lack; the measured value is still shown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from analysis.records import Trial

MIN_UNITS = 3  # independent seeds per group before any directional verdict: 2 give a t interval with 1 df
DEFAULT_VALID = 5000  # the data loader's default validation split (records that store None used it)


@dataclass(frozen=True)
class Gate:
    """The smallest records a claim can be judged from, and why."""

    name: str  # constant's name, shown in the row
    min_valid: int = 0  # validation images per trial: accuracy is quantised at 100 / valid points
    min_epochs: int = 0  # epochs every trial must have run
    min_updates: int = 0  # ENAS controller updates (epochs x train_steps) every trial must have made
    paper_scale: bool = False  # only records at the paper scale (Table 1's absolute numbers)
    reason: str = ""  # why this much, one line


# Fig 2: at 300 validation images one image is 0.33 points and seeds spread ~3 points; at 2,000 the
# spread is under a point (issue 16); before ~10 epochs both spaces sit near chance.
FIG2_GATE = Gate("FIG2_GATE", min_valid=2000, min_epochs=10,
                 reason="per-seed spread ~3 points below 2,000 validation images; curves near chance before 10 epochs")
# Fig 3 compares methods under one budget: the same noise floor as Fig 2.
FIG3_GATE = Gate("FIG3_GATE", min_valid=2000, min_epochs=10,
                 reason="the same noise floor as Fig 2; a convergence time needs >= 10 epochs to resolve")
# Fig 4: after 15 updates the controller's entropy moved from 6.1619 to 6.1614: its samples are uniform.
FIG4_GATE = Gate("FIG4_GATE", min_updates=1000,
                 reason="below ~1,000 controller updates the sampler has not moved from uniform")
# Fig 5: a slope over each half of a run needs several epochs per half even at the smallest budget.
FIG5_GATE = Gate("FIG5_GATE", min_valid=2000, min_epochs=10,
                 reason="a slope per half-run needs >= 5 epochs per half; accuracy noise as Fig 2")
# Mechanics (P2 entropy, budget fidelity): enough epochs for the schedule to reach exploitation.
MECHANICS_GATE = Gate("MECHANICS_GATE", min_epochs=10,
                      reason="the explore/exploit schedule needs >= 10 epochs to leave exploration")
TABLE1_GATE = Gate("TABLE1_GATE", paper_scale=True,
                   reason="Table 1's absolute numbers belong to the paper's network, data and schedule")
# Retrained architectures compared with each other: a test error needs a real schedule and test set.
RETRAIN_GATE = Gate("RETRAIN_GATE", min_epochs=20, min_valid=0,
                    reason="a retrained net's test error means little before ~20 epochs")


def valid_images(trial: Trial) -> int:
    """Validation images behind the trial's accuracies (the loader's default when not recorded)."""
    data = (trial.config.get("config") or {}).get("data") or {}
    return int(data.get("valid_size") or DEFAULT_VALID)


def controller_updates(trial: Trial) -> int:
    """ENAS controller updates the trial made: epochs x controller.train_steps (0 for other methods)."""
    ctrl = (trial.config.get("config") or {}).get("controller") or {}
    return int(trial.result.get("epochs") or 0) * int(ctrl.get("train_steps") or 0)


def gate_lacks(gate: Gate, trials: list[Trial]) -> str:
    """What the trials lack for this gate ('' when they pass): the row's 'not run (scale)' reason."""
    if not trials:
        return ""
    lacks = []
    if gate.min_valid and (v := min(valid_images(t) for t in trials)) < gate.min_valid:
        lacks.append(f"{v} validation images < {gate.min_valid:,}")
    if gate.min_epochs and (e := min(int(t.result.get("epochs") or 0) for t in trials)) < gate.min_epochs:
        lacks.append(f"{e} epochs < {gate.min_epochs}")
    if gate.min_updates and (u := min(controller_updates(t) for t in trials)) < gate.min_updates:
        lacks.append(f"{u} controller updates < {gate.min_updates:,}")
    if gate.paper_scale and any(t.config.get("scale") != "paper" for t in trials):
        lacks.append("not at the paper scale")
    return f"{'; '.join(lacks)} ({gate.name}: {gate.reason})" if lacks else ""


def accuracy_quantum(trials: list[Trial]) -> float:
    """One validation image in points (the coarsest among the trials): the step accuracies move in."""
    return max((100.0 / valid_images(t) for t in trials), default=0.0)


def se_floor(quantum: float) -> float:
    """Per-value SD floor of a quantised value: the SD of rounding to the quantum (uniform error)."""
    return quantum / math.sqrt(12.0)


def fingerprint(trial: Trial, what: str) -> str:
    """A trial's samples (what='samples') or validation curve, as text: equal text, one unit."""
    if what == "samples" and (trial.path / "samples.json").exists():
        doc = json.loads((trial.path / "samples.json").read_text())
        return json.dumps([s.get("ops") for s in doc.get("samples", [])])
    return json.dumps([r.get("valid_acc") for r in trial.epochs])


def distinct(trials: list[Trial], what: str = "curve") -> tuple[list[Trial], list[str]]:
    """Trials whose samples or curves differ; duplicates (identical records) count once, named."""
    seen: dict[str, Trial] = {}
    dupes = []
    for t in trials:
        key = fingerprint(t, what)
        if key in seen:
            dupes.append(f"{t.key} = {seen[key].key}")
        else:
            seen[key] = t
    return list(seen.values()), dupes
