"""CIFAR-10 files on disk, torch-free: where they are, which data they hold, reading and fetching them.

Which data a folder holds is named exactly, in every record and in every command's first line:
`cifar10-official` (the official test_batch checksum), `cifar10-jpeg-q75 sha256:<pack digest>`
(decoded from a JPEG pack, `nascore.jpeg_pack`), `synthetic` (the stand-in of
`nascore.synthetic`), or `cifar10-copy md5:<test_batch digest>` for any other copy. The JPEG and
synthetic writers leave a marker file saying so; the synthetic stand-in never goes where real
CIFAR-10 is looked for (`<data>/synthetic-cifar10/`, see `nascore/fetch.py`).
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.names import OFFICIAL_TEST_MD5, SYNTHETIC_DATA

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
FOLDER = "cifar-10-batches-py"
MARKER = "DATA_SOURCE"  # one line in FOLDER naming what a writer put there (JPEG copy, synthetic)
SYNTHETIC_ROOT = "synthetic-cifar10"  # <data>/synthetic-cifar10/: the stand-in's own root, never <data> itself
OFFICIAL = "cifar10-official"
# Copies written before the marker existed, known by their test_batch md5: the workplace pack
# cifar10_jpeg_q75.npz decoded by nascore.jpeg_pack (whole, fixed shuffle: the same bytes everywhere).
KNOWN_COPIES = {"79299f862e1705972e824f124a010944":
                "cifar10-jpeg-q75 sha256:90d42d6d1b832af411d409250b691c1e95a0a4127234a6d5499c6a85b6a666d1"}


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


def resolve_root(data_dir: str | None) -> Path:
    """The data root: the argument, else $NASIB_DATA, else ./data."""
    return Path(data_dir or os.environ.get("NASIB_DATA") or "data")


def missing_files(root: Path) -> list[str]:
    """The standard-layout files absent from `root`/cifar-10-batches-py."""
    return [f for f in TRAIN_FILES + TEST_FILES if not (root / FOLDER / f).is_file()]


def write_marker(folder: Path, source: str) -> None:
    """Record in `folder` which data a writer put there (read back by data_source)."""
    (Path(folder) / MARKER).write_text(source + "\n")


def data_source(root: Path) -> str | None:
    """The exact name of the data under `root`/cifar-10-batches-py (None: no test_batch there)."""
    folder = Path(root) / FOLDER
    test = folder / TEST_FILES[0]
    if not test.is_file():
        return None
    if (folder / MARKER).is_file():
        return (folder / MARKER).read_text().strip() or SYNTHETIC_DATA
    digest = hashlib.md5(test.read_bytes()).hexdigest()  # noqa: S324 (a checksum, not security)
    if digest == OFFICIAL_TEST_MD5:
        return OFFICIAL
    if digest in KNOWN_COPIES:
        return KNOWN_COPIES[digest]
    if _legacy_synthetic(folder):
        return SYNTHETIC_DATA
    return f"cifar10-copy md5:{digest}"


def _legacy_synthetic(folder: Path) -> bool:
    """A stand-in written before markers existed: its batches.meta names the classes class0..class9."""
    try:
        meta = pickle.loads((folder / "batches.meta").read_bytes())
    except Exception:  # noqa: BLE001 - no readable meta: not recognisably synthetic
        return False
    names = meta.get(b"label_names") or meta.get("label_names") or []
    return [n.decode() if isinstance(n, bytes) else n for n in names] == [f"class{i}" for i in range(10)]


def is_real(source: str | None) -> bool:
    """True for CIFAR-10 (official or a copy), False for synthetic data or none."""
    return bool(source) and source != SYNTHETIC_DATA


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
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


def download(root: Path) -> None:
    """Fetch the official archive with torchvision; no connection is one DataError line, never a traceback."""
    import torchvision

    try:
        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    except Exception as e:  # noqa: BLE001 - URLError, timeouts, a bad archive: all mean "no download here"
        raise DataError(f"cannot download CIFAR-10 into {root} ({type(e).__name__}: {str(e)[:120]}); "
                        f"without internet: make data JPEG_PACK=PACK.npz (docs/data.md), or make demo for "
                        f"the synthetic stand-in") from None


def load_raw(root: Path, download_ok: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test arrays from `root`/cifar-10-batches-py, validated."""
    folder = root / FOLDER
    missing = missing_files(root)
    if missing and download_ok:
        download(root)
        missing = missing_files(root)
    if missing:
        raise DataError(
            f"CIFAR-10 not found at {folder} (missing {', '.join(missing)}); pass --data-dir DIR or set "
            f"NASIB_DATA to the folder holding {FOLDER}/, or add --download to fetch it")
    tr = [read_batch(folder / f) for f in TRAIN_FILES]
    te = read_batch(folder / TEST_FILES[0])
    return (np.concatenate([t[0] for t in tr]), np.concatenate([t[1] for t in tr]), te[0], te[1])
