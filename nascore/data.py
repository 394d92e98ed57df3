"""CIFAR-10 from its standard python layout, split as ENAS does, served from the device.

The whole split lives on the training device as uint8; cropping, flipping, cutout and
normalisation run there in batch, so no DataLoader workers sit in the hot loop.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch

from contract.names import SYNTHETIC_DATA

# The torch-free part (configs, files, which data a folder holds) lives in nascore/datafiles.py, so
# the command line can name the data before torch loads; its names stay importable from here.
from nascore.datafiles import (  # noqa: F401 (re-exported)
    FOLDER,
    TEST_FILES,
    TRAIN_FILES,
    DataConfig,
    DataError,
    data_source,
    load_raw,
    resolve_root,
)


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
    source: str  # which data: cifar10-official, cifar10-jpeg-q75 sha256:..., synthetic (datafiles.data_source)


def load_splits(cfg: DataConfig) -> Splits:
    """Load CIFAR-10 and split it: train = first N-valid_size, valid = last valid_size, test."""
    root, t0 = resolve_root(cfg.data_dir), time.perf_counter()
    print(f"loading data from {root / FOLDER} ...", file=sys.stderr, flush=True)
    xtr, ytr, xte, yte = load_raw(root, cfg.download)
    source = data_source(root) or "?"
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
    warn = " (synthetic stand-in, not CIFAR-10)" if source == SYNTHETIC_DATA else ""
    print(f"data: {source}{warn}: {ntr} train, {len(valid)} held-out, {nte} test images "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    return Splits(train, valid, test, mean, std, source)


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
