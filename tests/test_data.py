"""Data loading, validation, splits and on-device augmentation."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from nascore.data import AugmentConfig, DataConfig, DataError, DeviceLoader, cutout, load_splits, random_crop


def test_splits_follow_enas(tiny_data):
    s = load_splits(DataConfig(data_dir=str(tiny_data), valid_size=100))
    assert len(s.train) == 500 and len(s.valid) == 100 and len(s.test) == 200
    assert s.train.x.dtype == torch.uint8 and s.train.x.shape[1:] == (3, 32, 32)
    sub = load_splits(DataConfig(data_dir=str(tiny_data), valid_size=100, train_size=50, test_size=20))
    assert len(sub.train) == 50 and len(sub.test) == 20
    assert torch.equal(sub.valid.x, s.valid.x)  # the held-out part does not move with subsets


def test_missing_data_names_path_and_fix(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)) as e:
        load_splits(DataConfig(data_dir=str(tmp_path)))
    assert "--download" in str(e.value) and "NASIB_DATA" in str(e.value)


def test_truncated_file_is_named(tiny_data, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_data, root)
    f = root / "cifar-10-batches-py" / "data_batch_3"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(DataError, match="data_batch_3"):
        load_splits(DataConfig(data_dir=str(root), valid_size=100))


def test_bad_labels_are_named(tiny_data, tmp_path):
    import pickle
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_data, root)
    f = root / "cifar-10-batches-py" / "test_batch"
    d = pickle.loads(f.read_bytes())
    d[b"labels"][0] = 12
    f.write_bytes(pickle.dumps(d))
    with pytest.raises(DataError, match="test_batch.*labels"):
        load_splits(DataConfig(data_dir=str(root), valid_size=100))


def test_crop_keeps_content_and_shape():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    torch.manual_seed(0)
    y = random_crop(x, 4)
    assert y.shape == x.shape
    nz = y[0, 0][y[0, 0] != 0]
    assert set(nz.tolist()) <= set(x[0, 0].flatten().tolist())  # only shifted pixels and zero padding
    assert torch.equal(random_crop(x, 0), x)


def test_cutout_zeroes_a_square():
    torch.manual_seed(1)
    y = cutout(torch.ones(4, 3, 32, 32), 16)
    zeros = (y[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= 16 * 16).all()
    assert torch.equal(y[:, 0] == 0, y[:, 2] == 0)  # same hole in every channel


def test_loader_batches_and_normalises(tiny_data):
    s = load_splits(DataConfig(data_dir=str(tiny_data), valid_size=100))
    dl = DeviceLoader(s.train, 64, "cpu", s.mean, s.std, AugmentConfig())
    batches = list(dl)
    assert len(batches) == len(dl) == 500 // 64
    xb, yb = batches[0]
    assert xb.shape == (64, 3, 32, 32) and xb.dtype == torch.float32 and yb.shape == (64,)
    ev = DeviceLoader(s.test, 64, "cpu", s.mean, s.std, None, shuffle=False, drop_last=False)
    assert sum(len(y) for _, y in ev) == 200
    with pytest.raises(ValueError, match="batch size"):
        DeviceLoader(s.test, 0, "cpu", s.mean, s.std)


# --- provenance: which data a folder holds, named exactly -------------------------------------

def test_synthetic_stand_in_is_named_synthetic_in_its_own_folder(tmp_path):
    from nascore.datafiles import data_source
    from nascore.synthetic import main

    res = CliRunner().invoke(main, [str(tmp_path), "--train", "50", "--test", "20"])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "cifar-10-batches-py").exists()  # not where real CIFAR-10 is looked for
    assert data_source(tmp_path / "synthetic-cifar10") == "synthetic"
    s = load_splits(DataConfig(data_dir=str(tmp_path / "synthetic-cifar10"), valid_size=10))
    assert s.source == "synthetic"


def test_stand_in_written_before_markers_is_still_synthetic(tiny_data, tmp_path):
    import shutil

    from nascore.datafiles import data_source

    shutil.copytree(tiny_data, tmp_path / "old")
    (tmp_path / "old" / "cifar-10-batches-py" / "DATA_SOURCE").unlink()  # what an old make demo left
    assert data_source(tmp_path / "old") == "synthetic"  # its class0..class9 labels give it away


def test_official_and_unknown_copies_are_told_apart(tiny_data, tmp_path, monkeypatch):
    import hashlib
    import shutil

    from nascore import datafiles

    root = tmp_path / "copy"
    shutil.copytree(tiny_data, root)
    folder = root / "cifar-10-batches-py"
    (folder / "DATA_SOURCE").unlink()
    (folder / "batches.meta").unlink()
    digest = hashlib.md5((folder / "test_batch").read_bytes()).hexdigest()
    assert datafiles.data_source(root) == f"cifar10-copy md5:{digest}"
    monkeypatch.setattr(datafiles, "OFFICIAL_TEST_MD5", digest)
    assert datafiles.data_source(root) == "cifar10-official"
    assert load_splits(DataConfig(data_dir=str(root), valid_size=100)).source == "cifar10-official"


def test_stand_in_is_never_written_over_real_data(tiny_data, tmp_path):
    import shutil

    from nascore.synthetic import write_fake_cifar

    root = tmp_path / "real"
    shutil.copytree(tiny_data, root)
    (root / "cifar-10-batches-py" / "DATA_SOURCE").write_text("cifar10-official\n")
    before = (root / "cifar-10-batches-py" / "test_batch").read_bytes()
    with pytest.raises(DataError, match="real CIFAR-10"):
        write_fake_cifar(root)
    assert (root / "cifar-10-batches-py" / "test_batch").read_bytes() == before


def test_records_carry_the_exact_data_name():
    from contract.names import data_copy

    name = "cifar10-jpeg-q75 sha256:" + "ab" * 32
    assert data_copy(name) == name and data_copy("synthetic") == "synthetic"
    assert data_copy("cifar10-official") == "cifar10-official"
    assert data_copy("/nowhere/cifar-10-batches-py") is None  # an old record's folder that is gone


def test_no_download_is_one_line_and_names_the_fallback(tmp_path, monkeypatch, capsys):
    import urllib.error

    import torchvision

    from nascore import fetch

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    assert fetch.main(["get", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: cannot download CIFAR-10")
    assert "JPEG_PACK" in err[0] and "make demo" in err[0]
    with pytest.raises(DataError, match="cannot download"):
        load_splits(DataConfig(data_dir=str(tmp_path / "e"), download=True))
