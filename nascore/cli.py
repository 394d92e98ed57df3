"""What every command-line entry point shares: common options, the first line, error reporting.

Every expected failure becomes one line on stderr naming the offending thing and a
non-zero exit (2 for bad usage, 1 for a failed run, 130 for Ctrl-C); tracebacks are
kept for real bugs. Nothing here imports torch: options are checked and the first line
(what runs, on which data, device and threads) is printed before torch loads (3-6 s).
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from contract.errors import Interrupted, OutOfMemory, RecordError
from contract.names import SYNTHETIC_DATA
from contract.options import data_dir_option, deterministic_option, device_option, download_option
from contract.threads import THREADS_HELP, default_threads, parse_threads
from nascore.config import ConfigError
from nascore.datafiles import FOLDER, DataConfig, DataError, data_source, resolve_root

USAGE_ERRORS = (ConfigError, ValueError)
RUN_ERRORS = (DataError, RecordError, OutOfMemory)
GPU_SCALES = ("quick", "paper")  # scales sized for a GPU: on a CPU, say so and point at --scale smoke
_THREADS = "nascore.threads"  # ctx.meta key: the --threads value, applied by begin()


def _threads(ctx, param, value, *, later: bool = False):
    """Check --threads as soon as it is read; apply it now, or (later) in begin() once torch loads."""
    try:
        parse_threads(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    ctx.meta[_THREADS] = value
    if not later:
        from nascore.runtime import apply_threads

        apply_threads(value)


def threads_option(f, later: bool = False):
    """--threads N|auto, checked on parsing (at most the cores; the count lands in every trial's provenance).

    later: the command calls begin(), which applies it after the first line (torch not loaded before)."""
    return click.option("--threads", default="auto", show_default=True, expose_value=False, help=THREADS_HELP,
                        callback=functools.partial(_threads, later=later))(f)


def late_threads_option(f):
    """threads_option for commands that call begin()."""
    return threads_option(f, later=True)


def seed_option(help_text: str = "Random seed (0 or more)."):
    """--seed: a non-negative integer, the same rule in every command."""
    return click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help=help_text)


def _tensorboard(ctx, param, value):
    """--tensorboard: refused at once, in one line, when the package is missing."""
    if value:
        from nascore.tensorboard import require

        try:
            require()
        except ValueError as e:
            raise click.BadParameter(str(e)) from None


def common_options(f):
    """Options shared by search and retraining commands."""
    opts = [
        click.option("--out", type=click.Path(path_type=Path), required=True, help="Trial folder to write."),
        seed_option(),
        device_option(),
        data_dir_option(),
        download_option(),
        deterministic_option(),
        click.option("--force", is_flag=True,
                     help="Start the trial over, finished or not (the old folder is moved aside)."),
        click.option("--train-size", type=click.IntRange(min=1), default=None,
                     help="Use only this many training images."),
        click.option("--valid-size", type=click.IntRange(min=1), default=None,
                     help="Held-out images taken from the end of the training set."),
        click.option("--test-size", type=click.IntRange(min=1), default=None, help="Use only this many test images."),
        click.option("--tensorboard", is_flag=True, callback=_tensorboard, expose_value=False,
                     help="Write each epoch's numbers as TensorBoard scalars to OUT/tb/ (needs tensorboard)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return late_threads_option(f)


def data_config(base: DataConfig, data_dir, download, train_size, valid_size, test_size) -> DataConfig:
    """The preset's data config with command-line overrides applied."""
    from dataclasses import replace

    return replace(base, data_dir=data_dir if data_dir is not None else base.data_dir, download=download,
                   train_size=train_size if train_size is not None else base.train_size,
                   valid_size=valid_size if valid_size is not None else base.valid_size,
                   test_size=test_size if test_size is not None else base.test_size)


def describe_data(data_dir: str | None, download: bool = False) -> str:
    """Which data a run will read, in a few words (synthetic data says so loudly)."""
    root = resolve_root(data_dir)
    try:
        source = data_source(root)
    except OSError as e:
        return f"unreadable at {root / FOLDER} ({e.strerror or e})"
    if source is None:
        return f"none at {root / FOLDER}" + (" (--download fetches it)" if download else "")
    if source == SYNTHETIC_DATA:
        return f"SYNTHETIC stand-in, not CIFAR-10 ({root})"
    return f"{source.split(' sha256:')[0]} ({root})"


def begin(command: str, fields: dict, *, device: str = "auto", scale: str | None = None,
          data_dir: str | None = None, download: bool = False, data: bool = True) -> int:
    """Print the first line (what runs, data, device, threads), then load torch and apply the threads."""
    ctx = click.get_current_context(silent=True)
    threads = parse_threads(ctx.meta.get(_THREADS, "auto") if ctx else "auto") or default_threads()
    parts = [f"{k} {v}" for k, v in fields.items() if v not in (None, "", {})]
    if data:
        parts.append(f"data {describe_data(data_dir, download)}")
    click.echo(f"{command}: " + ", ".join([*parts, f"device {device}", f"threads {threads}"]), err=True)
    from nascore.runtime import apply_threads  # torch loads here, after the line

    apply_threads(threads)
    if scale in GPU_SCALES:
        _cpu_note(command, scale, device)
    return threads


def _cpu_note(command: str, scale: str, device: str) -> None:
    """On a CPU, a GPU-sized scale gets a line with the time it takes and the way out."""
    import torch

    if device not in ("cpu", "auto") or (device == "auto" and torch.cuda.is_available()):
        return
    click.echo(f"note: {command} runs on the CPU, but --scale {scale} is sized for one GPU: one of its epochs "
               f"takes minutes to tens of minutes here (a NASIB superkernel quick epoch: about 1,550 s on a "
               f"2-core CPU), the whole run hours or days; --scale smoke runs in seconds to minutes on a CPU",
               err=True)


def _status(e: BaseException) -> tuple[int, str] | None:
    """Exit status and message of an expected error, None for a real bug."""
    torch = sys.modules.get("torch")
    if isinstance(e, Interrupted):
        return 130, str(e)
    if torch is not None and isinstance(e, torch.cuda.OutOfMemoryError):
        return 1, getattr(e, "hint", None) or str(e)
    if isinstance(e, RUN_ERRORS):
        return 1, str(e)
    if isinstance(e, USAGE_ERRORS):
        return 2, str(e)
    return None


def reports_errors(fn):
    """Turn the kit's expected errors into one-line messages and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - sorted by _status; anything else is re-raised
            status = _status(e)
            if status is None:
                raise
            click.echo(f"Error: {status[1]}", err=True)
            sys.exit(status[0])

    return wrapper
