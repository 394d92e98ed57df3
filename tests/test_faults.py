"""Fault tolerance of the shared epoch driver: kill -9 and resume, torn records, stale locks, NaN."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nascore.lock import TrialLock, TrialLocked, read_owner
from nascore.loop import run_trial
from nascore.records import RecordError, Trial, read_json
from tests.faults.toy import ToySearcher, run

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("epoch_s", "wall_s")


def numbers(trial_dir: Path) -> list[dict]:
    """epochs.jsonl without the timing fields."""
    lines = (trial_dir / "epochs.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def start_toy(out: Path, epochs: int, sleep: float) -> subprocess.Popen:
    """Run the toy trial in a child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.faults.toy", str(out), str(epochs), "--sleep", str(sleep)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_lines(path: Path, n: int, timeout: float = 60) -> None:
    """Block until `path` has at least n lines."""
    end = time.time() + timeout
    while time.time() < end:
        if path.is_file() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted 8-epoch toy run."""
    out = tmp_path_factory.mktemp("ref") / "toy"
    run(out, 8)
    return out


@pytest.mark.parametrize("kill_after", [0, 1, 3, 6])
def test_kill9_and_resume_matches_uninterrupted(tmp_path, reference, kill_after):
    out = tmp_path / "toy"
    proc = start_toy(out, 8, sleep=0.15)
    if kill_after:
        wait_for_lines(out / "epochs.jsonl", kill_after)
    else:
        time.sleep(0.5)  # killed during start-up or the first epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "result.json").exists()
    run(out, 8)  # resume in-process; the dead holder's lock is taken over
    assert numbers(out) == numbers(reference)
    assert json.loads((out / "arch.json").read_text()) == json.loads((reference / "arch.json").read_text())
    assert read_json(out / "result.json", need_format=True)["status"] == "ok"


def test_torn_and_extra_lines_are_dropped_on_resume(tmp_path, reference):
    out = tmp_path / "toy"
    run(out, 3)
    ckpt = Trial(out).load_checkpoint()
    (out / "result.json").unlink()
    with open(out / "epochs.jsonl", "a") as f:  # an epoch past the checkpoint, then a torn line
        f.write(json.dumps({"epoch": 3, "train_loss": 9.9}) + "\n" + '{"epoch": 4, "tra')
    assert ckpt["epoch"] == 2
    run(out, 8)
    assert numbers(out) == numbers(reference)


def test_stale_lock_is_taken_over_and_live_lock_refused(tmp_path):
    trial = Trial(tmp_path / "t")
    trial.prepare()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (trial.path / ".lock").write_text(f"{socket.gethostname()} {int(dead.stdout)}")
    with TrialLock(trial):
        assert read_owner((trial.path / ".lock").read_text())["pid"] == os.getpid()
        with pytest.raises(TrialLocked, match="being run by"):
            TrialLock(trial).acquire()
    assert not (trial.path / ".lock").exists()


def test_nan_gives_diverged_and_keeps_last_checkpoint(tmp_path):
    out = tmp_path / "toy"
    res = run(out, 6, nan_at=3)
    assert res["status"] == "diverged" and res["diverged_epoch"] == 3
    assert "train_loss" in res["reason"]
    assert Trial(out).load_checkpoint()["epoch"] == 2
    assert len(numbers(out)) == 3
    assert read_json(out / "result.json", need_format=True)["status"] == "diverged"


def test_ctrl_c_keeps_checkpoint_and_resumes(tmp_path, reference):
    out = tmp_path / "toy"
    proc = start_toy(out, 8, sleep=0.15)
    wait_for_lines(out / "epochs.jsonl", 2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode != 0 and not (out / "result.json").exists()
    assert not (out / ".lock").exists()  # released on the way out
    run(out, 8)
    assert numbers(out) == numbers(reference)


def test_unwritable_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RecordError, match="cannot write to"):
        run_trial(Trial(blocker / "trial"), ToySearcher(1), {"config": {}})


def test_old_format_is_named(tmp_path):
    p = tmp_path / "result.json"
    p.write_text(json.dumps({"format": 0, "status": "ok"}))
    with pytest.raises(RecordError, match=str(p)):
        read_json(p, need_format=True)


def test_resume_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "toy"
    meta = {"trial_id": "toy", "family": "toy", "strategy": None, "space": "narrow",
            "config": {"epochs": 3, "data": {"data_dir": "a"}}}
    run_trial(Trial(out), ToySearcher(2), meta)
    (out / "result.json").unlink()  # as if killed after its last checkpoint
    moved = {**meta, "config": {"epochs": 3, "data": {"data_dir": "b"}}}  # the data moved: fine
    assert run_trial(Trial(out), ToySearcher(3), moved)["status"] == "ok"
    (out / "result.json").unlink()
    for changed, needle in [({**meta, "space": "superkernel"}, "space='narrow'"),
                            ({**meta, "config": {"epochs": 30, "data": {"data_dir": "a"}}}, "config.epochs=3")]:
        with pytest.raises(RecordError, match=needle) as e:
            run_trial(Trial(out), ToySearcher(3), changed)
        assert "--force" in str(e.value)
    assert not (out / ".lock").exists()
