"""Where records came from, said in captions, tables and scorecard notes: scale, device, data, code."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from analysis.records import Trial
from contract.names import MANIFEST, data_copy


def data_label(trial: Trial) -> str:
    """Which CIFAR-10 a trial read: recorded in provenance, else checked on the folder if it is still here."""
    prov = trial.config.get("provenance", {}) or {}
    recorded = prov.get("data_copy")
    if recorded:
        return str(recorded)
    source = prov.get("data_source")
    checked = data_copy(source)
    if checked:
        return checked
    name = Path(source).parent.name if source and Path(source).name == "cifar-10-batches-py" else source
    return f"CIFAR-10 from {name or '?'}/ (official or a copy: not recorded)"


def code_flags(trials: Iterable[Trial]) -> list[str]:
    """Warnings when trials were run by several commits or from a dirty tree (empty when clean and one commit)."""
    commits, dirty, unknown = set(), [], 0
    for trial in trials:
        prov = trial.config.get("provenance", {}) or {}
        commit = prov.get("git_commit")
        if commit:
            commits.add(str(commit)[:10])
        else:
            unknown += 1
        if prov.get("git_dirty"):
            dirty.append(trial.key)
    flags = []
    if len(commits) > 1:
        flags.append(f"mixed commits ({len(commits)}: {', '.join(sorted(commits))})")
    if dirty:
        flags.append(f"dirty tree ({len(dirty)} trial(s))")
    if unknown:
        flags.append(f"commit unknown ({unknown} trial(s))")
    return flags


def scale_label(trial: Trial) -> str:
    """The scale that ran a trial: its manifest's (a `medium` trial records the smoke scale it overrides)."""
    manifest = trial.path.parent / MANIFEST
    try:
        data = json.loads(manifest.read_text()) if manifest.is_file() else {}
    except (OSError, ValueError):
        data = {}
    base = str(trial.config.get("scale", "?"))
    data = data if isinstance(data, dict) else {}
    scale = data.get("scale")
    rows = data.get("trials") if isinstance(data.get("trials"), list) else []
    listed = any(isinstance(r, dict) and r.get("trial_id") == trial.trial_id for r in rows)
    if not (isinstance(scale, str) and listed) or scale == base:
        return f"scale {base}"
    return f"scale {scale} ({base}'s settings with the scale's overrides)"


def provenance_note(trials: Iterable[Trial]) -> str:
    """Short 'scale / device / data / code' description gathered from records, for captions and tables."""
    trials = list(trials)
    presets, devices, data = set(), set(), set()
    for trial in trials:
        prov = trial.config.get("provenance", {}) or {}
        presets.add(scale_label(trial))
        devices.add(str(prov.get("device_name") or prov.get("device") or trial.result.get("device", "?")))
        data.add(data_label(trial))
    flags = code_flags(trials)
    return (f"{', '.join(sorted(presets))}; device: {', '.join(sorted(devices))}; "
            f"data: {', '.join(sorted(data))}" + (f"; {'; '.join(flags)}" if flags else ""))
