"""The Ray launcher on a real local Ray (2 CPU workers) against the local one; its options."""
from __future__ import annotations

import _thread
import os
import signal
import socket
import threading
from pathlib import Path

import pytest

from experiments import launchers
from experiments.launchers import (
    FAILED,
    OK,
    LocalLauncher,
    RunContext,
    get_launcher,
    run_one,
)
from experiments.ray_launcher import RayLauncher
from experiments.runner import expand, load_config
from nascore.lock import read_owner
from nascore.records import Trial
from tests.test_faults import numbers, wait_for_lines

# Two tiny ENAS searches and one whose settings are refused (epochs 0): a failure among successes.
CONFIG = """
name: tiny
description: two tiny ENAS searches and a broken one
seeds: [0, 1]
trials:
  - {{id: "enas-{{space}}-s{{seed}}", family: enas, space: original}}
  - {{id: "broken-s{{seed}}", family: enas, space: extended, overrides: {{epochs: 0}}}}
scales:
  smoke: {{base: smoke, overrides: {{enas: {{epochs: {epochs}, layers: 4, controller: {{train_steps: 2}},
                                            data: {{valid_size: 100, train_size: 200}}}}}}}}
  quick: {{base: quick}}
  paper: {{base: paper}}
"""


def plans_of(tmp_path: Path, results: Path, epochs: int = 2, seeds=(0, 1)):
    """The tiny config's smoke plans, writing into `results`."""
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG.format(epochs=epochs))
    return expand(load_config(path), "smoke", results, seeds)


def runner(ctx: RunContext):
    """What `experiments run` hands a launcher."""
    return lambda plan: run_one(plan, ctx, launchers.METHODS)


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray with 2 CPUs for the module (starting Ray costs seconds on a small machine)."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install '.[ray]')")
    root = str(Path(__file__).resolve().parents[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": root, "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def ctx_for(data: Path) -> RunContext:
    """Deterministic CPU runs on the tiny data."""
    return RunContext(device="cpu", data_dir=str(data), deterministic=True)


def test_ray_gives_the_local_records_and_a_failure_stops_nothing(ray_cluster, tmp_path, tiny_data):
    local_plans, ray_plans = plans_of(tmp_path, tmp_path / "local"), plans_of(tmp_path, tmp_path / "ray")
    local = LocalLauncher().run(local_plans, runner(ctx_for(tiny_data)))
    remote = RayLauncher(cpus_per_trial=1).run(ray_plans, runner(ctx_for(tiny_data)))
    assert [o.plan.key for o in remote] == [p.key for p in ray_plans]  # plan order, not finishing order
    assert [o.status for o in remote] == [o.status for o in local] == [OK, OK, FAILED, FAILED]
    assert "epochs must be positive" in remote[2].detail
    for lo, ro in zip(local, remote, strict=True):
        if lo.status == OK:
            assert numbers(ro.plan.folder) == numbers(lo.plan.folder)
            assert ro.result["best_valid_acc"] == lo.result["best_valid_acc"]


def test_a_killed_worker_is_retried_and_its_trial_resumes(ray_cluster, tmp_path, tiny_data):
    ref = plans_of(tmp_path, tmp_path / "ref", epochs=4, seeds=(0,))[0]
    cut = plans_of(tmp_path, tmp_path / "cut", epochs=4, seeds=(0,))[0]
    LocalLauncher().run([ref], runner(ctx_for(tiny_data)))
    got = []
    thread = threading.Thread(target=lambda: got.extend(RayLauncher().run([cut], runner(ctx_for(tiny_data)))))
    thread.start()
    wait_for_lines(cut.folder / "epochs.jsonl", 2, timeout=300)
    owner = read_owner((cut.folder / ".lock").read_text())
    host, pid = owner["host"], owner["pid"]
    assert host == socket.gethostname() and int(pid) != os.getpid()  # the trial runs in a Ray worker
    os.kill(int(pid), signal.SIGKILL)
    thread.join(timeout=600)
    assert [o.status for o in got] == [OK]
    assert numbers(cut.folder) == numbers(ref.folder)


def test_ctrl_c_cancels_the_trials_and_keeps_their_checkpoints(ray_cluster, tmp_path, tiny_data):
    # 20 short epochs: Ctrl-C after the first leaves a wide margin before the last (8 was once too few).
    plans = plans_of(tmp_path, tmp_path / "r", epochs=20, seeds=(0, 1))[:2]

    def press_ctrl_c():
        wait_for_lines(plans[0].folder / "epochs.jsonl", 1, timeout=300)
        _thread.interrupt_main()  # what Ctrl-C does to the driver

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        RayLauncher().run(plans, runner(ctx_for(tiny_data)))
    first = plans[0].folder
    assert (first / "checkpoint.pt").is_file() and not (first / "result.json").exists()
    assert not (first / ".lock").exists()  # the cancelled trial let go of its folder
    assert 1 <= len(Trial(first).read_epochs()) < 20
    again = LocalLauncher().run(plans[:1], runner(ctx_for(tiny_data)))  # the same command, run again
    assert [o.status for o in again] == [OK]
    assert [r["epoch"] for r in Trial(first).read_epochs()] == list(range(20))


def test_launcher_options_and_a_missing_ray_are_one_line_errors(monkeypatch):
    with pytest.raises(ValueError, match="--gpus-per-trial is a ray launcher option"):
        get_launcher("local", gpus_per_trial=0.25)
    with pytest.raises(ValueError, match="unknown launcher 'slurm'; valid: local, ray"):
        get_launcher("slurm")
    with pytest.raises(ValueError, match="--gpus-per-trial 1.5: give a fraction up to 1 or a whole number"):
        get_launcher("ray", gpus_per_trial=1.5)
    with pytest.raises(ValueError, match="--cpus-per-trial 0: must be above 0"):
        get_launcher("ray", cpus_per_trial=0)
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ValueError, match=r"needs Ray: pip install"):
        get_launcher("ray").run([], lambda plan: None)
