"""The record format: the version trials are written in, the versions still read, and one upgrade.

Format 2 names each axis once. `family` is the program that ran the trial (enas | nasib |
retrain), `strategy` how it picked ops (`enas`, the controller; a NASIB strategy; null for a
retraining, which picks none) and `scale` the search scale its settings start from (smoke |
quick | paper). Format 1 wrote `method` (the strategy, or enas/retrain) and `preset`; its
run plan wrote `method` for the family. Every reader passes what it loads through `upgrade`, so a
format-1 trial stays readable, resumable and adoptable; nothing on disk is rewritten.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from contract.names import STRATEGIES

FORMAT = 2  # the format config.json, result.json and trials.json are written in; bump when a meaning changes
READABLE = (1, 2)  # the formats readers accept (upgrade() turns 1 into 2)
READABLE_TEXT = " or ".join(map(str, READABLE))  # how errors name them
# What a trial must share with a request to be skipped as finished or resumed (nascore trial and loop).
IDENTITY = ("family", "strategy", "space", "scale", "budget_s")
CHECKPOINT_FORMAT = 1  # checkpoint.pt's own version: its contents did not change with the record format
# --force moves a finished trial aside to <name>.old-<stamp>: kept for the user, never read as a trial again.
MOVED_ASIDE = ".old-"
MOVED_ASIDE_STAMP = "%Y%m%d-%H%M%S"


def moved_aside(name: str) -> bool:
    """Whether a folder name is a trial --force moved aside."""
    return MOVED_ASIDE in name


def aside_suffix() -> str:
    """What --force appends to a folder it moves aside now: .old-<stamp>."""
    return MOVED_ASIDE + dt.datetime.now().strftime(MOVED_ASIDE_STAMP)

# The strategy a record may hold, and its family: ENAS's controller, or one of NASIB's strategies.
STRATEGY_FAMILIES = {"enas": "enas", **dict.fromkeys(STRATEGIES, "nasib")}


def family_of(method: str) -> str:
    """The family of a format-1 `method`: NASIB's strategies are nasib; enas and retrain are their own."""
    return STRATEGY_FAMILIES.get(method, method)


def _top(record: dict) -> dict:
    """A format-1 config/result/arch: `method` becomes family and strategy, `preset` becomes scale."""
    out = dict(record)
    if "method" in out and "family" not in out:
        method = out.pop("method")
        out["family"] = family_of(method)
        out.setdefault("strategy", None if method == "retrain" else method)
    elif "method" in out:  # an arch.json of format 1 may hold both: family (the builder), method (the strategy)
        out.setdefault("strategy", out.pop("method"))
    if "preset" in out and "scale" not in out:
        out["scale"] = out.pop("preset")
    if "source_method" in out:  # a retraining's source: its architecture's strategy
        out.setdefault("source_strategy", out.pop("source_method"))
    return out


def _plan(plan: dict) -> dict:
    """A format-1 run plan (inside config.json): its `method` was the family, `preset` the scale."""
    out = dict(plan)
    if "method" in out and "family" not in out:
        out["family"] = out.pop("method")
    if "preset" in out and "scale" not in out:
        out["scale"] = out.pop("preset")
    return out


def upgrade(record: Any) -> Any:
    """A record of any readable format as format 2 reads it (a copy); anything not a dict is returned as is.

    Works on config.json (its plan included), result.json, arch.json and a manifest row; a record
    already in format 2 comes back equal."""
    if not isinstance(record, dict):
        return record
    out = _top(record)
    if isinstance(out.get("plan"), dict):
        out["plan"] = _plan(out["plan"])
    if isinstance(out.get("arch"), dict):  # a retraining's config.json embeds the arch.json it trained
        out["arch"] = _top(out["arch"])
    if out.get("format") in READABLE:
        out["format"] = FORMAT
    return out


def readable(record: Any) -> bool:
    """Whether a loaded JSON record carries a format this kit reads."""
    return isinstance(record, dict) and record.get("format") in READABLE
