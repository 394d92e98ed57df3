"""A fresh clone's first commands (issue 19): `make fig2`, `make fig2 SCALE=smoke` and a paper dry run
neither refuse nor touch the shipped records in results/reference/, and a stray trial (a demo) never
enters the scorecard."""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.claims import run_claims
from analysis.records import load_trials
from nascore.synthetic import write_fake_cifar

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference" / "smoke"
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def tracked_files() -> list[str]:
    """The paths a clone holds: git's tracked files that exist in this checkout."""
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        pytest.skip("not a git checkout: cannot tell which files a clone holds")
    return [p for p in proc.stdout.split("\0") if p and (ROOT / p).is_file()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The tracked files copied into a new folder: a clone without .git (and without .venv, data, runs)."""
    dest = tmp_path_factory.mktemp("clone") / "kit"
    for rel in tracked_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    return dest


def digest(folder: Path) -> str:
    """One hash over every file's path and bytes under a folder."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def run(cmd: list[str], cwd: Path, timeout: int = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_shipped_records_are_where_the_runner_never_writes_by_default(clone):
    assert (clone / "results" / "reference" / "smoke" / "fig2" / "trials.json").is_file()
    assert not (clone / "results" / "fig2").exists()
    ignored = (clone / ".gitignore").read_text().splitlines()
    assert "/runs/" in ignored


def test_a_paper_dry_run_on_a_fresh_clone_has_no_conflict_and_writes_nothing(clone):
    before = digest(clone / "results")
    proc = run([sys.executable, "-m", "experiments", "run", "fig2", "--scale", "paper", "--dry-run"], clone)
    assert proc.returncode == 0, proc.stderr
    assert "12 trial(s) at scale paper, 0 conflict(s)" in proc.stdout
    assert digest(clone / "results") == before and not (clone / "runs").exists()


@needs_make
def test_make_fig2_writes_to_runs_and_its_run_is_not_refused(clone):
    proc = run(["make", "-n", "-s", "fig2", "INSTALL=", "PYTHON=python"], clone)
    assert proc.returncode == 0, proc.stderr
    lines = [shlex.split(line) for line in proc.stdout.splitlines() if line.startswith("python ")]
    runner = next(words for words in lines if words[1:4] == ["-m", "experiments", "run"])
    assert runner[runner.index("--results") + 1] == "runs/quick"
    readers = [words for words in lines if words[2].startswith("analysis")]
    assert readers and all(words[3] == "runs/quick" for words in readers)  # figures from the user's runs
    before = digest(clone / "results")
    proc = run([sys.executable, *runner[1:], "--dry-run"], clone)
    assert proc.returncode == 0, proc.stderr
    assert "0 conflict(s)" in proc.stdout and digest(clone / "results") == before


@pytest.mark.slow  # 4 smoke ENAS trials: about 1 CPU-minute idle, 6 on the shared 2-core machine
@needs_make
def test_make_fig2_smoke_runs_apart_from_the_shipped_records(clone, tmp_path):
    data = write_fake_cifar(tmp_path / "data", n_train=900, n_test=100)
    before = digest(clone / "results")
    cmd = ["make", "-s", "fig2", "SCALE=smoke", "SEEDS=0", "DEVICE=cpu", "THREADS=1", "JOBS=2", "INSTALL=",
           f"PYTHON={sys.executable}", f"RUNS={tmp_path / 'runs'}", f"DATA={data}"]
    proc = run(cmd, clone, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    runs = tmp_path / "runs" / "smoke"
    assert json.loads((runs / "fig2" / "enas-original-s0" / "result.json").read_text())["status"] == "ok"
    assert (runs / "figures" / "claims.json").is_file() and (runs / "figures" / "fig2_curves.png").is_file()
    assert digest(clone / "results") == before  # not one byte of the shipped records changed


def _stray_demo(root: Path) -> Path:
    """A hand-run NASIB-2 search under the tree (as `make demo` once wrote): no experiment, other ops."""
    demo = root / "demo" / "nasib-superkernel-b90s-s0"
    shutil.copytree(root / "fig3" / "nasib-superkernel-s0", demo)
    for name, key in (("config.json", "experiment"), ("result.json", "arch"), ("arch.json", "ops")):
        record = json.loads((demo / name).read_text())
        record[key] = None if key == "experiment" else ["sep3x3"] * 6
        (demo / name).write_text(json.dumps(record))
    return demo


def test_a_stray_trial_never_enters_the_scorecard(tmp_path):
    root = tmp_path / "smoke"
    shutil.copytree(REFERENCE, root, ignore=shutil.ignore_patterns("figures", "tables", "inventory.*"))
    run_claims(root, tmp_path / "before")
    demo = _stray_demo(root)
    run_claims(root, tmp_path / "after")
    before, after = ((tmp_path / d / "figures" / "claims.json").read_text() for d in ("before", "after"))
    assert after == before
    trials = load_trials(root)
    assert [t.path for t in trials.strays] == [demo] and "left out 1 no manifest names" in trials.summary()
