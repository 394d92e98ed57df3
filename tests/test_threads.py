"""CPU threads: one rule (cores not already busy) for make, the runner and commands typed by hand,
an explicit --threads everywhere, and the count recorded in each trial's config.json."""
from __future__ import annotations

import json
import os

import pytest
import torch
from click.testing import CliRunner

from contract import threads
from retraining.__main__ import cli as retrain_cli

ARCH = {"space": "superkernel", "method": "nasib", "layers": 4, "channels": 8,
        "ops": ["conv2x3", "sep7x1", "identity", "maxpool3x3"]}


@pytest.mark.parametrize("cores, load, expected", [(2, 0.0, 2), (2, 1.1, 1), (2, 5.0, 1), (16, 3.4, 13)])
def test_default_is_the_cores_not_busy(monkeypatch, cores, load, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert threads.default_threads() == expected


def test_parse_threads(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    assert threads.parse_threads("auto") is None and threads.parse_threads(None) is None
    assert threads.parse_threads("3") == 3 and threads.parse_threads("4") == 4
    for bad in ("0", "-1", "two", "1.5", "5"):  # 5: more threads than the 4 cores only slow torch down
        with pytest.raises(ValueError, match="--threads"):
            threads.parse_threads(bad)


def test_retrain_records_the_thread_count_it_ran_with(tmp_path, tiny_data):
    src = tmp_path / "s" / "arch.json"
    src.parent.mkdir()
    src.write_text(json.dumps(ARCH))
    out = tmp_path / "r"
    args = [str(src), "--scale", "smoke", "--epochs", "1", "--device", "cpu", "--data-dir", str(tiny_data),
            "--valid-size", "50", "--test-size", "50", "--out", str(out), "--threads", "2"]
    res = CliRunner().invoke(retrain_cli, args)
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == 2
    assert json.loads((out / "config.json").read_text())["provenance"]["torch_threads"] == 2


def test_bad_thread_count_is_one_line(tmp_path):
    res = CliRunner().invoke(retrain_cli, [str(tmp_path / "a.json"), "--out", str(tmp_path / "o"),
                                           "--threads", "zero"])
    assert res.exit_code == 2 and "--threads 'zero'" in res.output and "Traceback" not in res.output
