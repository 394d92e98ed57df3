"""How a user writes a budget: wall-clock forms ('90s', '45m', '2h', '1.5d', seconds) and target epochs ('25ep').

Parsing only, with one-line errors that list the accepted forms; turning a budget into
epochs is `nasib.budget`'s work.
"""
from __future__ import annotations

import math
import re

ACCEPTED = ("use a number with s, m, h or d, such as 90s, 45m, 2h, 1.5d, 2h30m, or plain seconds, or target epochs "
            "such as 25ep (the time 25 epochs take on this machine)")
MAX_EPOCHS = 100_000  # a plan never exceeds this, however fast an epoch is
MAX_BUDGET_S = 366 * 86400.0  # a year: anything longer is a typo, refused rather than capped
_UNITS = {
    "": 1.0, "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}
# ASCII-only on purpose: with Unicode case folding 'ſ' would read as 's'.
_BUDGET_RE = re.compile(r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))\s*([a-z]*)\s*", re.ASCII | re.IGNORECASE)


# Compound forms, largest unit first: 2h30m, 1d12h, 1h 30m 15s (each unit at most once).
_PART_RE = re.compile(r"\s*([0-9]+\.?[0-9]*)\s*([dhms])", re.ASCII | re.IGNORECASE)


def _compound(text: str) -> float | None:
    """Seconds of a compound budget such as 2h30m, or None when `text` is not one."""
    if not isinstance(text, str) or _PART_RE.sub("", text).strip():
        return None  # something besides number-unit pairs
    parts = [(float(n), u.lower()) for n, u in _PART_RE.findall(text)]
    units = [u for _, u in parts]
    if len(parts) < 2 or units != sorted(set(units), key="dhms".index):
        return None  # a single part is the plain form's; a unit twice or out of order is a typo
    return sum(n * _UNITS[u] for n, u in parts)


# "25ep": the budget is the time 25 epochs take here, measured by the timing run (the paper's Figure 5
# gives budgets "mapped to the mentioned value of target epochs").
_TARGET_RE = re.compile(r"\s*([0-9]+)\s*(ep|epoch|epochs)\s*", re.ASCII | re.IGNORECASE)


class BudgetError(ValueError):
    """A budget or schedule setting that cannot be used."""


class BudgetTooSmall(BudgetError):
    """Not even one epoch fits in the budget."""


def _shown(text: str) -> str:
    """Quote user text for a one-line message, shortened when long."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parse_budget(text: str) -> float:
    """Read '90s', '45m', '2h', '1.5d' or plain seconds into a finite positive number of seconds."""
    match = _BUDGET_RE.fullmatch(text) if isinstance(text, str) else None
    if target_epochs(text) is not None:
        raise BudgetError(f"budget {_shown(text)} is a target in epochs: its seconds are known only after "
                          f"the timing run")
    compound = _compound(text)
    if compound is None and (match is None or match.group(2).lower() not in _UNITS):
        raise BudgetError(f"cannot read budget {_shown(str(text))}: {ACCEPTED}")
    seconds = compound if compound is not None else float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(seconds):
        raise BudgetError(f"budget {_shown(text)} is too large to be finite: {ACCEPTED}")
    if seconds <= 0:
        raise BudgetError(f"budget {_shown(text)} must be more than zero: {ACCEPTED}")
    if seconds > MAX_BUDGET_S:
        raise BudgetError(f"budget {_shown(text)} is {seconds / 86400:.3g} days, more than the planner takes "
                          f"(at most {MAX_BUDGET_S / 86400:.0f}d); give a smaller budget or --epochs")
    return seconds


def target_epochs(text: str) -> int | None:
    """N of a target-epochs budget such as '25ep' or '25 epochs'; None for a time budget."""
    match = _TARGET_RE.fullmatch(text) if isinstance(text, str) else None
    return None if match is None else int(match.group(1))


def check_budget(text: str) -> float | None:
    """Validate either budget form: seconds for a time budget, None for target epochs (known after timing)."""
    n = target_epochs(text)
    if n is None:
        return parse_budget(text)
    if not 1 <= n <= MAX_EPOCHS:
        raise BudgetError(f"budget {_shown(text)}: target epochs must be 1 to {MAX_EPOCHS}")
    return None
