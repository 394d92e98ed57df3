"""What every command-line entry point shares: common options, trial opening, error reporting.

Every expected failure becomes one line on stderr naming the offending thing and a
non-zero exit (2 for bad usage, 1 for a failed run, 130 for Ctrl-C); tracebacks are
kept for real bugs.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
import torch

from nascore.config import ConfigError
from nascore.data import DataConfig, DataError
from nascore.loop import Interrupted
from nascore.records import RecordError
from nascore.runtime import THREADS_HELP, apply_threads

USAGE_ERRORS = (ConfigError, ValueError)
RUN_ERRORS = (DataError, RecordError)


def _threads(ctx, param, value):
    """Apply --threads as soon as it is read, so everything the command runs uses it."""
    try:
        return apply_threads(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def threads_option(f):
    """--threads N|auto, applied on parsing (the count lands in every trial's provenance)."""
    return click.option("--threads", default="auto", show_default=True, callback=_threads, expose_value=False,
                        help=THREADS_HELP)(f)


def common_options(f):
    """Options shared by search and retraining commands."""
    opts = [
        click.option("--out", type=click.Path(path_type=Path), required=True, help="Trial folder to write."),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--data-dir", default=None, help="Folder holding cifar-10-batches-py/ "
                     "(default: $NASIB_DATA, else ./data)."),
        click.option("--download", is_flag=True, help="Download CIFAR-10 with torchvision if missing."),
        click.option("--deterministic/--fast", default=False, show_default=True,
                     help="Deterministic kernels (same seed, same numbers on CPU)."),
        click.option("--force", is_flag=True,
                     help="Start the trial over, finished or not (the old folder is moved aside)."),
        click.option("--train-size", type=click.IntRange(min=1), default=None,
                     help="Use only this many training images."),
        click.option("--valid-size", type=click.IntRange(min=1), default=None,
                     help="Held-out images taken from the end of the training set."),
        click.option("--test-size", type=click.IntRange(min=1), default=None, help="Use only this many test images."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return threads_option(f)


def data_config(base: DataConfig, data_dir, download, train_size, valid_size, test_size) -> DataConfig:
    """The preset's data config with command-line overrides applied."""
    from dataclasses import replace

    return replace(base, data_dir=data_dir if data_dir is not None else base.data_dir, download=download,
                   train_size=train_size if train_size is not None else base.train_size,
                   valid_size=valid_size if valid_size is not None else base.valid_size,
                   test_size=test_size if test_size is not None else base.test_size)


def reports_errors(fn):
    """Turn the kit's expected errors into one-line messages and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Interrupted as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(130)
        except torch.cuda.OutOfMemoryError as e:
            click.echo(f"Error: {getattr(e, 'hint', None) or e}", err=True)
            sys.exit(1)
        except RUN_ERRORS as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(1)
        except USAGE_ERRORS as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(2)

    return wrapper
