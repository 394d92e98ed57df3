"""Retraining a derived architecture from scratch (`python -m retraining`)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from enas_ext.child import FixedChild
from nascore.ops import count_params
from nasib.supernet import FixedNet
from retraining.__main__ import cli

ENAS_ARCH = {"space": "original", "method": "enas", "layers": 6, "channels": 8,
             "ops": ["conv3x3", "maxpool3x3", "sep5x5", "avgpool3x3", "conv5x5", "sep3x3"],
             "skips": [[], [1], [0, 1], [0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 0, 1]]}
NASIB_ARCH = {"space": "superkernel", "method": "nasib", "layers": 4, "channels": 8,
              "ops": ["conv2x3", "sep7x1", "identity", "maxpool3x3"]}


def retrain(tmp_path, data, arch: dict, *extra: str):
    """Write arch.json under a fake search trial and retrain it for 2 epochs on the tiny data."""
    src = tmp_path / "exp" / "search-s0"
    src.mkdir(parents=True)
    (src / "arch.json").write_text(json.dumps(arch))
    out = tmp_path / "retrain"
    args = [str(src / "arch.json"), "--preset", "smoke", "--epochs", "2", "--device", "cpu",
            "--data-dir", str(data), "--valid-size", "100", "--test-size", "100", "--out", str(out), *extra]
    return CliRunner().invoke(cli, args), out


@pytest.mark.parametrize("arch, net", [(ENAS_ARCH, FixedChild), (NASIB_ARCH, FixedNet)])
def test_retrain_reports_test_accuracy_and_params(tmp_path, tiny_data, arch, net):
    res, out = retrain(tmp_path, tiny_data, arch)
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "ok" and result["epochs"] == 2
    assert 0.0 <= result["test_acc"] <= 1.0
    assert result["test_error"] == pytest.approx(100 * (1 - result["test_acc"]))
    assert result["params"] == count_params(net(arch, channels=8, dropout=0.5))
    assert result["source_trial"] == "exp/search-s0" and result["source_method"] == arch["method"]
    lines = (out / "epochs.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1]
    assert "test accuracy" in res.output


def test_retrain_learns_the_synthetic_task(tmp_path, tiny_data):
    res, out = retrain(tmp_path, tiny_data, NASIB_ARCH, "--epochs", "4")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "result.json").read_text())["test_acc"] > 0.3  # chance is 0.1


def test_bad_architecture_is_one_line(tmp_path, tiny_data):
    res, _ = retrain(tmp_path, tiny_data, {"space": "narrow", "ops": []})
    assert res.exit_code == 2 and "non-empty 'ops'" in res.output
    bad = dict(NASIB_ARCH, ops=["conv3x3", "conv0x3", "identity", "identity"])
    res, _ = retrain(tmp_path / "b", tiny_data, bad)
    assert res.exit_code == 2 and "conv0x3" in res.output


@pytest.mark.parametrize("arch, recipe, lr", [(NASIB_ARCH, "paper", 0.01), (ENAS_ARCH, "enas", 0.05)])
def test_each_family_retrains_with_its_own_recipe(tmp_path, tiny_data, arch, recipe, lr):
    res, out = retrain(tmp_path, tiny_data, arch, "--epochs", "1")
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert (cfg["recipe"], cfg["lr_max"]) == (recipe, lr)
    assert cfg["nesterov"] is (recipe == "enas")
    assert json.loads((out / "epochs.jsonl").read_text().splitlines()[0])["lr"] == pytest.approx(lr)


def test_recipe_is_one_option_away(tmp_path, tiny_data):
    res, out = retrain(tmp_path, tiny_data, NASIB_ARCH, "--epochs", "1", "--recipe", "enas")
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert (cfg["recipe"], cfg["lr_max"], cfg["lr_min"]) == ("enas", 0.05, 0.001)
