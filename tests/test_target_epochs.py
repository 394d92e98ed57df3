"""Budgets in target epochs: '25ep' is the time 25 epochs take on this machine, set by the timing run."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.budget import Budget, BudgetError
from nascore.data import DataConfig
from nascore.loop import RunSpec
from nasib.budget import BudgetConfig, BudgetPlanner, budget_for_epochs
from nasib.search import search_trial


def test_forms_are_read_and_checked():
    assert Budget.parse("25ep").epochs == 25 and Budget.parse("3 epochs").epochs == 3
    assert Budget.parse("90s").epochs is None and Budget.parse("25ep").seconds is None
    assert Budget.parse("2m").seconds == 120.0
    with pytest.raises(BudgetError, match="target in epochs"):
        Budget.parse("25ep").wall_seconds()  # where only seconds will do (the benchmarks' fidelity budgets)
    with pytest.raises(BudgetError, match="target epochs must be 1 to"):
        Budget.parse("0ep")
    with pytest.raises(BudgetError, match="25ep"):
        Budget.parse("25 eps")


@given(st.integers(min_value=1, max_value=5000), st.floats(min_value=1e-3, max_value=3600.0),
       st.floats(min_value=0.0, max_value=600.0), st.floats(min_value=0.0, max_value=60.0))
def test_planner_plans_exactly_the_target(n, epoch_s, used_s, extra):
    budget = budget_for_epochs(n, epoch_s, used_s, extra)
    reserve = BudgetConfig(budget).reserve + extra  # the search's own reserve rule
    clock = iter([0.0] * 10).__next__
    planner = BudgetPlanner(BudgetConfig(budget, reserve_s=reserve), clock, used_s=used_s)
    planner.start(epoch_s)
    assert planner.planned_epochs == n


def test_search_with_target_epochs_runs_about_that_many(tmp_path, tiny_data):
    spec = RunSpec(out=tmp_path / "t", seed=0, device="cpu", data=DataConfig(data_dir=str(tiny_data)))
    result = search_trial(spec, "narrow", "smoke", {"budget": "3ep", "data": {"valid_size": 100,
                                                                               "train_size": 160}})
    assert result["status"] == "ok" and result["planned_epochs"] >= 1
    assert result["budget_s"] > 0 and abs(result["realised_epochs"] - 3) <= 1  # re-planned from real epochs
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["budget_label"] == "3ep" and config["budget_s"] is None  # seconds known after timing


def test_figure5_orders_target_epoch_budgets_by_size(tmp_path):
    from test_analysis import write_trial

    from analysis.curves import figure_groups
    from analysis.records import load_trials

    for label in ("100ep", "50ep", "200ep"):
        write_trial(tmp_path, "fig5", f"nasib-superkernel-b{label}-s0", "nasib", "superkernel", 0, [0.2, 0.3],
                    budget_label=label)
    assert [label for label, _ in figure_groups(load_trials(tmp_path), "fig5")] == ["50ep", "100ep", "200ep"]
