"""A small learnable stand-in for CIFAR-10, written in the standard layout (tests, demo, CI).

Each class gets a colour; images are that colour plus noise, so a network learns it in
a few steps. Never mistake it for the real data: `Splits.source` names the folder.

    python -m nascore.synthetic OUT_DIR [--train 600] [--test 200]
"""
from __future__ import annotations

import pickle
from pathlib import Path

import click
import numpy as np


def write_fake_cifar(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write `root`/cifar-10-batches-py with class-coloured noisy images; returns `root`."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
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
    return Path(root)


@click.command()
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--train", "n_train", type=click.IntRange(min=10), default=600, show_default=True)
@click.option("--test", "n_test", type=click.IntRange(min=10), default=200, show_default=True)
def main(out_dir: Path, n_train: int, n_test: int) -> None:
    """Write a synthetic CIFAR-10 stand-in to OUT_DIR."""
    write_fake_cifar(out_dir, n_train, n_test)
    click.echo(f"synthetic CIFAR-10 stand-in written to {out_dir}/cifar-10-batches-py")


if __name__ == "__main__":
    main()
