"""`make data` and `make demo`'s data: CIFAR-10 into DATA, or the demo's synthetic stand-in beside it.

    python -m nascore.fetch get DATA [--jpeg-pack PACK]   # make data: present, decoded, or downloaded
    python -m nascore.fetch demo-root DATA                 # make demo: DATA, else DATA/synthetic-cifar10
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from contract.names import SYNTHETIC_DATA
from nascore.datafiles import FOLDER, OFFICIAL, SYNTHETIC_ROOT, DataError, data_source, download, is_real, write_marker
from nascore.jpeg_pack import replace_layout
from nascore.synthetic import write_fake_cifar


def _set_aside_synthetic(root: Path) -> None:
    """A stand-in found where real CIFAR-10 belongs moves to <root>/synthetic-cifar10/ (an old make demo's)."""
    if data_source(root) != SYNTHETIC_DATA:
        return
    aside = root / SYNTHETIC_ROOT
    if (aside / FOLDER).exists():
        shutil.rmtree(aside / FOLDER)
    aside.mkdir(parents=True, exist_ok=True)
    os.replace(root / FOLDER, aside / FOLDER)
    write_marker(aside / FOLDER, SYNTHETIC_DATA)
    print(f"moved the synthetic stand-in out of {root / FOLDER} to {aside / FOLDER}", file=sys.stderr)


def get(root: Path, jpeg_pack: Path | None) -> str:
    """`make data`: CIFAR-10 in `root` (present, decoded from a JPEG pack, or downloaded); returns its name."""
    _set_aside_synthetic(root)
    present = data_source(root)
    if present is not None:
        print(f"data present in {root}: {present}")
        return present
    if jpeg_pack is not None:
        return replace_layout(jpeg_pack, root)
    download(root)
    return data_source(root) or OFFICIAL


def demo_root(root: Path) -> Path:
    """The root make demo reads: `root` with real CIFAR-10, else the synthetic stand-in beside it (written once)."""
    if is_real(data_source(root)):
        return root
    aside = root / SYNTHETIC_ROOT
    if data_source(aside) != SYNTHETIC_DATA:
        write_fake_cifar(aside, n_train=3000, n_test=500)
    print(f"no CIFAR-10 in {root}: the demo trains on the synthetic stand-in in {aside} (not CIFAR-10; "
          f"its records say data 'synthetic'); make data JPEG_PACK=PACK.npz for the real images", file=sys.stderr)
    return aside


def main(argv: list[str] | None = None) -> int:
    """Command line: get DATA [--jpeg-pack PACK] | demo-root DATA."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m nascore.fetch", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("get", help="CIFAR-10 into DATA: present, from --jpeg-pack, or downloaded")
    g.add_argument("root", type=Path)
    g.add_argument("--jpeg-pack", type=Path, default=None)
    d = sub.add_parser("demo-root", help="print the data root make demo uses")
    d.add_argument("root", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "get":
            get(args.root, args.jpeg_pack)
        else:
            print(demo_root(args.root))
    except (DataError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
