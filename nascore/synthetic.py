"""A small learnable stand-in for CIFAR-10, written in the standard layout (tests, demo, CI).

Each class gets a colour; images are that colour plus noise, so a network learns it in
a few steps. It is never mistaken for the real data: a marker names it `synthetic` (every
record and every command's first line say so), and the command line writes it to
OUT_DIR/synthetic-cifar10/, apart from where real CIFAR-10 is looked for.

    python -m nascore.synthetic OUT_DIR [--train 600] [--test 200]   # -> OUT_DIR/synthetic-cifar10
"""
from __future__ import annotations

import pickle
from pathlib import Path

import click
import numpy as np

from contract.names import SYNTHETIC_DATA
from contract.options import CONTEXT
from nascore.datafiles import FOLDER, SYNTHETIC_ROOT, DataError, data_source, write_marker


def write_fake_cifar(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write `root`/cifar-10-batches-py with class-coloured noisy images and its marker; returns `root`.

    Refuses a folder holding real CIFAR-10 (official or a copy): the stand-in never overwrites it."""
    present = data_source(Path(root))
    if present not in (None, SYNTHETIC_DATA):
        raise DataError(f"{Path(root) / FOLDER} holds real CIFAR-10 ({present}); the synthetic stand-in "
                        f"is not written over it")
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 255, (10, 3, 1, 1))

    def make(n: int) -> tuple[np.ndarray, list[int]]:
        y = rng.integers(0, 10, n)
        x = base[y] + rng.normal(0, 40, (n, 3, 32, 32))
        return np.clip(x, 0, 255).astype(np.uint8).reshape(n, -1), y.tolist()

    xs, ys = make(n_train)
    for b, chunk in enumerate(np.array_split(np.arange(n_train), 5)):
        with open(folder / f"data_batch_{b + 1}", "wb") as f:
            pickle.dump({b"data": xs[chunk], b"labels": [ys[i] for i in chunk]}, f)
    xt, yt = make(n_test)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": xt, b"labels": yt}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"class%d" % i for i in range(10)]}, f)
    write_marker(folder, SYNTHETIC_DATA)
    return Path(root)


@click.command(context_settings=CONTEXT)
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--train", "n_train", type=click.IntRange(min=10), default=600, show_default=True)
@click.option("--test", "n_test", type=click.IntRange(min=10), default=200, show_default=True)
def main(out_dir: Path, n_train: int, n_test: int) -> None:
    """Write a synthetic CIFAR-10 stand-in to OUT_DIR/synthetic-cifar10 (pass that as --data-dir)."""
    root = out_dir / SYNTHETIC_ROOT
    try:
        write_fake_cifar(root, n_train, n_test)
    except (DataError, OSError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"synthetic stand-in (not CIFAR-10) written to {root}/{FOLDER}; use --data-dir {root}")


if __name__ == "__main__":
    main()
