"""`python -m benchmarks.gate BENCH_DIR`: hold the benchmark figures against the speed goals.

    python -m benchmarks.gate results/ci-gpu/bench --device cuda --scale paper --enas-extended-epoch-s 12

Reads the JSONs `python -m benchmarks` wrote (enas-, nasib-, checkpoint- and budget-fidelity-),
prints one row per goal (measured, limit, pass/FAIL) plus rows that are only reported, writes
them to BENCH_DIR/gate.json and exits 1 when a goal is missed or its figures are missing. The
defaults are the goals on one H100/H200: ENAS epoch at most 8 s (original) and 10 s (extended),
NASIB superkernel epoch at most 8 s, a checkpoint costing the loop at most 3% of the NASIB epoch
goal. Every limit is an option.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from contract.options import CONTEXT
from nascore.records import atomic_write_json


def _figures(folder: Path, name: str) -> dict | list | None:
    """The `figures` of one benchmark JSON, or None when it is missing or unreadable."""
    try:
        return json.loads((folder / f"{name}.json").read_text())["figures"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _row(goal: str, value: float | None, limit: float | None, unit: str = "s") -> dict:
    """One gate row; limit None: reported only. A missing value fails."""
    ok = value is not None and (limit is None or value <= limit)
    return {"goal": goal, "value": value, "limit": limit, "unit": unit,
            "status": "report" if limit is None and value is not None else ("pass" if ok else "FAIL")}


def _epoch_rows(folder: Path, tag: str, enas_s: dict[str, float], nasib_s: float) -> list[dict]:
    """ENAS epoch per space and NASIB superkernel epoch against their limits (narrow reported)."""
    enas, nasib = _figures(folder, f"enas-{tag}") or {}, _figures(folder, f"nasib-{tag}") or {}
    rows = [_row(f"ENAS {space} epoch", _epoch(enas.get(space, {})), enas_s[space])
            for space in ("original", "extended")]
    spaces = nasib.get("spaces", {}) if isinstance(nasib, dict) else {}
    rows.append(_row("NASIB superkernel epoch", _epoch(spaces.get("superkernel", {})), nasib_s))
    rows.append(_row("NASIB narrow epoch", _epoch(spaces.get("narrow", {})), None))
    return rows


def _epoch(figs: dict) -> float | None:
    """An epoch's seconds: measured whole when the benchmark did, else its projection."""
    return figs.get("measured_epoch_s", figs.get("projected_epoch_s"))


def _checkpoint_rows(folder: Path, nasib_s: float, share: float) -> list[dict]:
    """The paper-scale superkernel checkpoint: what the loop waits (gated), the whole write (reported)."""
    figs = _figures(folder, "checkpoint-paper") or {}
    sk = figs.get("searchers", {}).get("nasib-superkernel", {}) if isinstance(figs, dict) else {}
    loop_s = sk.get("loop_s")
    return [_row(f"checkpoint share of the {nasib_s:g} s epoch goal", None if loop_s is None else loop_s / nasib_s,
                 share, unit="fraction"),
            _row("checkpoint background write (must fit in an epoch)", sk.get("write_s"), nasib_s),
            _row("checkpoint size", sk.get("checkpoint_mb"), None, unit="MB")]


def _fidelity_rows(folder: Path, device: str) -> list[dict]:
    """Budget use of each fidelity run (reported)."""
    rows = []
    for path in sorted(folder.glob(f"budget-fidelity-{device}-*.json")):
        for r in _figures(folder, path.stem) or []:
            rows.append(_row(f"budget {r['budget_s']:g}s used ({r['epochs']} epochs, {r['status']})",
                             r.get("used_ratio"), None, unit="fraction"))
    return rows


def format_rows(rows: list[dict]) -> str:
    """Plain-text table of gate rows."""
    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    width = max(len(r["goal"]) for r in rows)
    return "\n".join(f"{r['goal']:<{width}}  {num(r['value']):>9}  <= {num(r['limit']):>7} {r['unit']:<8}  "
                     f"{r['status']}" for r in rows)


@click.command(context_settings=CONTEXT)
@click.argument("bench_dir", type=click.Path(path_type=Path))
@click.option("--device", default="cuda", show_default=True, help="Device kind in the file names (cuda, cpu).")
@click.option("--scale", "--preset", "scale", default="paper", show_default=True, help="Scale in the file names.")
@click.option("--enas-original-epoch-s", type=float, default=8.0, show_default=True,
              help="ENAS epoch limit, original (6-op) space.")
@click.option("--enas-extended-epoch-s", type=float, default=10.0, show_default=True,
              help="ENAS epoch limit, extended (18-op) space.")
@click.option("--enas-epoch-s", type=float, default=None, help="One ENAS epoch limit for both spaces (overrides both).")
@click.option("--nasib-epoch-s", type=float, default=8.0, show_default=True, help="NASIB superkernel epoch limit.")
@click.option("--checkpoint-share", type=float, default=0.03, show_default=True,
              help="Largest share of the NASIB epoch limit the loop may wait for a paper-scale checkpoint.")
def main(bench_dir: Path, device: str, scale: str, enas_original_epoch_s: float, enas_extended_epoch_s: float,
         enas_epoch_s: float | None, nasib_epoch_s: float, checkpoint_share: float) -> None:
    """Check the benchmark figures in BENCH_DIR against the goals; exit 1 when one is missed."""
    enas = {"original": enas_original_epoch_s, "extended": enas_extended_epoch_s}
    if enas_epoch_s is not None:
        enas = dict.fromkeys(enas, enas_epoch_s)
    rows = (_epoch_rows(bench_dir, f"{device}-{scale}", enas, nasib_epoch_s)
            + _checkpoint_rows(bench_dir, nasib_epoch_s, checkpoint_share) + _fidelity_rows(bench_dir, device))
    click.echo(format_rows(rows))
    atomic_write_json(bench_dir / "gate.json", {"device": device, "scale": scale, "rows": rows})
    failed = [r["goal"] for r in rows if r["status"] == "FAIL"]
    if failed:
        click.echo(f"Error: {len(failed)} goal(s) missed or unmeasured: {'; '.join(failed)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
