"""Every installed command (pyproject's [project.scripts]) resolves, answers --help and --version."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner

from contract.names import SCALES, VERSION

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]


def _command(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def test_one_script_per_command_group():
    groups = {t.split(".")[0] for t in SCRIPTS.values()}
    assert groups == {"nasib", "enas_ext", "retraining", "experiments", "analysis", "benchmarks"}
    assert all(name.startswith("nasibkit-") for name in SCRIPTS)  # cannot be mistaken for other tools


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_has_help_and_version(name):
    cmd = _command(SCRIPTS[name])
    res = CliRunner().invoke(cmd, ["--version"])
    assert res.exit_code == 0 and VERSION in res.output and name in res.output
    assert CliRunner().invoke(cmd, ["--help"]).exit_code == 0


@pytest.mark.parametrize("argv", [["nasibkit-nasib", "search"], ["nasibkit-nasib", "plan"],
                                  ["nasibkit-enas", "search"], ["nasibkit-retrain"],
                                  ["nasibkit-experiments", "run"], ["nasibkit-bench"]])
def test_one_scale_option_with_fixed_choices(argv):
    cmd = _command(SCRIPTS[argv[0]])
    out = CliRunner().invoke(cmd, [*argv[1:], "--help"]).output
    assert "--scale" in out and all(s in out for s in SCALES), out
    bad = CliRunner().invoke(cmd, [*argv[1:], "--scale", "huge"])
    assert bad.exit_code == 2 and "huge" in bad.output
