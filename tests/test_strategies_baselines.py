"""The Figure 3 baselines (DARTS first order, SNAS) end to end on tiny data, and their parts."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from nascore.data import DataConfig, load_splits
from nascore.loop import RunSpec
from nasib.__main__ import cli
from nasib.presets import apply_overrides, preset
from nasib.search import NasibSearch, search_trial
from nasib.strategies import get_strategy
from nasib.strategies.relaxed import ALPHA_LR, MAX_OPS, TAU_END, TAU_START
from nasib.timing import synthetic_splits

CPU = torch.device("cpu")
SMALL = {"valid_size": 100, "train_size": 160}  # 5 weight steps and 3 alpha steps per epoch
KEYS = {"epoch", "train_loss", "train_acc", "valid_acc", "lr", "alpha_lr", "alpha_absmax", "alpha_rule",
        "budget_used_s", "planned_epochs"}


def _spec(tmp_path, data_root, name="trial") -> RunSpec:
    return RunSpec(out=tmp_path / name, seed=0, device="cpu", data=DataConfig(data_dir=str(data_root)))


def _read(path):
    return json.loads(path.read_text())


def _epochs(out):
    return [json.loads(line) for line in (out / "epochs.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("strategy", ["darts", "snas"])
def test_search_writes_every_record_and_derives_the_argmax(tmp_path, tiny_data, strategy):
    result = search_trial(_spec(tmp_path, tiny_data), "narrow", "smoke",
                          {"epochs": 2, "strategy": strategy, "data": SMALL})
    out = tmp_path / "trial"
    assert result["status"] == "ok" and result["realised_epochs"] == 2
    assert _read(out / "result.json")["status"] == "ok"
    epochs = _epochs(out)
    assert len(epochs) == 2 and all(KEYS <= set(e) for e in epochs)
    assert all("p_explore" not in e for e in epochs)  # p_e means nothing to darts/snas
    assert all(("alpha_loss" in e) == (strategy == "darts") for e in epochs)  # snas has no held-out steps
    assert all(e["alpha_lr"] == ALPHA_LR and 0.0 <= e["valid_acc"] <= 1.0 for e in epochs)
    alphas, arch = _read(out / "alphas.json"), _read(out / "arch.json")
    names, rows = alphas["op_names"], alphas["alphas"]
    assert len(rows) == 6 and all(len(row) == 7 for row in rows)
    assert arch["ops"] == [names[max(range(len(row)), key=row.__getitem__)] for row in rows]
    assert arch["strategy"] == strategy and _read(out / "config.json")["strategy"] == strategy
    samples = _read(out / "samples.json")["samples"]
    assert len(samples) == 50 and {op for s in samples for op in s["ops"]} <= set(names)


def test_darts_alphas_move_from_their_seeded_init(tiny_data):
    cfg = apply_overrides(preset("smoke", "narrow"), {"epochs": 2, "strategy": "darts",
                                                      "data": {**SMALL, "data_dir": str(tiny_data)}})
    search = NasibSearch(cfg, load_splits(cfg.data), CPU, seed=0)
    start = search.strategy.alphas.detach().clone()
    again = NasibSearch(cfg, load_splits(cfg.data), CPU, seed=0).strategy.alphas
    assert torch.equal(start, again) and 0 < start.abs().max() < 0.01  # 1e-3 * randn, from the seed
    search.done(0)
    rec = search.run_epoch(0)
    assert not torch.equal(start, search.strategy.alphas.detach())
    assert rec["alpha_absmax"] == pytest.approx(search.strategy.alphas.detach().abs().max().item())


def test_darts_weight_step_runs_every_op_with_softmax_weights():
    cfg = apply_overrides(preset("smoke", "narrow"), {"epochs": 1, "strategy": "darts"})
    strategy = get_strategy("darts")(cfg.op_names(), cfg, CPU, torch.Generator().manual_seed(0))
    ops, weights = strategy.weight_ops(1.0, torch.Generator())
    assert ops == [list(range(7))] * cfg.layers and not weights.requires_grad
    assert torch.allclose(weights, torch.softmax(strategy.alphas.detach(), 1))
    eval_ops, eval_weights = strategy.eval_ops(torch.Generator())
    assert eval_ops == ops and torch.equal(eval_weights, weights)


def test_snas_tau_anneals_linearly_over_the_planned_epochs(tmp_path, tiny_data):
    search_trial(_spec(tmp_path, tiny_data), "narrow", "smoke", {"epochs": 3, "strategy": "snas", "data": SMALL})
    taus = [e["tau"] for e in _epochs(tmp_path / "trial")]
    assert taus[0] == TAU_START and taus[-1] == pytest.approx(TAU_END)
    assert taus[1] == pytest.approx((TAU_START + TAU_END) / 2)


def test_snas_is_single_level_its_weight_step_weights_reach_the_alphas():
    cfg = apply_overrides(preset("smoke", "narrow"), {"epochs": 1, "strategy": "snas"})
    strategy = get_strategy("snas")(cfg.op_names(), cfg, CPU, torch.Generator().manual_seed(0))
    assert not strategy.trains_alphas  # no held-out alpha steps
    _, weights = strategy.weight_ops(1.0, torch.Generator().manual_seed(1))
    assert weights.requires_grad and torch.allclose(weights.sum(1), torch.ones(cfg.layers))
    before = strategy.alphas.detach().clone()
    weights[:, 0].sum().backward()
    strategy.after_weight_step()
    assert not torch.equal(before, strategy.alphas.detach())
    strategy.set_epoch(4, 5)  # the last planned epoch: nearly one-hot samples
    assert strategy.tau == pytest.approx(TAU_END)
    assert strategy.relax(torch.Generator().manual_seed(2)).max(1).values.min() > 0.5


@pytest.mark.parametrize("strategy", ["darts", "snas"])
def test_many_op_spaces_are_refused_in_one_line(strategy):
    cfg = apply_overrides(preset("smoke", "superkernel"), {"epochs": 1, "strategy": strategy})
    assert len(cfg.op_names()) > MAX_OPS
    with pytest.raises(ValueError, match="memory grows with the op count") as err:
        NasibSearch(cfg, synthetic_splits(64, 64), CPU, seed=0)
    assert "\n" not in str(err.value) and "'superkernel'" in str(err.value)


def test_cli_refuses_superkernel_darts_in_one_line(tmp_path, tiny_data):
    args = ["search", "--scale", "smoke", "--device", "cpu", "--data-dir", str(tiny_data), "--valid-size",
            "100", "--train-size", "160", "--out", str(tmp_path / "cli"), "--space", "superkernel",
            "--epochs", "1", "--strategy", "darts"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code != 0 and "memory grows with the op count" in res.output
    assert "Traceback" not in res.output
