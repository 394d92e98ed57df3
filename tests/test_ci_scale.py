"""The optional `ci` scale: defined by fig2 and fig5 only, its own budgets, checked like the others."""
from __future__ import annotations

import pytest

from experiments.runner import ExperimentError, expand, load_config
from nascore.config import ConfigError

NASIB = """name: mine
description: test
seeds: [0]
trials:
  - {{id: "n-b{{budget}}-s{{seed}}", family: nasib, space: narrow, budgets: {{smoke: [1s], quick: [1s], paper: [2s]}}}}
scales:
  smoke: {{base: smoke{smoke}}}
  quick: {{base: quick}}
  paper: {{base: paper}}
{ci}"""


def test_fig2_and_fig5_define_a_ci_scale_with_its_own_sizes(tmp_path):
    exp = load_config("fig2")
    fig2 = expand(exp, "ci", tmp_path)
    assert len(fig2) == 2 * len(exp.trials) and {p.seed for p in fig2} == {0, 1}  # every group, two seeds
    assert all(p.scale == "quick" and p.overrides["epochs"] == 2 for p in fig2)
    assert all(p.overrides["data"] == {"train_size": 5000} for p in fig2)
    fig5 = expand(load_config("fig5"), "ci", tmp_path)
    assert [p.budget for p in fig5] == ["45s", "90s"] and all(p.overrides["budget"] == p.budget for p in fig5)
    assert fig5[0].overrides["data"] == {"train_size": 10000}


def test_a_config_without_ci_says_which_scales_it_has(tmp_path):
    with pytest.raises(ExperimentError, match="unknown scale 'ci' for fig3; valid: smoke, quick, paper$"):
        expand(load_config("fig3"), "ci", tmp_path)


@pytest.mark.parametrize("smoke, ci, message", [
    ("", "  ci: {base: quick}\n", "scales.ci.budgets: the nasib groups need budget labels"),
    ("", "  ci: {base: quick, budgets: [soon]}\n", "scales.ci.budgets: .*soon"),
    ("", "  ci: {base: fast, budgets: [1s]}\n", "scales.ci.base: 'fast'"),
    (", budgets: [1s]", "", "scales.smoke.budgets: only ci, medium take budgets"),
])
def test_bad_ci_blocks_are_named(tmp_path, smoke, ci, message):
    path = tmp_path / "mine.yaml"
    path.write_text(NASIB.format(smoke=smoke, ci=ci))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_ci_budgets_replace_the_groups_labels(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(NASIB.format(smoke="", ci="  ci: {base: smoke, budgets: [5s, 7s]}\n"))
    assert [p.trial_id for p in expand(load_config(path), "ci", tmp_path)] == ["n-b5s-s0", "n-b7s-s0"]
