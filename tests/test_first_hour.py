"""A newcomer's first hour: the demo's synthetic data never passes for CIFAR-10, a JPEG pack replaces it,
every command says at once what it runs, and a run can be watched live in TensorBoard."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.claims import run_claims
from nascore import fetch
from nascore.datafiles import data_source
from nascore.synthetic import write_fake_cifar
from nasib.__main__ import cli as nasib_cli
from retraining.__main__ import cli as retrain_cli

ROOT = Path(__file__).resolve().parent.parent
# The workplace's JPEG pack: $JPEG_PACK, else beside the checkout as .ci/run finds it.
PACK = Path(os.environ.get("JPEG_PACK") or ROOT.parent / "shared" / "data" / "cifar10_jpeg_q75.npz")
SMALL = ["--train-size", "100", "--valid-size", "50", "--test-size", "50"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _search(data: Path, out: Path, *extra: str):
    """A one-epoch NASIB smoke search on `data` through the command line."""
    args = ["search", "--space", "narrow", "--scale", "smoke", "--epochs", "1", "--device", "cpu", "--threads", "1",
            "--data-dir", str(data), "--out", str(out), *SMALL, *extra]
    res = CliRunner().invoke(nasib_cli, args)
    assert res.exit_code == 0, res.output
    return res


def _data_name(trial: Path) -> str:
    return json.loads((trial / "config.json").read_text())["provenance"]["data_source"]


@pytest.mark.slow  # decodes all 60,000 images of the pack
@pytest.mark.skipif(not PACK.is_file(), reason=f"no JPEG pack at {PACK} (set JPEG_PACK)")
def test_demo_offline_then_make_data_with_a_jpeg_pack(tmp_path, monkeypatch):
    import torchvision

    data = tmp_path / "data"
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    assert fetch.main(["get", str(data)]) == 1  # make demo's first step, offline: one line, then the fallback
    demo = fetch.demo_root(data)
    assert demo == data / "synthetic-cifar10" and not (data / "cifar-10-batches-py").exists()
    res = _search(demo, tmp_path / "demo")
    assert "SYNTHETIC" in res.output.splitlines()[0] and _data_name(tmp_path / "demo") == "synthetic"
    # An older make demo left its stand-in where real CIFAR-10 goes: make data must not call that "present".
    write_fake_cifar(data, n_train=50, n_test=20)
    (data / "cifar-10-batches-py" / "DATA_SOURCE").unlink()
    make = subprocess.run(["make", "-s", "data", "INSTALL=", f"PYTHON={sys.executable}", f"DATA={data}",
                           f"JPEG_PACK={PACK}"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert make.returncode == 0, make.stderr
    name = "cifar10-jpeg-q75 sha256:" + hashlib.sha256(PACK.read_bytes()).hexdigest()
    assert data_source(data) == name and data_source(data / "synthetic-cifar10") == "synthetic"
    assert fetch.demo_root(data) == data  # the demo now trains on the real images
    _search(data, tmp_path / "real")
    assert _data_name(tmp_path / "real") == name  # config.json names the JPEG copy exactly


def test_the_scorecard_refuses_synthetic_trials_and_names_them(tmp_path):
    without = tmp_path / "without"  # the record set with the trial absent altogether
    shutil.copytree(ROOT / "results" / "reference" / "smoke" / "fig2", without / "fig2")
    shutil.rmtree(without / "fig2" / "enas-original-s2")
    run_claims(without)
    before = json.loads((without / "figures" / "claims.json").read_text())
    results = tmp_path / "r"
    shutil.copytree(ROOT / "results" / "reference" / "smoke" / "fig2", results / "fig2")
    synthetic = results / "fig2" / "enas-original-s2"  # a trial the manifest names, trained on the stand-in
    cfg = json.loads((synthetic / "config.json").read_text())
    cfg["provenance"].update(data_source="synthetic", data_copy="synthetic")
    (synthetic / "config.json").write_text(json.dumps(cfg))
    run_claims(results)
    after = json.loads((results / "figures" / "claims.json").read_text())
    assert after.pop("refused_synthetic") == ["fig2/enas-original-s2"]
    assert after.pop("results") != before.pop("results")  # each names its own folder
    assert after == before  # counts, effects and verdicts as if the synthetic trial were not there
    assert "fig2/enas-original-s2" in (results / "figures" / "claims.md").read_text()


def test_claims_rerun_gives_the_same_bytes(tmp_path):
    results = tmp_path / "r"
    shutil.copytree(ROOT / "results" / "reference" / "smoke" / "fig2", results / "fig2")
    run_claims(results)
    first = (results / "figures" / "claims.json").read_bytes()
    run_claims(results)
    assert (results / "figures" / "claims.json").read_bytes() == first


def _first_line(args: list[str]) -> str:
    """The first stderr line of a command, read while it runs (it is killed afterwards)."""
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=ENV, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    try:
        return proc.stderr.readline()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("args", [
    ["nasib", "plan", "--space", "superkernel", "--scale", "quick", "--budget", "2h", "--device", "cpu"],
    ["nasib", "search", "--space", "superkernel", "--scale", "quick", "--budget", "2h", "--device", "cpu"],
    ["enas_ext", "search", "--space", "original", "--scale", "quick", "--device", "cpu"],
])
def test_a_cpu_run_at_the_quick_scale_says_at_once_what_runs(tmp_path, tiny_data, args):
    import time

    extra = [] if args[1] == "plan" else ["--data-dir", str(tiny_data), "--out", str(tmp_path / "t")]
    t0 = time.monotonic()
    line = _first_line([*args, *extra])
    waited = time.monotonic() - t0
    for word in ("space", "scale quick", "device cpu", "threads"):
        assert word in line, line
    if extra:
        assert "data SYNTHETIC" in line  # a search on the stand-in says so in its first line
    assert waited < 10, f"first line after {waited:.1f} s"


def test_options_are_checked_and_the_line_printed_before_torch_loads():
    code = ("import sys\nfrom enas_ext.__main__ import cli\n"
            "try:\n    cli(['search', '--seed', '-1', '--out', 'x'])\nexcept SystemExit as e:\n"
            "    assert e.code == 2\nassert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "ok", res.stderr


def _scalars(tb: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of the event files under `tb`, read back as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_scalars_per_epoch_for_a_search_and_a_retraining(tmp_path, tiny_data, monkeypatch):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install '.[tb]')")
    monkeypatch.setenv("NASIB_TENSORBOARD", "0")  # whatever --tensorboard turns on, the test undoes
    _search(tiny_data, tmp_path / "plain")
    assert not (tmp_path / "plain" / "tb").exists()  # off unless asked for
    args = ["search", "--space", "narrow", "--scale", "smoke", "--epochs", "2", "--device", "cpu", "--threads", "1",
            "--data-dir", str(tiny_data), "--out", str(tmp_path / "s"), "--valid-size", "100", "--tensorboard"]
    assert CliRunner().invoke(nasib_cli, args).exit_code == 0
    series = _scalars(tmp_path / "s" / "tb")
    epochs = [json.loads(x) for x in (tmp_path / "s" / "epochs.jsonl").read_text().splitlines()]
    for tag in ("valid_acc", "train_loss", "p_explore", "p2_entropy"):
        assert [s for s, _ in series[tag]] == [0, 1], tag
        assert [v for _, v in series[tag]] == pytest.approx([e[tag] for e in epochs], rel=1e-6), tag
    arch = str(tmp_path / "s" / "arch.json")
    res = CliRunner().invoke(retrain_cli, [arch, "--scale", "smoke", "--epochs", "1", "--device", "cpu",
                                           "--data-dir", str(tiny_data), "--valid-size", "100", "--test-size", "50",
                                           "--out", str(tmp_path / "r"), "--tensorboard"])
    assert res.exit_code == 0, res.output
    assert "train_loss" in _scalars(tmp_path / "r" / "tb")


def test_tensorboard_missing_is_one_line_before_anything_runs(tmp_path, tiny_data, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    monkeypatch.setenv("NASIB_TENSORBOARD", "0")
    res = CliRunner().invoke(nasib_cli, ["search", "--space", "narrow", "--data-dir", str(tiny_data),
                                         "--out", str(tmp_path / "t"), "--tensorboard"])
    assert res.exit_code == 2 and "needs the tensorboard package" in res.output
    assert sum(line.startswith("Error") for line in res.output.splitlines()) == 1
    assert not (tmp_path / "t").exists()
