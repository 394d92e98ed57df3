"""CIFAR-10 from a JPEG pack: write the standard `cifar-10-batches-py/` layout without internet.

A JPEG pack is one `.npz` holding every CIFAR-10 image as a JPEG file (`{train,test}_jpeg`
concatenated bytes, `{train,test}_offsets` with N+1 boundaries, `{train,test}_labels`,
`classes`). Decoding it gives the same layout the official download has (data uint8
[N, 3072] in CHW order, labels), which `nascore.data` reads. Pixels went through JPEG, so
accuracies run a few points below the lossless set (docs/data.md).

    python -m nascore.jpeg_pack PACK.npz OUT_DIR [--limit N]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from nascore.datafiles import FOLDER, data_source, write_marker

TRAIN_FILES = tuple(f"data_batch_{b}" for b in range(1, 6))


def pack_name(pack: Path, limit: int | None = None) -> str:
    """The exact data name of a copy decoded from `pack`: cifar10-jpeg-q75 sha256:<digest> [limit N].

    The quality comes from the pack's file name (`..._q75.npz`); the digest names the pack itself."""
    digest = hashlib.sha256(Path(pack).read_bytes()).hexdigest()
    quality = re.search(r"q(\d+)", Path(pack).stem)
    kind = f"cifar10-jpeg-q{quality.group(1)}" if quality else "cifar10-jpeg"
    return f"{kind} sha256:{digest}" + (f" limit {limit}" if limit is not None else "")


def decode(blob: np.ndarray, offsets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The images at `idx` as uint8 rows of 3072 values (CHW)."""
    out = np.empty((len(idx), 3, 32, 32), dtype=np.uint8)
    for k, i in enumerate(idx):
        img = Image.open(io.BytesIO(blob[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB")
        out[k] = np.asarray(img).transpose(2, 0, 1)
    return out.reshape(len(idx), -1)


def order(labels: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """A shuffled index of the split; class-balanced when `limit` keeps fewer images."""
    if limit is None or limit >= len(labels):
        return rng.permutation(len(labels))
    per = limit // 10
    idx = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per] for c in range(10)])
    return rng.permutation(idx)


def write_layout(pack: Path, out_dir: Path, limit: int | None = None) -> Path:
    """Decode `pack` into OUT_DIR/cifar-10-batches-py/ (rows shuffled with a fixed seed); returns that folder."""
    z = np.load(pack)
    rng = np.random.default_rng(0)  # a fixed shuffle: every machine writes the same files
    root = Path(out_dir) / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    for split, names in (("train", TRAIN_FILES), ("test", ("test_batch",))):
        labels = z[f"{split}_labels"]
        idx = order(labels, limit, rng)
        data = decode(z[f"{split}_jpeg"], z[f"{split}_offsets"], idx)
        for name, chunk in zip(names, np.array_split(np.arange(len(idx)), len(names)), strict=True):
            batch = {b"batch_label": name.encode(), b"labels": labels[idx][chunk].tolist(), b"data": data[chunk],
                     b"filenames": [b"%d.png" % i for i in idx[chunk]]}
            (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [c.encode() for c in z["classes"].tolist()], b"num_cases_per_batch": 10000,
            b"num_vis": 3072}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    write_marker(root, pack_name(pack, limit))
    return root


def replace_layout(pack: Path, out_dir: Path, limit: int | None = None) -> str:
    """Decode `pack` beside OUT_DIR/cifar-10-batches-py, then swap it in whole; returns the data name.

    Whatever was there (a synthetic stand-in, a half-written copy) is replaced only once the new
    copy is complete, so a failed decode leaves the old folder as it was."""
    if not Path(pack).is_file():
        raise FileNotFoundError(f"no JPEG pack at {pack}")
    out_dir = Path(out_dir)
    staging = out_dir / f".{FOLDER}.tmp{os.getpid()}"
    try:
        folder = write_layout(pack, staging, limit)
        if (out_dir / FOLDER).exists():
            shutil.rmtree(out_dir / FOLDER)
        os.replace(folder, out_dir / FOLDER)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    name = data_source(out_dir)
    print(f"decoded {pack} into {out_dir / FOLDER}: {name}", file=sys.stderr)
    return name


def main() -> None:
    """Command line: PACK OUT_DIR [--limit N]."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pack", type=Path, help="the .npz JPEG pack")
    ap.add_argument("out_dir", type=Path, help="writes OUT_DIR/cifar-10-batches-py/")
    ap.add_argument("--limit", type=int, default=None, help="images per split (class-balanced)")
    args = ap.parse_args()
    if not args.pack.is_file():
        raise SystemExit(f"Error: no JPEG pack at {args.pack}")
    replace_layout(args.pack, args.out_dir, args.limit)
    print(args.out_dir / FOLDER)


if __name__ == "__main__":
    main()
