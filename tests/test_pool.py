"""The pool launcher (--jobs N): the sequential launcher's records, failures kept apart, retrains after
their searches, Ctrl-C keeping checkpoints, slots sharing threads and GPUs. Real tiny ENAS trials."""
from __future__ import annotations

import _thread
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from experiments import launchers, pool
from experiments.__main__ import cli
from experiments.launchers import FAILED, OK, LocalLauncher, RunContext, run_one
from experiments.pool import PoolLauncher, plan_slots
from experiments.runner import expand, load_config
from nascore.intact import comparable_records
from nascore.records import Trial
from tests.test_faults import wait_for_lines

# Two tiny ENAS searches, one whose settings are refused (epochs 0), and a retrain of the first search.
CONFIG = """
name: tiny
description: tiny ENAS searches, a broken one and a retrain
seeds: [0, 1]
trials:
  - {{id: "enas-{{space}}-s{{seed}}", family: enas, space: original}}
  - {{id: "broken-s{{seed}}", family: enas, space: extended, overrides: {{epochs: 0}}}}
  - {{id: "retrain-s{{seed}}", family: retrain, space: original, source: "enas-{{space}}-s{{seed}}"}}
scales:
  smoke: {{base: smoke, overrides: {{enas: {{epochs: {epochs}, layers: 4, controller: {{train_steps: 2}},
                                            data: {{valid_size: 100, train_size: 200}}}},
                                     retrain: {{epochs: 1, channels: 4,
                                               data: {{valid_size: 100, train_size: 200}}}}}}}}
  quick: {{base: quick}}
  paper: {{base: paper}}
"""
# Fields that measure time, or name the command and folder a run came from: the rest must match.


def tiny_config(tmp_path: Path, epochs: int = 2) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG.format(epochs=epochs))
    return path


def _run(results: Path, config: Path, data: Path, *extra: str):
    args = ["run", str(config), "--scale", "smoke", "--results", str(results), "--device", "cpu",
            "--deterministic", "--threads", "1", "--data-dir", str(data), *extra]
    return CliRunner().invoke(cli, args)


def test_jobs_2_writes_the_records_of_jobs_1_and_a_failure_stops_nothing(tmp_path, tiny_data):
    config = tiny_config(tmp_path)
    one = _run(tmp_path / "one", config, tiny_data, "--jobs", "1")
    two = _run(tmp_path / "two", config, tiny_data, "--jobs", "2")
    for res in (one, two):  # the broken trials fail; the searches and retrains still run; exit 1 at the end
        assert res.exit_code == 1, res.output
        assert "6 trial(s): 4 ok, 2 failed" in res.output
        assert "2 trial(s) failed: tiny/broken-s0, tiny/broken-s1" in res.output
    assert "pool: 2 trial(s) at once, 1 torch thread(s) each" in two.output
    got, want = comparable_records(tmp_path / "two"), comparable_records(tmp_path / "one")
    assert "tiny/retrain-s1/result.json" in want and "tiny/enas-original-s0/arch.json" in want
    assert got == want


def plans_of(tmp_path: Path, results: Path, epochs: int = 2, seeds=(0,)):
    return expand(load_config(tiny_config(tmp_path, epochs)), "smoke", results, seeds)


def trial_fn(data: Path):
    """What `experiments run` hands a launcher: picklable, so worker processes can run it."""
    ctx = RunContext(device="cpu", data_dir=str(data), deterministic=True)
    return functools.partial(run_one, ctx=ctx, methods=launchers.METHODS)


def test_a_retrain_waits_for_its_search(tmp_path, tiny_data):
    # Two slots, one search and its retrain: started at once, the retrain would find no arch.json.
    plans = [p for p in plans_of(tmp_path, tmp_path / "r", epochs=3) if not p.trial_id.startswith("broken")]
    assert [p.family for p in plans] == ["enas", "retrain"]
    outcomes = PoolLauncher(2, "1", "cpu").run(plans, trial_fn(tiny_data))
    assert [o.status for o in outcomes] == [OK, OK], [o.detail for o in outcomes]
    search_end = (plans[0].folder / "result.json").stat().st_mtime
    assert Trial(plans[1].folder).read_epochs() and (plans[1].folder / "config.json").stat().st_mtime >= search_end


def _toy(plan, ctx):
    """A method without torch (workers import it from this module): seed 1's worker dies mid-trial."""
    if plan.seed == 1:
        os._exit(3)
    plan.folder.mkdir(parents=True, exist_ok=True)
    (plan.folder / "config.json").write_text(json.dumps({"format": 1, "preset": plan.scale}))
    result = {"format": 1, "status": "ok", "epochs": 1}
    (plan.folder / "result.json").write_text(json.dumps(result))
    return result


def test_a_worker_that_dies_fails_its_trial_only(tmp_path):
    plans = [p for p in plans_of(tmp_path, tmp_path / "r", seeds=(0, 1, 2, 3)) if p.trial_id.startswith("enas")]
    fn = functools.partial(run_one, ctx=RunContext(device="cpu"), methods={"enas": _toy})
    outcomes = PoolLauncher(2, "1", "cpu").run(plans, fn)
    assert [o.status for o in outcomes] == [OK, FAILED, OK, OK]
    assert "worker process died" in outcomes[1].detail


def test_ctrl_c_stops_every_trial_at_its_checkpoint(tmp_path, tiny_data):
    plans = [p for p in plans_of(tmp_path, tmp_path / "r", epochs=20, seeds=(0, 1)) if p.family == "enas"
             and not p.trial_id.startswith("broken")]

    def press_ctrl_c():
        for p in plans:
            wait_for_lines(p.folder / "epochs.jsonl", 1, timeout=300)
        _thread.interrupt_main()  # what Ctrl-C does to the runner

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises((KeyboardInterrupt, RuntimeError)) as err:
        PoolLauncher(2, "1", "cpu").run(plans, trial_fn(tiny_data))
    assert err.type is KeyboardInterrupt or launchers.is_interrupt(err.value)
    for p in plans:  # both stopped with a checkpoint, let go of their folder, and did not finish
        assert (p.folder / "checkpoint.pt").is_file() and not (p.folder / "result.json").exists()
        assert not (p.folder / ".lock").exists()
        assert 1 <= len(Trial(p.folder).read_epochs()) < 20
    again = LocalLauncher().run(plans[:1], trial_fn(tiny_data))  # the same command again resumes it
    assert [o.status for o in again] == [OK]
    assert [r["epoch"] for r in Trial(plans[0].folder).read_epochs()] == list(range(20))


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc: the kit needs no psutil)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        kids = {c for c, p in parents.items() if p == todo[-1]}
        todo.pop()
        todo += sorted(kids - found)
        found |= kids
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process parents from /proc")
def test_sigterm_to_the_runner_stops_every_trial_at_its_checkpoint(tmp_path, tiny_data):
    config = tiny_config(tmp_path, epochs=10)
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if "broken-" not in line and "retrain-" not in line))  # two searches only
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "experiments", "run", str(config), "--scale", "smoke", "--results", str(results),
           "--device", "cpu", "--deterministic", "--threads", "1", "--data-dir", str(tiny_data), "--jobs", "2"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    log = tmp_path / "runner.err"  # a file, not a pipe: an orphan holding a pipe would hide the runner's exit
    with open(log, "w") as err_file:
        runner = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err_file, text=True)
    folders, children = [results / "tiny" / f"enas-original-s{seed}" for seed in (0, 1)], set()
    try:
        for folder in folders:  # both past their first checkpoint (an epoch's line lands just before it)
            wait_for_lines(folder / "epochs.jsonl", 2, timeout=300)
        children = _descendants(runner.pid)
        assert len(children) >= 2  # the two workers (and whatever multiprocessing adds)
        runner.send_signal(signal.SIGTERM)  # `kill <runner pid>`
        runner.wait(timeout=120)
        end = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < end:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], "a trial outlived its runner"
    finally:  # a failing run leaves nothing behind
        for pid in [runner.pid, *children]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert runner.returncode != 0
    assert [line for line in log.read_text().splitlines() if line.startswith("Error:")] == [
        "Error: interrupted; finished trials are kept and the interrupted one resumes from its checkpoint: "
        "run the same command again"]
    for folder in folders:  # both stopped at a checkpoint and let go of their folder
        assert (folder / "checkpoint.pt").is_file() and not (folder / "result.json").exists()
        assert not (folder / ".lock").exists()
        assert 1 <= len(Trial(folder).read_epochs()) < 10
    again = _run(results, config, tiny_data, "--jobs", "2")  # the same command again resumes both
    assert again.exit_code == 0, again.output
    for folder in folders:
        assert [r["epoch"] for r in Trial(folder).read_epochs()] == list(range(10))


def test_slots_split_the_cores_and_deal_gpus_round_robin(monkeypatch):
    monkeypatch.setattr(pool, "cores", lambda: 16)
    assert [s.threads for s in plan_slots(4, "auto", [])] == [4] * 4
    assert [s.threads for s in plan_slots(3, "2", [])] == [2] * 3  # --threads given: each trial gets it
    assert [s.threads for s in plan_slots(32, "auto", [])] == [1] * 32
    gpus = [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_slots(5, "auto", ["0", "1"])]
    assert gpus == ["0", "1", "0", "1", "0"]
    assert plan_slots(2, "auto", [])[0].env == {}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert pool.visible_gpus("auto") == ["3", "5"] and pool.visible_gpus("cuda:1") == []
    assert pool.visible_gpus("cpu") == []


def test_jobs_is_a_local_option_and_must_be_positive(tmp_path):
    res = CliRunner().invoke(cli, ["run", "fig2", "--scale", "smoke", "--jobs", "0", "--dry-run",
                                   "--results", str(tmp_path)])
    assert res.exit_code == 2 and "--jobs" in res.output
    with pytest.raises(ValueError, match="--jobs is for the local launcher"):
        launchers.get_launcher("ray", jobs=2)
    assert isinstance(launchers.get_launcher("local", jobs=3), PoolLauncher)
    assert type(launchers.get_launcher("local", jobs=1)) is LocalLauncher
    outcome = PoolLauncher(2).run([], trial_fn(tmp_path))
    assert outcome == [] and FAILED == "failed"
