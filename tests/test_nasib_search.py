"""NASIB search end to end on tiny data: records, budget, determinism, resume, CLI."""
from __future__ import annotations

import copy
import json
import time

import pytest
import torch
from click.testing import CliRunner

from nascore.data import DataConfig, load_splits
from nascore.loop import RunSpec, start_clock
from nascore.runtime import rng_state, set_rng_state
from nasib.__main__ import cli
from nasib.presets import apply_overrides, preset
from nasib.search import NasibSearch, search_trial
from nasib.strategies import get_strategy
from nasib.timing import synthetic_splits

CPU = torch.device("cpu")
SMALL = {"valid_size": 100, "train_size": 160}  # 5 weight steps and 3 alpha steps per epoch
NASIB_KEYS = {"epoch", "epoch_s", "wall_s", "train_loss", "train_acc", "valid_acc", "lr", "p_explore",
              "p1_fraction", "budget_used_s", "planned_epochs", "alpha_lr", "alpha_absmax", "valid_acc_sampled",
              "p2_entropy", "p2_entropy_layers", "p2_max", "p2_max_layers", "argmax_changed",
              "argmax_ops"}


def _spec(tmp_path, data_root, name="trial", **kw) -> RunSpec:
    return RunSpec(out=tmp_path / name, seed=kw.pop("seed", 0), device="cpu",
                   data=DataConfig(data_dir=str(data_root)), **kw)


def _read(path):
    return json.loads(path.read_text())


def _cfg(data_root, space="narrow", **over):
    return apply_overrides(preset("smoke", space), {"data": {**SMALL, "data_dir": str(data_root)}, **over})


def test_fixed_epochs_search_writes_every_record(tmp_path, tiny_data):
    result = search_trial(_spec(tmp_path, tiny_data), "narrow", "smoke", {"epochs": 2, "data": SMALL})
    out = tmp_path / "trial"
    assert result["status"] == "ok" and result["epochs"] == 2 and result["realised_epochs"] == 2
    assert _read(out / "result.json")["status"] == "ok"
    epochs = [json.loads(line) for line in (out / "epochs.jsonl").read_text().splitlines()]
    assert len(epochs) == 2 and all(NASIB_KEYS <= set(e) for e in epochs)
    assert epochs[0]["p_explore"] == 1.0 and epochs[1]["p_explore"] == pytest.approx(0.1)
    assert "budget_left_s" not in epochs[0]  # no budget in --epochs mode
    alphas, arch, samples = _read(out / "alphas.json"), _read(out / "arch.json"), _read(out / "samples.json")
    names = alphas["op_names"]
    assert len(alphas["alphas"]) == 6 and all(len(row) == 7 for row in alphas["alphas"])
    assert sum(map(sum, alphas["freq"])) == 2 * 5 * 2 * 6  # epochs x steps x paths x layers
    argmax = [names[max(range(len(row)), key=row.__getitem__)] for row in alphas["alphas"]]
    assert arch["ops"] == argmax and arch["family"] == arch["strategy"] == "nasib"
    assert arch["layers"] == 6 and arch["channels"] == 8
    assert len(samples["samples"]) == 50 and all(len(s["ops"]) == 6 for s in samples["samples"])
    assert {op for s in samples["samples"] for op in s["ops"]} <= set(names)
    assert result["params"] > 0 and result["num_ops"] == 7 and result["gpu_days"] is None
    assert _read(out / "config.json")["strategy"] == "nasib"


def test_budgeted_search_ends_inside_its_budget(tmp_path, tiny_data):
    budget = 20.0  # superkernel smoke: one alpha step per weight step and two validation passes an epoch
    t0 = time.perf_counter()
    result = search_trial(_spec(tmp_path, tiny_data), "superkernel", "smoke",
                          {"budget": f"{budget:g}s", "data": SMALL})
    wall = time.perf_counter() - t0
    assert result["status"] == "ok" and result["realised_epochs"] >= 1
    assert wall <= budget * 1.3 + 5 and result["budget_used_s"] <= budget * 1.3
    epochs = [json.loads(line) for line in (tmp_path / "trial" / "epochs.jsonl").read_text().splitlines()]
    ps = [e["p_explore"] for e in epochs]
    assert ps[0] == 1.0 and ps == sorted(ps, reverse=True)
    assert all("budget_left_s" in e for e in epochs) and result["measured_epoch_s"] > 0


def test_same_seed_same_architecture(tmp_path, tiny_data):
    over = {"epochs": 1, "data": SMALL}
    for name in ("a", "b"):
        search_trial(_spec(tmp_path, tiny_data, name, deterministic=True), "narrow", "smoke", over)
    assert _read(tmp_path / "a" / "arch.json") == _read(tmp_path / "b" / "arch.json")
    assert _read(tmp_path / "a" / "alphas.json") == _read(tmp_path / "b" / "alphas.json")


@pytest.mark.parametrize("strategy", ["nasib", "darts", "snas"])
def test_state_dict_resumes_exactly(tiny_data, strategy):
    cfg = _cfg(tiny_data, epochs=2, strategy=strategy)
    splits = load_splits(cfg.data)
    a = NasibSearch(cfg, splits, CPU, seed=0)
    assert not a.done(0)
    a.run_epoch(0)
    state, rngs = copy.deepcopy(a.state_dict()), rng_state()
    rec_a = a.run_epoch(1)
    b = NasibSearch(cfg, splits, CPU, seed=7)  # a different seed: everything must come from the state
    b.load_state_dict(state)
    set_rng_state(rngs)
    rec_b = b.run_epoch(1)
    assert torch.equal(a.strategy.alphas, b.strategy.alphas)
    if strategy == "nasib":
        assert torch.equal(a.strategy.sampler.freq, b.strategy.sampler.freq)
    assert rec_a == {**rec_b, "budget_used_s": rec_a["budget_used_s"]}
    assert a.done(2) and b.done(2)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_budget_resume_does_not_charge_downtime(tiny_data):
    cfg = _cfg(tiny_data, budget="30s")
    splits = load_splits(cfg.data)
    a = NasibSearch(cfg, splits, CPU, seed=0)
    start_clock(a.budget, a)  # the timing run plans the budget
    assert not a.done(0)
    state = a.state_dict()
    time.sleep(0.3)  # the "downtime" between a kill and the restart
    b = NasibSearch(cfg, splits, CPU, seed=0)
    b.load_state_dict(state)
    assert b.budget.planner.used_s < state["planner"]["used_s"] + 0.25
    assert b.planned_epochs() == a.planned_epochs() and b.budget.reserve_s == a.budget.reserve_s


def test_budget_resume_charges_the_resumed_runs_start_up(tiny_data):
    cfg = _cfg(tiny_data, budget="30s")
    splits = load_splits(cfg.data)
    a = NasibSearch(cfg, splits, CPU, seed=0)
    start_clock(a.budget, a)
    state = a.state_dict()
    now = [1000.0]
    b = NasibSearch(cfg, splits, CPU, seed=0, clock=lambda: now[0])  # the resumed run starts counting here
    now[0] += 5.0  # loading data, building the supernet, reading the checkpoint
    b.load_state_dict(state)
    assert b.budget.planner.used_s == pytest.approx(state["planner"]["used_s"] + 5.0)


def test_measurement_leaves_no_tallies_in_the_first_epoch(tiny_data):
    cfg = _cfg(tiny_data, budget="30s")
    search = NasibSearch(cfg, load_splits(cfg.data), CPU, seed=0)
    search.measure()
    assert search.strategy._draws == 0 and search.strategy._alpha_steps == 0


def test_measurement_restores_the_search_state():
    cfg = apply_overrides(preset("smoke", "narrow"), {"budget": "1h"})
    search = NasibSearch(cfg, synthetic_splits(64, 64), CPU, seed=0)
    before, rngs = copy.deepcopy(search.state_dict()), torch.get_rng_state()
    timing = search.measure()
    assert timing["epoch_s"] > 0 and timing["weight_s"] > 0 and timing["alpha_s"] > 0
    after = search.state_dict()
    assert torch.equal(before["strategy"]["sampler"]["freq"], after["strategy"]["sampler"]["freq"])
    assert torch.equal(before["generator"], after["generator"]) and torch.equal(rngs, torch.get_rng_state())
    for key, value in before["model"].items():
        assert torch.equal(value, after["model"][key]), key
    assert after["optimizer"]["state"] == {}


def test_priors_shift_the_initial_alphas():
    cfg = apply_overrides(preset("smoke", "narrow"), {"priors": {"sep5x5": 2.0}, "alpha_init_std": 0.0})
    search = NasibSearch(cfg, synthetic_splits(64, 64), CPU, seed=0)
    alphas, j = search.strategy.alphas, search.op_names.index("sep5x5")
    assert torch.all(alphas[:, j] == 2.0) and alphas.abs().sum() == 2.0 * cfg.layers
    assert search.strategy.derive([], lambda a: 0.0) == ["sep5x5"] * cfg.layers
    assert search.strategy.sampler.probs(alphas, "p2").argmax(1).tolist() == [j] * cfg.layers


def test_random_strategy_derives_the_best_sample(tmp_path, tiny_data):
    result = search_trial(_spec(tmp_path, tiny_data), "narrow", "smoke",
                          {"epochs": 1, "strategy": "random", "num_samples": 5, "data": SMALL})
    out = tmp_path / "trial"
    assert result["status"] == "ok" and not (out / "alphas.json").exists()
    arch, samples = _read(out / "arch.json"), _read(out / "samples.json")
    assert arch["strategy"] == "random" and arch["ops"] in [s["ops"] for s in samples["samples"]]
    assert _read(out / "config.json")["strategy"] == "random"


def test_strategy_registry_names_valid():
    assert get_strategy("nasib").name == "nasib" and get_strategy("darts").name == "darts"
    with pytest.raises(ValueError, match="valid: nasib, random, darts, snas"):
        get_strategy("evolution")
    with pytest.raises(ValueError, match="unknown scale 'huge'; valid: smoke, quick, paper"):
        preset("huge")


def _cli(tiny_data, tmp_path, *args):
    base = ["search", "--scale", "smoke", "--device", "cpu", "--data-dir", str(tiny_data),
            "--valid-size", "100", "--train-size", "160", "--out", str(tmp_path / "cli")]
    return CliRunner().invoke(cli, base + list(args))


def test_cli_search_then_skip_when_finished(tmp_path, tiny_data):
    first = _cli(tiny_data, tmp_path, "--space", "narrow", "--epochs", "1", "--prior", "conv3x3=1.5")
    assert first.exit_code == 0, first.output
    assert "ok: 1 epochs" in first.output and _read(tmp_path / "cli" / "config.json")["config"]["priors"] == {
        "conv3x3": 1.5}
    again = _cli(tiny_data, tmp_path, "--space", "narrow", "--epochs", "1")
    assert again.exit_code == 0 and "skipping" in again.output


@pytest.mark.parametrize("args, needle", [
    (["--budget", "2 horus"], "90s, 45m, 2h"),
    (["--epochs", "1", "--lam", "0"], "--lam"),
    (["--epochs", "1", "--k", "1.5"], "--k"),
    (["--epochs", "1", "--m", "0"], "--m"),
    (["--epochs", "1", "--K", "0"], "--K"),
    (["--epochs", "1", "--budget", "1h"], "either --budget or --epochs"),
    (["--epochs", "1", "--prior", "conv3x3"], "OP=VALUE"),
    (["--epochs", "1", "--prior", "conv9x9=1"], "unknown op 'conv9x9'"),
    (["--epochs", "1", "--strategy", "evolution"], "'evolution' is not one of"),
])
def test_cli_rejects_bad_input_in_one_line(tmp_path, tiny_data, args, needle):
    res = _cli(tiny_data, tmp_path, "--space", "narrow", *args)
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_cli_budget_too_small_names_measured_time_and_smallest_budget(tmp_path, tiny_data):
    res = _cli(tiny_data, tmp_path, "--space", "narrow", "--budget", "1s")
    assert res.exit_code == 2, res.output
    assert "too small" in res.output and "measured" in res.output and "smallest budget" in res.output


def test_cli_budget_says_when_its_timing_run_starts_and_what_it_measured(tmp_path, tiny_data):
    out = _cli(tiny_data, tmp_path, "--space", "narrow", "--budget", "1s").output
    # no silent wait: a line before the timing run, its measured epoch after, then the plan's verdict
    assert out.index("timing run: measuring") < out.index("one epoch here takes about") < out.index("too small")


def test_cli_plan_prints_epochs_beta_and_schedule():
    args = ["plan", "--budget", "1h", "--space", "narrow", "--scale", "smoke", "--device", "cpu",
            "--train-size", "160", "--valid-size", "100"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "n = " in res.output and "beta = " in res.output and "p schedule: 1.000" in res.output
    as_json = CliRunner().invoke(cli, args + ["--json"])
    plan = json.loads(as_json.stdout)  # stdout is the plan alone; progress lines go to stderr
    assert plan["n"] >= 1 and plan["schedule"][0] == 1.0 and plan["schedule"][-1] == pytest.approx(0.1)


def test_p2_records_are_consistent_per_layer(tmp_path, tiny_data):
    search_trial(_spec(tmp_path, tiny_data), "narrow", "smoke", {"epochs": 2, "data": SMALL})
    epochs = [json.loads(line) for line in (tmp_path / "trial" / "epochs.jsonl").read_text().splitlines()]
    alphas = torch.tensor(_read(tmp_path / "trial" / "alphas.json")["alphas"])
    last = epochs[-1]
    probs = torch.softmax(alphas / 0.1, dim=1)  # the smoke preset's lambda
    entropy = -(probs * probs.log()).sum(1) / torch.log(torch.tensor(7.0))
    assert last["p2_entropy_layers"] == pytest.approx(entropy.tolist(), abs=1e-5)
    assert last["p2_max_layers"] == pytest.approx(probs.max(1).values.tolist(), abs=1e-5)
    assert last["p2_entropy"] == pytest.approx(entropy.mean().item(), abs=1e-5)
    assert all(0.0 <= e["argmax_changed"] <= 1.0 and 0.0 <= e["valid_acc_sampled"] <= 1.0 for e in epochs)


@pytest.mark.parametrize("strategy", ["nasib", "darts"])
def test_argmax_ops_name_each_epochs_derived_architecture(tmp_path, tiny_data, strategy):
    search_trial(_spec(tmp_path, tiny_data), "narrow", "smoke", {"epochs": 2, "data": SMALL, "strategy": strategy})
    epochs = [json.loads(line) for line in (tmp_path / "trial" / "epochs.jsonl").read_text().splitlines()]
    doc = _read(tmp_path / "trial" / "alphas.json")
    derived = [doc["op_names"][i] for i in torch.tensor(doc["alphas"]).argmax(1).tolist()]
    assert epochs[-1]["argmax_ops"] == derived == _read(tmp_path / "trial" / "arch.json")["ops"]
    assert all(len(e["argmax_ops"]) == len(derived) for e in epochs)


def test_valid_acc_measures_the_argmax_network_at_twice_the_weight():
    cfg = apply_overrides(preset("smoke", "narrow"), {"epochs": 1})
    search = NasibSearch(cfg, synthetic_splits(64, 64), CPU, seed=0)
    with torch.no_grad():
        search.strategy.alphas[:, 3] += 1.0
    ops, weights = search.strategy.eval_ops(search.generator)
    assert ops == [[3]] * cfg.layers and torch.equal(weights, torch.full((cfg.layers, 1), 2.0))


def test_argmax_ties_are_not_broken_by_op_order():
    from nasib.policy import argmax_layers

    picks = {tuple(argmax_layers(torch.zeros(4, 7), torch.Generator().manual_seed(s)).tolist()) for s in range(5)}
    assert len(picks) > 1  # all-equal alphas: a random op, not always op 0


@pytest.mark.parametrize("rate,expected", [(None, 5), (2.0, 10), (0.4, 2)])
def test_alpha_steps_per_weight_step(tiny_data, rate, expected):
    cfg = _cfg(tiny_data, epochs=1, alpha_steps=rate)  # 5 weight steps an epoch
    search = NasibSearch(cfg, load_splits(cfg.data), CPU, seed=0)
    search.done(0)
    search.run_epoch(0)
    assert search.strategy.optimizer.t.sum().item() == expected * 2 * cfg.layers  # pairs x layers


@pytest.mark.parametrize("rule", ["running", "batch", "recalibrate"])
def test_every_bn_rule_evaluates_and_leaves_training_state_alone(tiny_data, rule):
    cfg = _cfg(tiny_data, epochs=1, bn_eval=rule)
    search = NasibSearch(cfg, load_splits(cfg.data), CPU, seed=0)
    search.done(0)
    rec = search.run_epoch(0)
    before = copy.deepcopy(search.model.state_dict())
    acc = search._accuracy([[0]] * cfg.layers)
    assert 0.0 <= rec["valid_acc"] <= 1.0 and 0.0 <= acc <= 1.0 and search.model.training
    for key, value in before.items():
        assert torch.equal(value, search.model.state_dict()[key]), key


@pytest.mark.parametrize("autotune", [False, True])
def test_cudnn_autotuning_follows_the_config(autotune):
    cfg = apply_overrides(preset("smoke", "narrow"), {"epochs": 1, "cudnn_autotune": autotune})
    saved = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = True  # what a --fast run's seed_everything sets
        NasibSearch(cfg, synthetic_splits(64, 64), torch.device("cpu"), 0)
        assert torch.backends.cudnn.benchmark is autotune
    finally:
        torch.backends.cudnn.benchmark = saved


def test_the_projected_epoch_pays_the_snapshot_and_only_the_write_that_outlasts_the_epoch():
    from nasib.timing import projected_epoch

    assert projected_epoch(10.0, 0.1, 2.0) == pytest.approx(10.1)  # the write hides behind the next epoch
    assert projected_epoch(1.0, 0.1, 3.0) == pytest.approx(3.1)  # the next save waits for the rest
    cfg = apply_overrides(preset("smoke", "narrow"), {"budget": "1h"})
    t = NasibSearch(cfg, synthetic_splits(64, 64), CPU, seed=0).measure()
    assert 0 < t["snapshot_s"] <= t["checkpoint_s"]
