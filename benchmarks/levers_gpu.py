"""`python -m benchmarks.levers_gpu --out DIR`: the ENAS epoch before and after the speed levers, one run.

The same whole-epoch benchmark (`benchmarks.enas_bench`) for both spaces, first with every lever
off ($NASIB_ENAS_SPEED=batched_rewards=off,flat_update=off: the sequential rewards and the
per-tensor update), then with the device's defaults (auto: both on for CUDA), on one device in
one process, so the two columns share the machine, the cuDNN cache and the data. About 2-3
device minutes at the paper scale on an H200. Writes DIR/levers-<device>-<scale>.json.
"""
from __future__ import annotations

import os
from pathlib import Path

import click

from benchmarks.enas_bench import run
from contract.options import CONTEXT
from enas_ext.batched import SPEED_ENV
from nascore.records import atomic_write_json

SETTINGS = {"before": "batched_rewards=off,flat_update=off", "after": ""}  # "": the device's defaults


def before_after(device: str, scale: str) -> dict:
    """ENAS epoch figures per setting and space; the environment is restored afterwards."""
    saved = os.environ.get(SPEED_ENV)
    out: dict = {}
    try:
        for label, setting in SETTINGS.items():
            os.environ[SPEED_ENV] = setting
            out[label] = {space: run(device, scale, space=space) for space in ("original", "extended")}
    finally:
        if saved is None:
            os.environ.pop(SPEED_ENV, None)
        else:
            os.environ[SPEED_ENV] = saved
    out["speedup"] = {s: out["before"][s]["measured_epoch_s"] / out["after"][s]["measured_epoch_s"]
                      for s in out["after"]}
    return out


@click.command(context_settings=CONTEXT)
@click.option("--device", default="cuda", show_default=True)
@click.option("--scale", "--preset", "scale", default="paper", show_default=True, help="Scale to time at.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the JSON.")
def main(device: str, scale: str, out: Path) -> None:
    """Time the ENAS epoch with the levers off, then on; write both."""
    figs = before_after(device, scale)
    for space, x in figs["speedup"].items():
        b, a = figs["before"][space], figs["after"][space]
        click.echo(f"ENAS {space:9s}: epoch {b['measured_epoch_s']:.1f} s -> {a['measured_epoch_s']:.1f} s "
                   f"({x:.2f}x); child step {b['ms_per_child_step']:.1f} -> {a['ms_per_child_step']:.1f} ms, "
                   f"update {b['ms_per_controller_update']:.0f} -> {a['ms_per_controller_update']:.0f} ms")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"levers-{device}-{scale}.json", figs)


if __name__ == "__main__":
    main()
