"""--force and --out: a running trial, bad input or a folder that is not a trial is never moved or written."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from contract.budget import BudgetError
from contract.errors import OutOfMemory
from enas_ext.search import search_trial as enas_trial
from nascore import lock as lockmod
from nascore import recipe
from nascore.data import DataConfig, DataError
from nascore.lock import TrialLocked
from nascore.loop import RunSpec
from nascore.records import RecordError, Trial
from nasib.__main__ import cli as nasib_cli
from nasib.search import search_trial as nasib_trial
from tests.test_enas_search import tiny
from tests.test_faults import wait_for_lines

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"valid_size": 100, "train_size": 160}  # as tests/test_nasib_search.py: a second per epoch


def spec(out: Path, data: Path, force: bool = False, device: str = "cpu") -> RunSpec:
    """A CPU run of one trial into `out`."""
    return RunSpec(out=out, device=device, data=DataConfig(data_dir=str(data)), deterministic=True, force=force)


def enas(out: Path, data: Path, space: str = "original", **kw) -> dict | None:
    """A one-epoch tiny ENAS search (about a second)."""
    return enas_trial(spec(out, data, **kw), space, "smoke", tiny(1))


def nasib(out: Path, data: Path, over: dict | None = None, **kw) -> dict | None:
    """A tiny NASIB search: one epoch unless `over` says otherwise."""
    return nasib_trial(spec(out, data, **kw), "narrow", "smoke", {"epochs": 1, "data": SMALL, **(over or {})})


def fake_finished(folder: Path, **settings) -> Path:
    """A finished NASIB trial's records written by hand (no training): config, one epoch line, result."""
    folder.mkdir(parents=True)
    conf = {"format": 1, "trial_id": folder.name, "method": "nasib", "space": "narrow", "preset": "smoke",
            "budget_s": None, **settings}
    (folder / "config.json").write_text(json.dumps(conf))
    (folder / "epochs.jsonl").write_text(json.dumps({"epoch": 0, "valid_acc": 0.5}) + "\n")
    (folder / "result.json").write_text(json.dumps({"format": 1, "status": "ok", "epochs": 1}))
    return folder


def files(folder: Path) -> dict[str, bytes]:
    """Every file under the folder's parent, with its bytes: what a refusal must leave unchanged."""
    return {str(p.relative_to(folder.parent)): p.read_bytes() for p in sorted(folder.parent.rglob("*"))
            if p.is_file()}


def test_force_on_a_running_trial_is_refused_and_its_records_intact(tmp_path, tiny_data):
    out = tmp_path / "toy"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.faults.toy", str(out), "6", "--sleep", "0.3"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_lines(out / "epochs.jsonl", 1)
        with pytest.raises(TrialLocked, match=f"being run by .* pid {proc.pid};"):
            nasib(out, tiny_data, force=True)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert not list(tmp_path.glob("toy.old-*"))  # nothing moved from under the running trial
    lines = [json.loads(x) for x in (out / "epochs.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(6))
    assert json.loads((out / "result.json").read_text())["epochs"] == 6


@pytest.mark.parametrize("case", ["missing data", "unknown device", "no cuda", "budget too small"])
def test_force_with_bad_input_leaves_the_folder_where_it_was(tmp_path, tiny_data, case):
    if case == "no cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = fake_finished(tmp_path / "t")
    before = files(out)
    data, device, over, error = tiny_data, "cpu", None, None
    if case == "missing data":
        data, error = tmp_path / "nowhere", DataError
    elif case in ("unknown device", "no cuda"):
        device, error = ("tpu" if case == "unknown device" else "cuda"), ValueError
    else:
        over, error = {"epochs": None, "budget": "1s", "data": SMALL}, BudgetError
    with pytest.raises(error):
        nasib(out, data, over, force=True, device=device)
    assert files(out) == before  # nothing moved aside, nothing written, the lock file gone again


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_that_is_not_a_trial_is_never_written_or_moved(tmp_path, tiny_data, force):
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    (mine / "config.json").write_text('{"theme": "dark"}')  # a config.json, but not one of ours
    (mine / "result.json").write_text('"format: A4"')  # JSON, but no record
    before = files(mine)
    with pytest.raises(RecordError, match="not a trial's.*nothing was written or moved"):
        enas(mine, tiny_data, force=force)
    assert files(mine) == before


@pytest.mark.parametrize("where", ["empty", "data root", "above the data root", "kit checkout"])
def test_an_out_that_is_empty_the_data_or_the_kit_is_refused(tiny_data, where):
    out = {"empty": Path(""), "data root": tiny_data, "above the data root": tiny_data.parent,
           "kit checkout": ROOT}[where]
    before = files(tiny_data / "x")
    with pytest.raises(RecordError, match="--out"):
        enas(out, tiny_data, force=True)
    assert files(tiny_data / "x") == before and not (ROOT / "config.json").exists()


def test_cli_out_empty_is_one_line(tmp_path, tiny_data):
    res = CliRunner().invoke(nasib_cli, ["search", "--space", "narrow", "--scale", "smoke", "--epochs", "1",
                                         "--device", "cpu", "--data-dir", str(tiny_data), "--out", ""])
    assert res.exit_code == 1 and "--out is empty" in res.output and "Traceback" not in res.output


def test_a_finished_trial_with_other_settings_is_refused_not_skipped(tmp_path, tiny_data):
    out = tmp_path / "t"
    assert enas(out, tiny_data)["status"] == "ok"
    assert enas(out, tiny_data) is None  # same settings: skipped
    with pytest.raises(RecordError, match="space='original'.*asks space='extended'.*--force"):
        enas(out, tiny_data, space="extended")
    with pytest.raises(RecordError, match="family='enas'.*asks family='nasib'.*--force"):
        nasib(out, tiny_data)
    assert enas(out, tiny_data, space="extended", force=True)["status"] == "ok"
    old = list(tmp_path.glob("t.old-*"))
    assert len(old) == 1 and json.loads((old[0] / "config.json").read_text())["space"] == "original"
    assert not (old[0] / ".lock").exists() and not (out / ".lock").exists()


def test_a_finished_budgeted_trial_asked_with_another_budget_is_refused(tmp_path, tiny_data):
    out = fake_finished(tmp_path / "t", budget_s=60.0, budget_label="60s")
    with pytest.raises(RecordError, match="budget_s=60.0, this run asks budget_s=120.0"):
        nasib(out, tiny_data, {"epochs": None, "budget": "120s", "data": SMALL})
    with pytest.raises(RecordError, match="scale='smoke'"):
        nasib_trial(spec(out, tiny_data), "narrow", "quick", {"budget": "60s"})


def test_a_name_too_long_to_move_aside_is_one_line(tmp_path, tiny_data):
    out = fake_finished(tmp_path / ("n" * 245))
    before = files(out)
    with pytest.raises(RecordError, match="cannot be moved aside"):
        nasib(out, tiny_data, force=True)
    assert files(out) == before


def test_a_read_only_disk_under_force_is_one_line(tmp_path, tiny_data, monkeypatch):
    out = fake_finished(tmp_path / "t")
    before = files(out)

    def read_only(self):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Trial, "archive", read_only)
    with pytest.raises(RecordError, match="cannot move .* aside: Read-only file system; it was left where it was"):
        nasib(out, tiny_data, force=True)
    assert files(out) == before
    real_open = os.open
    monkeypatch.setattr(lockmod.os, "open", lambda path, *a: (_ for _ in ()).throw(
        OSError(errno.EROFS, "Read-only file system")) if str(path).endswith(".lock") else real_open(path, *a))
    with pytest.raises(RecordError, match="cannot write to .*: Read-only file system"):
        nasib(out, tiny_data, force=True)


@pytest.mark.parametrize("folder", ["new", "checkpointed", "finished, forced"])
def test_ctrl_c_during_start_up_exits_130_saying_what_was_kept(tmp_path, tiny_data, monkeypatch, folder):
    out, extra = tmp_path / "t", []
    if folder != "new":
        fake_finished(out)
    if folder == "checkpointed":
        (out / "result.json").unlink()
        (out / "checkpoint.pt").write_bytes(b"a checkpoint")
    if folder == "finished, forced":
        extra = ["--force"]
    before = files(out) if out.exists() else None

    def ctrl_c(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "load_splits", ctrl_c)
    res = CliRunner().invoke(nasib_cli, ["search", "--space", "narrow", "--scale", "smoke", "--epochs", "1",
                                         "--device", "cpu", "--data-dir", str(tiny_data), "--out", str(out), *extra])
    assert res.exit_code == 130, res.output
    said = {"new": f"no checkpoint was written to {out}", "checkpointed": f"{out} keeps its last checkpoint",
            "finished, forced": f"{out} is finished (result.json)"}[folder]
    assert f"interrupted during start-up; {said}" in res.output
    assert (files(out) if out.exists() else None) == before  # a fresh run writes no folder; nothing moved


def test_retraining_gets_the_out_of_memory_hint_too(tmp_path, tiny_data, monkeypatch):
    from retraining.train import Retrain, retrain_trial
    from tests.test_retraining import NASIB_ARCH

    def boom(self, epoch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(Retrain, "run_epoch", boom)
    (tmp_path / "arch.json").write_text(json.dumps(NASIB_ARCH))
    with pytest.raises(OutOfMemory) as err:
        retrain_trial(spec(tmp_path / "r", tiny_data), tmp_path / "arch.json", "smoke",
                      {"epochs": 1, "data": {"valid_size": 100, "test_size": 100}})
    assert "batch size" in err.value.hint and "with 4 layers" in err.value.hint
