"""ENAS macro search end to end on tiny generated data: records, determinism, resume, skip, CLI, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from contract.errors import OutOfMemory
from enas_ext.__main__ import cli
from enas_ext.presets import PRESETS, configure, preset
from enas_ext.search import EnasSearch, cosine_restart_lr, search_trial
from nascore.config import ConfigError
from nascore.data import DataConfig
from nascore.loop import RunSpec

TIMING = ("epoch_s", "wall_s")
ENAS_FIELDS = {"epoch", "epoch_s", "wall_s", "train_loss", "train_acc", "valid_acc", "lr", "entropy",
               "baseline", "skip_rate", "controller_reward"}


def tiny(epochs: int = 1) -> dict:
    """Overrides that make a search take about a second on one CPU core."""
    return {"layers": 4, "channels": 4, "batch_size": 32, "epochs": epochs, "eval_batch": 50,
            "controller": {"train_steps": 2, "num_aggregate": 3},
            "data": {"valid_size": 100, "train_size": 192}}


def run(out: Path, data: Path, epochs: int = 1, seed: int = 0, force: bool = False, **over) -> dict | None:
    """A tiny deterministic CPU search into `out`."""
    spec = RunSpec(out=out, seed=seed, device="cpu", data=DataConfig(data_dir=str(data)), deterministic=True,
                   force=force)
    return search_trial(spec, "original", "smoke", {**tiny(epochs), **over})


def numbers(out: Path) -> list[dict]:
    """epochs.jsonl without the timing fields."""
    lines = (out / "epochs.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_data) -> Path:
    """One finished one-epoch trial."""
    out = tmp_path_factory.mktemp("enas") / "enas-original-s0"
    assert run(out, tiny_data)["status"] == "ok"
    return out


def test_one_epoch_writes_every_record(finished):
    conf = json.loads((finished / "config.json").read_text())
    assert conf["format"] == 2 and conf["family"] == conf["strategy"] == "enas" and conf["space"] == "original"
    assert conf["trial_id"] == "enas-original-s0" and conf["config"]["controller"]["num_layers"] == 4
    (rec,) = [json.loads(line) for line in (finished / "epochs.jsonl").read_text().splitlines()]
    assert set(rec) == ENAS_FIELDS and rec["epoch"] == 0 and rec["lr"] == pytest.approx(0.05)
    assert 0.0 <= rec["valid_acc"] <= 1.0 and 0.0 <= rec["skip_rate"] <= 1.0
    samples = json.loads((finished / "samples.json").read_text())
    assert samples["space"] == "original" and len(samples["op_names"]) == 6 and len(samples["samples"]) == 50
    for s in samples["samples"]:
        assert len(s["ops"]) == 4 and [len(r) for r in s["skips"]] == [0, 1, 2, 3]
    arch = json.loads((finished / "arch.json").read_text())
    assert arch["family"] == arch["strategy"] == "enas" and arch["layers"] == 4 and arch["channels"] == 4
    assert set(arch["ops"]) <= set(samples["op_names"])
    result = json.loads((finished / "result.json").read_text())
    assert result["status"] == "ok" and result["format"] == 2 and result["epochs"] == 1
    assert result["gpu_days"] is None and result["device"] == "cpu" and result["num_ops"] == 6
    assert result["params"] > 0 and result["final_valid_acc"] == result["best_valid_acc"] == rec["valid_acc"]
    assert (finished / "checkpoint.pt").is_file()


def test_same_seed_same_numbers(tmp_path, tiny_data, finished):
    run(tmp_path / "again", tiny_data)
    assert numbers(tmp_path / "again") == numbers(finished)
    assert (tmp_path / "again" / "arch.json").read_text() == (finished / "arch.json").read_text()


def test_resume_continues_exactly(tmp_path, tiny_data, monkeypatch):
    from enas_ext.search import EnasSearch
    from nascore.loop import Interrupted

    run(tmp_path / "straight", tiny_data, epochs=2)
    real = EnasSearch.run_epoch

    def stop_in_epoch_1(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt  # Ctrl-C during epoch 1: epoch 0's checkpoint is the last
        return real(self, epoch)

    monkeypatch.setattr(EnasSearch, "run_epoch", stop_in_epoch_1)
    with pytest.raises(Interrupted):
        run(tmp_path / "cut", tiny_data, epochs=2)
    monkeypatch.setattr(EnasSearch, "run_epoch", real)
    run(tmp_path / "cut", tiny_data, epochs=2)
    assert numbers(tmp_path / "cut") == numbers(tmp_path / "straight")


def test_finished_trial_is_skipped_unless_forced(tmp_path, tiny_data):
    out = tmp_path / "t"
    run(out, tiny_data)
    assert run(out, tiny_data) is None
    assert run(out, tiny_data, force=True)["status"] == "ok"
    assert len(list(tmp_path.glob("t.old-*"))) == 1


def test_bad_names_list_the_valid_ones(tmp_path, tiny_data):
    spec = RunSpec(out=tmp_path / "x", device="cpu", data=DataConfig(data_dir=str(tiny_data)))
    with pytest.raises(ValueError, match="valid: original, extended"):
        search_trial(spec, "huge", "smoke")
    with pytest.raises(ValueError, match="valid: smoke, quick, paper"):
        search_trial(spec, "original", "tiny")
    with pytest.raises(ConfigError, match="unknown key 'epoch'"):
        search_trial(spec, "original", "smoke", {"epoch": 3})
    assert not (tmp_path / "x").exists()


def test_presets_follow_space_and_reference():
    paper = preset("paper", "extended")
    assert (paper.layers, paper.channels, paper.batch_size, paper.epochs) == (12, 36, 128, 310)
    assert (paper.controller.num_ops, paper.controller.num_layers) == (18, 12)
    assert (paper.controller.train_steps, paper.controller.num_aggregate) == (50, 20)
    assert configure("quick", "original", {"layers": 9}).controller.num_layers == 9
    assert {p: preset(p).epochs for p in PRESETS} == {"smoke": 3, "quick": 21, "paper": 310}


def test_lr_restarts_like_reference():
    lr = [cosine_restart_lr(e, 0.05, 0.0005, 10, 2) for e in range(310)]
    assert [e for e in range(1, 310) if lr[e] > lr[e - 1]] == [10, 30, 70, 150]
    assert lr[0] == pytest.approx(0.05) and lr[309] < 0.0006


def test_oom_carries_a_hint(tmp_path, tiny_data, monkeypatch):
    def boom(self, epoch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(EnasSearch, "run_epoch", boom)
    with pytest.raises(OutOfMemory) as err:
        run(tmp_path / "oom", tiny_data)
    assert "batch size 32 with 4 layers" in err.value.hint


def test_cli_search_then_sample(tmp_path, tiny_data):
    out = tmp_path / "cli"
    args = ["search", "--scale", "smoke", "--epochs", "1", "--layers", "3", "--channels", "4",
            "--batch-size", "32", "--train-size", "96", "--valid-size", "100", "--data-dir", str(tiny_data),
            "--device", "cpu", "--deterministic", "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "ok: 1 epochs" in res.output and (out / "result.json").is_file()
    res = CliRunner().invoke(cli, ["sample", str(out), "-n", "5"])
    assert res.exit_code == 0, res.output
    assert len(json.loads((out / "samples.json").read_text())["samples"]) == 5


def test_cli_rejects_non_positive_epochs(tmp_path):
    res = CliRunner().invoke(cli, ["search", "--epochs", "0", "--out", str(tmp_path / "z")])
    assert res.exit_code == 2 and "--epochs" in res.output
    res = CliRunner().invoke(cli, ["search", "--space", "huge", "--out", str(tmp_path / "z")])
    assert res.exit_code == 2 and "original" in res.output


@pytest.mark.slow
def test_short_real_search_learns(tmp_path, real_data):
    """Smoke-size net, 3,000 real images, 4 epochs: the shared child learns, well above chance.

    Random ops per step share weights, so this scale learns slowly (measured: ~0.2 valid
    accuracy after 4 epochs); 0.16 on 1,000 valid images is about 6 standard errors above chance.
    """
    spec = RunSpec(out=tmp_path / "real", seed=0, device="cpu", data=DataConfig(data_dir=str(real_data)))
    result = search_trial(spec, "original", "smoke", {"epochs": 4, "lr_t0": 4,
                                                      "data": {"train_size": 3000, "valid_size": 1000}})
    assert result["status"] == "ok"
    assert result["best_valid_acc"] > 0.16
    losses = [r["train_loss"] for r in numbers(tmp_path / "real")]
    assert losses[-1] < losses[0] - 0.1
