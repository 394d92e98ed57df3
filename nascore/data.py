"""CIFAR-10 from its standard python layout, split as ENAS does, served from the device.

The whole split lives on the training device as uint8; cropping, flipping, cutout and
normalisation run there in batch, so no DataLoader workers sit in the hot loop.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
FOLDER = "cifar-10-batches-py"


class DataError(RuntimeError):
    """Missing, unreadable or malformed data files."""


@dataclass(frozen=True)
class DataConfig:
    """Where the data lives and which part of it a run uses."""

    data_dir: str | None = None  # root holding cifar-10-batches-py/; None: $NASIB_DATA, else ./data
    download: bool = False  # fetch with torchvision when missing (needs internet)
    valid_size: int = 5000  # the last N training images are held out for validation (ENAS: 5000)
    train_size: int | None = None  # use only the first N of the remaining training images (None: all)
    test_size: int | None = None  # use only the first N test images (None: all 10,000)


@dataclass
class Split:
    """Images (uint8, N x 3 x 32 x 32) and labels (int64) of one split."""

    x: torch.Tensor  # uint8 images, channels first
    y: torch.Tensor  # int64 labels 0..9

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        """The same split on another device."""
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Splits:
    """Train, validation and test splits plus the train-split normalisation."""

    train: Split  # searched-weight training images
    valid: Split  # held-out images (controller reward / alpha steps / reported valid accuracy)
    test: Split  # the official test set
    mean: tuple[float, float, float]  # per-channel mean of the train split, 0-255 scale
    std: tuple[float, float, float]  # per-channel std of the train split, 0-255 scale
    source: str  # where the images came from (for provenance)


def resolve_root(data_dir: str | None) -> Path:
    """The data root: the argument, else $NASIB_DATA, else ./data."""
    return Path(data_dir or os.environ.get("NASIB_DATA") or "data")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch file, validated; errors name the file."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        data = np.asarray(d[b"data"] if b"data" in d else d["data"])
        labels = np.asarray(d[b"labels"] if b"labels" in d else d["labels"], dtype=np.int64)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(f"{path}: not a readable CIFAR-10 batch ({type(e).__name__}: {e}); "
                        f"re-create it or fetch again with --download") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: expected uint8 data of shape [N, 3072], got {data.dtype} {data.shape}")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels outside 0..9 (min {labels.min()}, max {labels.max()})")
    return data.reshape(-1, 3, 32, 32), labels


def _download(root: Path) -> None:
    """Fetch the official archive with torchvision (only when the user allows it)."""
    import torchvision

    torchvision.datasets.CIFAR10(str(root), train=True, download=True)


def load_raw(root: Path, download: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test arrays from `root`/cifar-10-batches-py, validated."""
    folder = root / FOLDER
    missing = [f for f in TRAIN_FILES + TEST_FILES if not (folder / f).is_file()]
    if missing and download:
        _download(root)
        missing = [f for f in TRAIN_FILES + TEST_FILES if not (folder / f).is_file()]
    if missing:
        raise DataError(
            f"CIFAR-10 not found at {folder} (missing {', '.join(missing)}); pass --data-dir DIR or set "
            f"NASIB_DATA to the folder holding {FOLDER}/, or add --download to fetch it")
    tr = [_read_batch(folder / f) for f in TRAIN_FILES]
    te = _read_batch(folder / TEST_FILES[0])
    return (np.concatenate([t[0] for t in tr]), np.concatenate([t[1] for t in tr]), te[0], te[1])


def load_splits(cfg: DataConfig) -> Splits:
    """Load CIFAR-10 and split it: train = first N-valid_size, valid = last valid_size, test."""
    root = resolve_root(cfg.data_dir)
    xtr, ytr, xte, yte = load_raw(root, cfg.download)
    if not 0 < cfg.valid_size < len(ytr):
        raise DataError(f"valid_size must be in 1..{len(ytr) - 1}, got {cfg.valid_size}")
    cut = len(ytr) - cfg.valid_size
    ntr = cut if cfg.train_size is None else min(cfg.train_size, cut)
    nte = len(yte) if cfg.test_size is None else min(cfg.test_size, len(yte))
    if ntr < 1 or nte < 1:
        raise DataError(f"train_size and test_size must be positive, got {cfg.train_size}, {cfg.test_size}")
    train = Split(torch.from_numpy(xtr[:ntr].copy()), torch.from_numpy(ytr[:ntr].copy()))
    valid = Split(torch.from_numpy(xtr[cut:].copy()), torch.from_numpy(ytr[cut:].copy()))
    test = Split(torch.from_numpy(xte[:nte].copy()), torch.from_numpy(yte[:nte].copy()))
    flat = train.x.float().permute(1, 0, 2, 3).reshape(3, -1)
    mean = tuple(float(v) for v in flat.mean(1))
    std = tuple(float(v) for v in flat.std(1))
    return Splits(train, valid, test, mean, std, str(root.resolve() / FOLDER))


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation, applied on the device."""

    pad: int = 4  # padding (of normalised images: the mean colour) before the random crop (0 disables)
    flip: bool = True  # random horizontal flip
    cutout: int = 0  # side of the zeroed square (16 for retraining; 0 disables)


class DeviceLoader:
    """Batches of one split, kept on the device, shuffled and augmented there."""

    def __init__(self, split: Split, batch_size: int, device: torch.device | str, mean, std,
                 augment: AugmentConfig | None = None, shuffle: bool = True, drop_last: bool = True,
                 fill_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.split = split.to(device)
        self.device = torch.device(device)
        self.batch_size = min(batch_size, len(split)) if drop_last else batch_size
        # fill_last: keep the final partial batch but top it up from a fresh shuffle, so a pass
        # has ceil(N / batch) full batches (the ENAS release's endless stream does this).
        self.augment, self.shuffle, self.drop_last, self.fill_last = augment, shuffle, drop_last, fill_last
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last and not self.fill_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.split)
        order = torch.randperm(n, device=self.device) if self.shuffle else torch.arange(n, device=self.device)
        if self.fill_last and n % self.batch_size:
            top_up = torch.randperm(n, device=self.device)[:self.batch_size - n % self.batch_size]
            order = torch.cat([order, top_up])
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.prepare(self.split.x[idx]), self.split.y[idx]

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> augmented, normalised float batch."""
        a = self.augment
        # Normalise first, so the crop's zero padding is the mean colour, as in the ENAS release.
        x = (x.float() - self.mean) / self.std
        if a is not None and a.pad > 0:
            x = random_crop(x, a.pad)
        if a is not None and a.flip:
            flip = torch.rand(len(x), device=x.device) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        if a is not None and a.cutout > 0:
            x = cutout(x, a.cutout)
        return x


def forever(loader: DeviceLoader):
    """Batches of `loader` without end: a new shuffled pass only when the previous one is used up."""
    while True:
        yield from loader


def random_crop(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero-pad by `pad` and take one random crop of the original size per image."""
    n, _, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return xp[batch, chan, rows, cols]


def cutout(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero one `size` x `size` square per image, centred anywhere (it may hang off the edge)."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1), device=x.device)
    cx = torch.randint(0, w, (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = ((ys - cy).abs() * 2 < size) & ((xs - cx).abs() * 2 < size)
    return x * (~hole).unsqueeze(1).to(x.dtype)
