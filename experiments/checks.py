"""What `experiments run` checks before it writes anything: launcher, device, folders of other settings.

Every problem here is found once, for the whole plan, before a manifest or a trial folder is
touched; a dry run shows the same conflicts in its table.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from contract.threads import parse_threads
from experiments import launchers
from experiments.runner import TrialPlan

KNOWN_LAUNCHERS = ("local", "ray")  # every launcher the kit knows by name, installed or not
NEEDS = {"ray": "ray"}  # launcher -> the package it imports on this machine
CONFLICT = "conflict"  # dry-run state of a folder recorded at another scale or budget


def check_launcher(name: str) -> None:
    """Refuse an unknown launcher, or one whose package does not import here, in one line."""
    valid = sorted(set(KNOWN_LAUNCHERS) | set(launchers.LAUNCHERS))
    if name not in valid:
        raise ValueError(f"unknown launcher {name!r}; valid: {', '.join(valid)}")
    module = NEEDS.get(name)
    if module:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ValueError(f"--launcher {name} needs the {module!r} package, which does not import here: "
                             f"pip install {module}, or use --launcher local") from None


def check_results(results: Path) -> None:
    """Refuse a results root that is a file (or sits under one) before anything is written."""
    for folder in (Path(results), *Path(results).parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"--results {results}: {folder} is a file, not a folder")
            return


def check_threads(value: str) -> None:
    """Refuse a thread count that is neither 1..cores nor auto, by the rule every command uses (torch-free)."""
    parse_threads(value)


def apply_threads(value: str) -> int:
    """Set this process's torch threads by the kit's rule (nascore.runtime), returning the count."""
    from nascore.runtime import apply_threads as apply

    return apply(value)


def check_device(device: str) -> None:
    """Refuse a device this machine lacks (e.g. cuda without CUDA) once, not trial by trial."""
    from nascore.runtime import resolve_device  # torch: only for a real local run

    resolve_device(device)


def conflicts(plans: list[TrialPlan], force: bool) -> dict[str, str]:
    """Planned folders that hold a trial of another scale or budget: trial key -> why (force re-runs finished)."""
    found = {}
    for plan in plans:
        why = launchers._mismatch(plan)
        if why and not (force and launchers.trial_state(plan.folder) == "finished"):
            found[plan.key] = why
    return found


def conflict_error(found: dict[str, str]) -> str:
    """One line for a run refused because of conflicting folders."""
    first = next(iter(found.values()))
    return (f"{len(found)} planned folder(s) hold trials recorded with other settings; nothing was run or "
            f"written. First: {first}")
