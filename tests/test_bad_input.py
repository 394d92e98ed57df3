"""What a hurried user types, one row each: one clear line naming the offending thing, no traceback,
the right exit status, and nothing already written lost."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from analysis.__main__ import cli as analysis_cli
from benchmarks.__main__ import main as bench_cli
from enas_ext.__main__ import cli as enas_cli
from experiments.__main__ import cli as experiments_cli
from nasib.__main__ import cli as nasib_cli
from retraining.__main__ import cli as retrain_cli

RESULTS = Path(__file__).resolve().parent.parent / "results"
ARCH = {"space": "extended", "method": "enas", "layers": 2, "channels": 8, "ops": ["conv3x3", "conv1x3"],
        "skips": [[], [1]]}


def _fig2_copy(tmp: Path) -> Path:
    """A copy of the committed fig2 records (the analysis reads them; the copy may be damaged)."""
    shutil.copytree(RESULTS / "reference" / "smoke" / "fig2", tmp / "r" / "fig2")
    return tmp / "r"


def _arch(tmp: Path, **change) -> str:
    """An arch.json with some keys changed (None removes a key)."""
    arch = {k: v for k, v in {**ARCH, **change}.items() if v is not None}
    path = tmp / "s" / "arch.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(arch))
    return str(path)


def _epochs_garbage(tmp: Path) -> list[str]:
    root = _fig2_copy(tmp)
    (root / "fig2" / "enas-extended-s0" / "epochs.jsonl").write_bytes(b"\xff\xfe\x00 not text")
    return ["curves", str(root), "--figure", "fig2"]


def _epochs_missing(tmp: Path) -> list[str]:
    root = _fig2_copy(tmp)
    (root / "fig2" / "enas-original-s1" / "epochs.jsonl").unlink()
    return ["curves", str(root), "--figure", "fig2"]


def _retrain(tmp: Path, **change) -> list[str]:
    return [_arch(tmp, **change), "--scale", "smoke", "--out", str(tmp / "out"), "--device", "cpu"]


# (name, command, args or a function of tmp_path giving them, exit status, text of the one line)
CASES = [
    ("budget too large to plan", nasib_cli, ["plan", "--space", "narrow", "--scale", "smoke",
                                             "--budget", "1000000000d"], 2, "more than the planner takes"),
    ("budget below zero", nasib_cli, ["plan", "--space", "narrow", "--budget", "-5m"], 2, "more than zero"),
    ("budget without a number", nasib_cli, ["plan", "--space", "narrow", "--budget", "fast"], 2,
     "cannot read budget 'fast'"),
    ("benchmarks on a missing GPU", bench_cli, ["--device", "cuda", "--out", "{tmp}/b"], 2,
     "CUDA is not available"),
    ("benchmarks on an unknown device", bench_cli, ["--device", "gpu", "--out", "{tmp}/b"], 2,
     "unknown device 'gpu'"),
    ("benchmarks with a malformed budget list", bench_cli, ["--device", "cpu", "--fidelity", "30,abc",
                                                            "--out", "{tmp}/b"], 2, "cannot read budget 'abc'"),
    ("epochs.jsonl that cannot be read", analysis_cli, _epochs_garbage, 1,
     "enas-extended-s0/epochs.jsonl: cannot read"),
    ("epochs.jsonl missing: named and counted", analysis_cli, _epochs_missing, 0,
     "1 without epochs.jsonl (no curve): fig2/enas-original-s1"),
    ("analysis of a folder that is not there", analysis_cli, ["all", "{tmp}/nowhere"], 1, "does not exist"),
    ("analysis output under a file", analysis_cli, lambda t: ["claims", str(_fig2_copy(t)), "--out",
                                                              str(RESULTS / "README.md")], 1, "cannot write"),
    ("arch.json channels as text", retrain_cli, lambda t: _retrain(t, channels="12"), 2,
     "arch.json: key 'channels': expected a positive integer, got '12'"),
    ("arch.json zero layers", retrain_cli, lambda t: _retrain(t, layers=0), 2, "key 'layers'"),
    ("arch.json layers not matching ops", retrain_cli, lambda t: _retrain(t, layers=3), 2,
     "key 'layers': 3 but 'ops' lists 2"),
    ("arch.json skips of the wrong shape", retrain_cli, lambda t: _retrain(t, skips=[[], [1, 0]]), 2,
     "key 'skips'"),
    ("arch.json skip of 0.5", retrain_cli, lambda t: _retrain(t, skips=[[], [0.5]]), 2, "key 'skips'"),
    ("arch.json op outside its space", retrain_cli, lambda t: _retrain(t, ops=["conv3x3", "conv9x9"]), 2,
     "key 'ops'[1]: 'conv9x9' is not an op of space 'extended'"),
    ("arch.json unknown space", retrain_cli, lambda t: _retrain(t, space="huge"), 2, "key 'space': 'huge'"),
    ("arch.json unknown key (a typo is not ignored)", retrain_cli, lambda t: _retrain(t, chanels=8), 2,
     "unknown key 'chanels'"),
    ("runner: results root is a file", experiments_cli, ["run", "fig2", "--scale", "smoke", "--results",
                                                         str(RESULTS / "README.md")], 2, "is a file"),
    ("runner: unknown launcher", experiments_cli, ["run", "fig2", "--launcher", "slurm", "--dry-run"], 2,
     "unknown launcher 'slurm'"),
    ("runner: scale in capitals", experiments_cli, ["run", "fig2", "--scale", "Paper", "--dry-run"], 2,
     "'Paper' is not one of 'smoke', 'quick', 'paper'"),
    ("runner: zero threads", experiments_cli, ["run", "fig2", "--threads", "0", "--dry-run"], 2, "--threads '0'"),
    ("search: threads in words", nasib_cli, ["plan", "--space", "narrow", "--budget", "90s", "--threads", "two"], 2,
     "--threads 'two'"),
    ("runner: empty seed", experiments_cli, ["run", "fig2", "--seeds", "0,,1", "--dry-run"], 2, "--seeds '0,,1'"),
    # The same rule in every command, checked before torch or the data load: seeds, threads, devices, spaces.
    ("enas: seed below zero", enas_cli, ["search", "--seed", "-1", "--out", "{tmp}/o"], 2, "'--seed': -1"),
    ("nasib: seed below zero", nasib_cli, ["search", "--space", "narrow", "--seed", "-1", "--out", "{tmp}/o"], 2,
     "'--seed': -1"),
    ("plan: seed below zero", nasib_cli, ["plan", "--budget", "1h", "--seed", "-3"], 2, "'--seed': -3"),
    ("retrain: seed below zero", retrain_cli, lambda t: [*_retrain(t), "--seed", "-1"], 2, "'--seed': -1"),
    ("enas sample: seed below zero", enas_cli, ["sample", "{tmp}", "--seed", "-1"], 2, "'--seed': -1"),
    ("threads above the cores", nasib_cli, ["search", "--space", "narrow", "--threads", "999", "--out", "{tmp}/o"],
     2, "--threads '999': this process may use"),
    ("enas: threads above the cores", enas_cli, ["search", "--threads", "999", "--out", "{tmp}/o"], 2,
     "use at most"),
    ("runner: threads above the cores", experiments_cli, ["run", "fig2", "--threads", "999", "--dry-run"], 2,
     "use at most"),
    ("nasib: an ENAS space", nasib_cli, ["search", "--space", "original", "--out", "{tmp}/o"], 2,
     "'original' is not one of 'narrow', 'superkernel'"),
    ("plan: an ENAS space", nasib_cli, ["plan", "--space", "extended", "--budget", "1h"], 2,
     "'extended' is not one of"),
    ("nasib: bn-eval free text", nasib_cli, ["search", "--space", "narrow", "--bn-eval", "mean", "--out",
                                             "{tmp}/o"], 2, "'mean' is not one of 'running', 'batch'"),
    ("search: device that cannot exist", nasib_cli, ["search", "--space", "narrow", "--device", "gpu", "--out",
                                                     "{tmp}/o"], 2, "unknown device 'gpu'"),
    ("budget with units out of order", nasib_cli, ["plan", "--budget", "30m2h"], 2, "cannot read budget '30m2h'"),
    ("runner: unwritable results", experiments_cli, ["run", "fig2", "--scale", "smoke", "--device", "cpu",
                                                     "--results", "{tmp}/denied"], 1,
     "cannot write {tmp}/denied"),
    ("claims: unwritable results", analysis_cli, ["claims", "{tmp}/denied"], 1, "cannot write"),
    ("curves: unwritable results", analysis_cli, ["curves", "{tmp}/denied", "--figure", "fig2"], 1, "cannot write"),
]


def _deny_writes_under(monkeypatch, root: Path) -> None:
    """Writes and new folders under `root` fail as on a folder the user may not write (tests run as root)."""
    import builtins
    import os

    real_open, real_mkdir, real_os_open = builtins.open, Path.mkdir, os.open

    def deny(path):
        raise PermissionError(13, "Permission denied", str(path))

    def fake_open(file, mode="r", *a, **k):
        if str(file).startswith(str(root)) and any(c in mode for c in "wax+"):
            deny(file)
        return real_open(file, mode, *a, **k)

    def fake_mkdir(self, *a, **k):
        if str(self).startswith(str(root)) and not self.exists():
            deny(self)
        return real_mkdir(self, *a, **k)

    def fake_os_open(path, flags, *a, **k):
        if str(path).startswith(str(root)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            deny(path)
        return real_os_open(path, flags, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(Path, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "open", fake_os_open)


@pytest.mark.parametrize("name, command, args, status, text", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(tmp_path, monkeypatch, name, command, args, status, text):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = sorted(p.name for p in RESULTS.iterdir())
    argv = args(tmp_path) if callable(args) else [a.replace("{tmp}", str(tmp_path)) for a in args]
    text = text.replace("{tmp}", str(tmp_path))
    if "unwritable" in name:  # analysis reads finished trials there; the runner finds none and must write
        (tmp_path / "denied").mkdir()
        if "runner" not in name:
            shutil.copytree(RESULTS / "reference" / "smoke" / "fig2", tmp_path / "denied" / "fig2")
        _deny_writes_under(monkeypatch, tmp_path / "denied")
    res = CliRunner().invoke(command, argv)
    assert res.exit_code == status, res.output
    assert text in res.output
    assert not (tmp_path / "o").exists()  # refused before any trial folder is opened
    assert "Traceback" not in res.output and not isinstance(res.exception, (TypeError, AttributeError))
    if status:
        assert sum(line.startswith("Error") for line in res.output.splitlines()) == 1
    assert sorted(p.name for p in RESULTS.iterdir()) == before  # the committed records are untouched


def test_compound_budgets_are_read():
    from contract.budget import Budget

    seconds = [Budget.parse(text).seconds for text in ("2h30m", "1d12h", "1h 30m 15s")]
    assert seconds == [9000, 129600, 5415]


@pytest.mark.parametrize("command, args", [(enas_cli, ["search"]), (nasib_cli, ["search"]), (nasib_cli, ["plan"]),
                                           (retrain_cli, []), (enas_cli, []), (experiments_cli, ["run"]),
                                           (analysis_cli, ["claims"])])
def test_dash_h_is_help(command, args):
    res = CliRunner().invoke(command, [*args, "-h"])
    assert res.exit_code == 0 and "Usage:" in res.output and "Show this message" in res.output


@pytest.mark.parametrize("module", ["analysis.claims", "analysis.curves", "analysis.kernel_freq", "analysis.table1",
                                    "analysis.inventory", "nascore.synthetic", "benchmarks", "benchmarks.planted",
                                    "benchmarks.gate", "benchmarks.levers_gpu"])
def test_stand_alone_commands_take_dash_h(module):
    # a fresh process, as a user runs it: in-process, click keeps the help option of a command's first
    # context, so a run through a group (which takes -h) would hide a stand-alone command that does not
    res = subprocess.run([sys.executable, "-m", module, "-h"], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0 and "Usage:" in res.stdout, res.stderr


def test_preset_is_the_old_spelling_of_scale(tmp_path):
    outs = [CliRunner().invoke(experiments_cli, ["run", "fig2", flag, "medium", "--dry-run", "--results",
                                                 str(tmp_path)]) for flag in ("--scale", "--preset")]
    assert [r.exit_code for r in outs] == [0, 0] and outs[0].output == outs[1].output and "medium" in outs[0].output


def test_help_shows_values_not_code_names():
    for command in (enas_cli, nasib_cli):
        text = CliRunner().invoke(command, ["search", "--help"], terminal_width=200).output
        assert "nascore." not in text and "[default: batch]" in text  # the BN rule a search uses
