"""The click options every command line shares (searches, retraining, benchmarks, the experiment runner).

Defined once so the flag, its default, its help and its check are the same everywhere; torch-free,
so the runner (which may not load torch before it has checked its arguments) uses them too.
Whether a named device exists on this machine is checked later, by `nascore.runtime.resolve_device`.
"""
from __future__ import annotations

import re

import click

CONTEXT = {"help_option_names": ["-h", "--help"]}  # every group and command takes -h as well as --help
DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")  # names torch could know; existing here is checked later
DATA_DIR_HELP = "Folder holding cifar-10-batches-py/ (default: $NASIB_DATA, else ./data)."


def _device(ctx, param, value):
    """A device name torch could know, checked before torch loads (whether it exists here: later)."""
    if not DEVICE_RE.fullmatch(value):
        raise click.BadParameter(f"unknown device {value!r}; use auto, cpu, cuda or cuda:N")
    return value


def device_option(default: str = "auto"):
    """--device auto|cpu|cuda|cuda:N."""
    return click.option("--device", default=default, show_default=True, callback=_device,
                        help="auto, cpu, cuda or cuda:N.")


def data_dir_option():
    """--data-dir: where CIFAR-10 lives (None: $NASIB_DATA, else ./data)."""
    return click.option("--data-dir", default=None, help=DATA_DIR_HELP)


def download_option():
    """--download: let torchvision fetch missing data."""
    return click.option("--download", is_flag=True, help="Download CIFAR-10 with torchvision if missing.")


def deterministic_option(help_text: str = "Deterministic kernels (same seed, same numbers on CPU)."):
    """--deterministic/--fast, off by default."""
    return click.option("--deterministic/--fast", default=False, show_default=True, help=help_text)
