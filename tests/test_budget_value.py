"""The budget as one value (contract.budget) and the budget clock (nasib.clock) a search and the loop share."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import contract.budget as budget_module
from contract.budget import Budget, BudgetError, budget_record
from nasib.clock import BudgetClock, Measured

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"epoch_s": 10.0, "eval_pass_s": 1.0, "checkpoint_s": 0.5, "weight_s": 0.1, "alpha_s": 0.1,
          "alpha_steps": 5.0, "eval_s": 0.1, "snapshot_s": 0.1}


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("text, seconds, epochs", [
    ("2h", 7200.0, None), ("90s", 90.0, None), ("2h30m", 9000.0, None), ("3600", 3600.0, None),
    ("25ep", None, 25), ("3 epochs", None, 3), (" 7 EP ", None, 7),
])
def test_forms(text, seconds, epochs):
    value = Budget.parse(text)
    assert (value.seconds, value.epochs) == (seconds, epochs)
    assert value == text and value.text == text and json.dumps({"b": value}) == json.dumps({"b": text})
    assert Budget.parse(value) is value  # a parsed budget passes as it is


@pytest.mark.parametrize("text, message", [
    ("fast", "cannot read budget 'fast': use a number with s, m, h or d"),
    ("-5m", "must be more than zero"), ("400d", "more than the planner takes"),
    ("0ep", "target epochs must be 1 to 100000"), ("25 eps", "such as 25ep"), (None, "cannot read budget 'None'"),
])
def test_errors_are_one_line_budget_errors(text, message):
    with pytest.raises(BudgetError, match=message) as err:
        Budget.parse(text)
    assert "\n" not in str(err.value)


def test_a_budget_cannot_be_changed():
    value = Budget.parse("2h")
    with pytest.raises(AttributeError, match="immutable"):
        value.seconds = 1.0


@pytest.mark.parametrize("text", ["2h", "45s", "3ep"])
def test_record_round_trip(text):
    value = Budget.parse(text)
    record = json.loads(json.dumps(value.to_record()))
    assert Budget.from_record(record) == value and Budget.from_record(record).seconds == value.seconds


@pytest.mark.parametrize("record, seconds, epochs, text", [
    ({"budget_s": 7200.0, "budget_label": "2h"}, 7200.0, None, "2h"),  # config.json of a time budget
    ({"budget_s": None, "budget_label": "50ep"}, None, 50, "50ep"),  # config.json of a target budget
    ({"budget_s": 41.3, "budget_label": "3ep"}, None, 3, "3ep"),  # result.json: seconds after the timing run
    ({"budget": "45s"}, 45.0, None, "45s"),  # a runner's plan record
    ({"budget_s": 60.0}, 60.0, None, "60.0s"),  # seconds alone
])
def test_old_records_are_read(record, seconds, epochs, text):
    value = Budget.from_record(record)
    assert (value.seconds, value.epochs, value.text) == (seconds, epochs, text)


def test_no_budget_in_a_record_is_none():
    assert Budget.from_record({"budget_s": None, "budget_label": None}) is None
    assert budget_record(None) == {"budget_s": None, "budget_label": None}


def test_contract_loads_without_torch():
    code = "import sys, contract.budget; assert 'torch' not in sys.modules and 'nascore' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_cli_parses_the_budget_once_and_the_value_flows_to_the_clock(monkeypatch, tmp_path):
    from nasib import search
    from nasib.__main__ import cli

    seen, parsed = {}, []
    real = budget_module._seconds
    monkeypatch.setattr(budget_module, "_seconds", lambda text: parsed.append(text) or real(text))
    monkeypatch.setattr(search, "run_recipe", lambda spec, recipe: seen.update(recipe=recipe))
    res = CliRunner().invoke(cli, ["search", "--space", "narrow", "--scale", "smoke", "--budget", "7m",
                                   "--out", str(tmp_path / "t"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    recipe = seen["recipe"]
    assert parsed.count("7m") == 1  # the option callback; config, clock and records take the value
    assert isinstance(recipe.budget, Budget) and recipe.budget.seconds == 420.0
    assert recipe.clock.budget is recipe.budget and recipe.config["budget"] == "7m"


def test_experiment_plans_hand_the_parsed_budget_to_the_search(monkeypatch, tmp_path):
    from experiments import launchers
    from experiments.runner import expand, load_config

    plans = [p for p in expand(load_config("fig5"), "smoke", tmp_path) if p.budget]
    got = {}
    monkeypatch.setattr("nasib.search.search_trial", lambda spec, space, preset, over: got.update(over))
    launchers.METHODS["nasib"](plans[0], launchers.RunContext())
    assert isinstance(plans[0].budget, Budget) and got["budget"] is plans[0].budget


def test_analysis_orders_budgets_with_the_value():
    from analysis.records import budget_order

    class T:
        def __init__(self, config, result=None):
            self.config, self.result = config, result or {}

    assert budget_order(T({"budget_s": 90.0, "budget_label": "90s"})) == 90.0
    assert budget_order(T({"budget_s": None, "budget_label": "50ep"})) == 50.0
    assert budget_order(T({"budget_s": None, "budget_label": "??"}, {"budget_s": 12.0})) == 12.0


# --- the budget clock --------------------------------------------------------------------

def _clock(text="100s", used_s=0.0):
    fake = FakeClock()
    return BudgetClock(Budget.parse(text), 0.1, clock=fake, used_s=used_s), fake


def test_the_clock_plans_from_the_timing_run_with_one_reserve_rule():
    clock, fake = _clock()
    with pytest.raises(BudgetError, match="timing run"):
        clock.may_start(0)  # asking is no timing run: it must be handed one
    fake.now += 2.0  # the timing run
    clock.start(Measured(TIMING, step_s=0.2, finish_s=3.0))
    assert clock.reserve_s == pytest.approx(1.0 + 3.0 * 1.1)  # max(1% of 100 s, 1 s) + derivation x1.1
    assert clock.planned_epochs == int((100.0 - 2.0 - clock.reserve_s) // (10.0 * 1.1))
    assert clock.may_start(0) and clock.begin_epoch(0) == (1.0, clock.planned_epochs)


def test_the_one_out_of_time_rule():
    clock, fake = _clock()
    clock.start(Measured(TIMING, step_s=0.2, finish_s=0.0))
    clock.begin_epoch(0)
    fake.now = 100.0 + 100.0 - 1.0 - 1.6  # left - reserve = 1.6 < a step (0.2) + eval (1.0) + checkpoint (0.5)
    assert clock.must_stop(0.2)
    fake.now -= 0.2
    assert not clock.must_stop(0.2)


def test_a_target_budget_gets_its_seconds_from_the_timing_run():
    clock, _ = _clock("4ep")
    assert clock.budget_s is None
    clock.start(Measured(TIMING, step_s=0.2, finish_s=0.0))
    assert clock.budget_s > 0 and clock.planned_epochs == 4


def test_an_epochs_clock_needs_no_timing_run_and_never_stops():
    clock = BudgetClock(None, 0.1, epochs=3, clock=FakeClock())
    assert clock.started and clock.may_start(2) and not clock.may_start(3) and not clock.must_stop(1e9)
    assert "budget_left_s" not in clock.end_epoch(0, 1.0)


def test_the_clock_resumes_charging_only_the_restarts_start_up():
    clock, fake = _clock()
    clock.start(Measured(TIMING, step_s=0.2, finish_s=0.0))
    state = json.loads(json.dumps(clock.state_dict()))
    assert set(state) == {"planner", "reserve_s", "timing", "budget_s"}  # the keys checkpoints always held
    again, fake2 = _clock()
    fake2.now += 5.0  # this run's start-up
    again.load_state_dict(state)
    assert again.planner.used_s == pytest.approx(state["planner"]["used_s"] + 5.0)
    assert again.planned_epochs == clock.planned_epochs and again.reserve_s == clock.reserve_s
