"""The benchmark runner produces its figure files (values are machine-dependent; only sanity is checked)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from benchmarks.__main__ import main
from benchmarks.checkpoint_bench import run as checkpoint_run
from benchmarks.rewards_bench import run as levers_run


def test_bench_smoke_writes_figures(tmp_path):
    res = CliRunner().invoke(main, ["--device", "cpu", "--scale", "smoke", "--out", str(tmp_path),
                                    "--only", "enas", "--only", "nasib"])
    assert res.exit_code == 0, res.output
    enas = json.loads((tmp_path / "enas-cpu-smoke.json").read_text())["figures"]
    assert set(enas) == {"original", "extended"}
    assert all(f["ms_per_child_step"] > 0 and f["projected_epoch_s"] > 0 for f in enas.values())
    nasib = json.loads((tmp_path / "nasib-cpu-smoke.json").read_text())["figures"]["spaces"]
    assert nasib["superkernel"]["num_ops"] == 81 and nasib["narrow"]["num_ops"] == 7
    assert all(f["ms_per_weight_step"] > 0 and f["ms_per_alpha_step"] > 0 for f in nasib.values())
    # NASIB's default is one alpha step per weight step: the projection counts (and reports) as many.
    assert all(f["alpha_steps"] == f["train_batches"] for f in nasib.values())


def test_checkpoint_bench_sizes_grow_with_the_space():
    figs = checkpoint_run("smoke", repeat=1)["searchers"]
    assert figs["nasib-superkernel"]["checkpoint_mb"] > figs["nasib-narrow"]["checkpoint_mb"] > 0
    assert figs["enas-extended"]["checkpoint_mb"] > figs["enas-original"]["checkpoint_mb"] > 0
    assert all(f["save_s"] > 0 for f in figs.values())


def test_lever_bench_reports_both_spaces_side_by_side():
    figs = levers_run(image=4, batch=2, repeat=1, layers=4, channels=4, num_aggregate=6)["spaces"]
    assert set(figs) == {"original", "extended"}
    for f in figs.values():
        c, u = f["controller_update"], f["child_update"]
        assert c["routed"]["rewards_ops"] < c["sequential"]["rewards_ops"]  # one pass, not one per child
        assert c["rewards_ops_ratio"] == c["sequential"]["rewards_ops"] / c["routed"]["rewards_ops"]
        assert u["flat"]["ops"] < u["per_tensor"]["ops"]
    # The flat update's kernels do not grow with the space; the per-tensor update's do.
    assert figs["original"]["child_update"]["flat"]["ops"] == figs["extended"]["child_update"]["flat"]["ops"]
    assert figs["extended"]["child_update"]["per_tensor"]["ops"] > figs["original"]["child_update"]["per_tensor"]["ops"]


def test_before_after_runs_each_setting_with_its_own_environment(monkeypatch):
    import os

    import benchmarks.levers_gpu as lg

    seen = []

    def fake_run(device, scale, space):
        seen.append((os.environ.get("NASIB_ENAS_SPEED"), space))
        return {"measured_epoch_s": 4.0 if os.environ["NASIB_ENAS_SPEED"] else 2.0}

    monkeypatch.setattr(lg, "run", fake_run)
    monkeypatch.setenv("NASIB_ENAS_SPEED", "eval_chunk=3")
    figs = lg.before_after("cpu", "smoke")
    assert seen == [("batched_rewards=off,flat_update=off", "original"), ("batched_rewards=off,flat_update=off",
                    "extended"), ("", "original"), ("", "extended")]
    assert figs["speedup"] == {"original": 2.0, "extended": 2.0}
    assert os.environ["NASIB_ENAS_SPEED"] == "eval_chunk=3"  # restored
