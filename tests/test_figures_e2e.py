"""`make fig2 SCALE=smoke` end to end on generated data: trials, then the curve CSV, PNG and test."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nascore.synthetic import write_fake_cifar

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_fig2_smoke_writes_real_curves(tmp_path):
    data = write_fake_cifar(tmp_path / "data", n_train=900, n_test=100)
    results = tmp_path / "runs" / "smoke"  # make writes to RUNS/<scale>
    cmd = ["make", "-s", "fig2", "SCALE=smoke", "SEEDS=0,1", "DEVICE=cpu", "INSTALL=",
           f"PYTHON={sys.executable}", f"RUNS={tmp_path / 'runs'}", f"DATA={data}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    finals, curves = {}, {}
    labels = {"ENAS original": "enas-original", "ENAS extended": "enas-extended",
              "ENAS original (as-released)": "enas-original-released",
              "ENAS extended (as-released)": "enas-extended-released"}
    for label, prefix in labels.items():
        for seed in (0, 1):
            trial = results / "fig2" / f"{prefix}-s{seed}"
            res = json.loads((trial / "result.json").read_text())
            assert res["status"] == "ok" and res["epochs"] >= 1
            finals.setdefault(label, []).append(100 * res["final_valid_acc"])
            lines = (trial / "epochs.jsonl").read_text().splitlines()
            curves.setdefault(label, []).append([100 * json.loads(x)["valid_acc"] for x in lines])

    csv = pd.read_csv(results / "figures" / "fig2_curves.csv")
    acc = csv[csv["metric"] == "valid_acc"]
    assert set(acc["label"]) == set(labels)  # both spaces in both branch modes, never pooled
    assert (acc["n"] == 2).all()  # two seeds behind every point
    for label in labels:
        rows = acc[acc["label"] == label].sort_values("epoch")
        want = [sum(v) / 2 for v in zip(*curves[label], strict=True)]  # the mean of the two seeds' curves
        assert rows["mean"].tolist() == pytest.approx(want)
        assert (rows["ci_low"] <= rows["mean"]).all() and (rows["mean"] <= rows["ci_high"]).all()
    assert (results / "figures" / "fig2_curves.png").stat().st_size > 10_000

    test = json.loads((results / "figures" / "fig2_test.json").read_text())
    assert sorted(test["original"]["values"]) == pytest.approx(sorted(finals["ENAS original"]))
    assert test["mean_diff_points"] == pytest.approx(sum(finals["ENAS extended"]) / 2
                                                     - sum(finals["ENAS original"]) / 2)
    assert 0 <= test["welch"]["p_one_sided"] <= 1
    assert test["verdict"] in proc.stdout  # the verdict printed beside the data is the recorded one
