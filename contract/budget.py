"""A search budget as one value: the text the user wrote, and its seconds or its target epochs.

Forms: wall-clock ('90s', '45m', '2h', '1.5d', compound '2h30m', plain seconds) or target
epochs ('25ep': the time 25 epochs take on this machine, known after the timing run; the
paper's Figure 5 gives budgets "mapped to the mentioned value of target epochs").
`Budget.parse` is the kit's one parser: the CLI option, YAML loading and config construction
call it, and everything after passes the value. Turning a budget into epochs is the planner's
work (`nasib.budget`, `nasib.clock`). Records keep the fields they always had: `budget_label`
(the text) and `budget_s` (seconds; None for target epochs), and experiment plans `budget`.
"""
from __future__ import annotations

import math
import re
from typing import Any

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
_TARGET_RE = re.compile(r"\s*([0-9]+)\s*(ep|epoch|epochs)\s*", re.ASCII | re.IGNORECASE)


class BudgetError(ValueError):
    """A budget or schedule setting that cannot be used."""


class BudgetTooSmall(BudgetError):
    """Not even one epoch fits in the budget."""


def _shown(text: str) -> str:
    """Quote user text for a one-line message, shortened when long."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _compound(text: str) -> float | None:
    """Seconds of a compound budget such as 2h30m, or None when `text` is not one."""
    if _PART_RE.sub("", text).strip():
        return None  # something besides number-unit pairs
    parts = [(float(n), u.lower()) for n, u in _PART_RE.findall(text)]
    units = [u for _, u in parts]
    if len(parts) < 2 or units != sorted(set(units), key="dhms".index):
        return None  # a single part is the plain form's; a unit twice or out of order is a typo
    return sum(n * _UNITS[u] for n, u in parts)


def _seconds(text: str) -> float:
    """Read '90s', '45m', '2h', '1.5d', '2h30m' or plain seconds into a finite positive number of seconds."""
    match = _BUDGET_RE.fullmatch(text)
    compound = _compound(text)
    if compound is None and (match is None or match.group(2).lower() not in _UNITS):
        raise BudgetError(f"cannot read budget {_shown(text)}: {ACCEPTED}")
    seconds = compound if compound is not None else float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(seconds):
        raise BudgetError(f"budget {_shown(text)} is too large to be finite: {ACCEPTED}")
    if seconds <= 0:
        raise BudgetError(f"budget {_shown(text)} must be more than zero: {ACCEPTED}")
    if seconds > MAX_BUDGET_S:
        raise BudgetError(f"budget {_shown(text)} is {seconds / 86400:.3g} days, more than the planner takes "
                          f"(at most {MAX_BUDGET_S / 86400:.0f}d); give a smaller budget or --epochs")
    return seconds


class Budget(str):
    """A parsed budget (immutable): the text as written, with its `seconds` or its target `epochs`.

    A Budget is its text (a str subclass): records, trial ids, plans and tables that held the label
    hold the value and write the same bytes; `seconds` and `epochs` are what the text means (the
    other is None). Make one with `Budget.parse`."""

    seconds: float | None  # wall-clock seconds; None for target epochs (known after the timing run)
    epochs: int | None  # target epochs ('25ep'); None for a wall-clock budget

    def __new__(cls, text: str, seconds: float | None, epochs: int | None) -> Budget:
        self = super().__new__(cls, text)
        object.__setattr__(self, "seconds", seconds)
        object.__setattr__(self, "epochs", epochs)
        return self

    @classmethod
    def parse(cls, text: str) -> Budget:
        """The one parser: a wall-clock or target-epochs budget, or a BudgetError listing the accepted forms
        (a Budget passes as it is: it was parsed already)."""
        if isinstance(text, Budget):
            return text
        if not isinstance(text, str):
            raise BudgetError(f"cannot read budget {_shown(str(text))}: {ACCEPTED}")
        target = _TARGET_RE.fullmatch(text)
        if target is None:
            return cls(text, _seconds(text), None)
        n = int(target.group(1))
        if not 1 <= n <= MAX_EPOCHS:
            raise BudgetError(f"budget {_shown(text)}: target epochs must be 1 to {MAX_EPOCHS}")
        return cls(text, None, n)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Budget | None:
        """The budget a record names (config.json, result.json or a plan), or None when it has none.

        Reads the fields records have always held: `budget_label`, else `budget` (a plan's label),
        else `budget_s` alone (seconds)."""
        label = record.get("budget_label") or record.get("budget")
        if isinstance(label, str):
            return cls.parse(label)
        seconds = record.get("budget_s")
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            return cls(f"{float(seconds)!r}s", float(seconds), None)
        return None

    def to_record(self) -> dict[str, Any]:
        """The record fields of this budget: budget_s (None for target epochs) and budget_label."""
        return {"budget_s": self.seconds, "budget_label": self.text}

    def wall_seconds(self) -> float:
        """The seconds of a wall-clock budget; target epochs are refused (their seconds come from a timing run)."""
        if self.seconds is None:
            raise BudgetError(f"budget {_shown(self.text)} is a target in epochs: its seconds are known only after "
                              f"the timing run")
        return self.seconds

    @property
    def order(self) -> float:
        """A number that orders budgets of one kind: seconds, else target epochs."""
        return float(self.seconds if self.seconds is not None else self.epochs)

    @property
    def text(self) -> str:
        """The budget as the user wrote it (records keep it as budget_label)."""
        return str.__str__(self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Budget is immutable; cannot set {name}")

    def __reduce__(self):
        return (Budget, (self.text, self.seconds, self.epochs))

    def __copy__(self) -> Budget:
        return self

    def __deepcopy__(self, memo: dict) -> Budget:
        return self


def budget_record(budget: Budget | None) -> dict[str, Any]:
    """`budget.to_record()`, or the same fields empty when there is no budget (a fixed number of epochs)."""
    return {"budget_s": None, "budget_label": None} if budget is None else budget.to_record()
