"""Experiment runner: configs expand to the right trials, shared trials run once, finished ones
are skipped, retrains follow their searches, and every outcome is reported. Fake methods only."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from contract.errors import NotAvailable
from experiments import launchers
from experiments.__main__ import cli
from experiments.launchers import (
    LocalLauncher,
    RunContext,
    dropped_from_manifests,
    get_launcher,
    run_one,
    write_manifests,
)
from experiments.runner import (
    SCALES,
    ExperimentError,
    available,
    expand,
    expand_all,
    load_config,
    parse_seeds,
    plan_experiments,
)
from nascore.config import ConfigError

COUNTS = {  # trials per scale at each config's own seeds: smoke, quick, paper
    "fig2": (12, 12, 12), "fig3": (18, 18, 18), "fig4": (6, 6, 6), "fig5": (12, 4, 12), "table1": (24, 8, 24),
    "fig2_release": (6, 6, 6),
}


class FakeMethods(dict):
    """A method registry whose methods record calls and write minimal trial records."""

    def __init__(self, fail: set[str] = frozenset(), diverge: set[str] = frozenset()):
        super().__init__(enas=self._run, nasib=self._run, retrain=self._run)
        self.calls: list[str] = []
        self.ctx: list[RunContext] = []
        self.fail, self.diverge = fail, diverge

    def _run(self, plan, ctx):
        self.calls.append(plan.key)
        self.ctx.append(ctx)
        if plan.strategy in ("darts", "snas"):
            raise NotAvailable(f"strategy {plan.strategy!r} is not implemented yet")
        if plan.trial_id in self.fail:
            raise RuntimeError("CUDA error: boom\nsecond line")
        plan.folder.mkdir(parents=True, exist_ok=True)
        (plan.folder / "config.json").write_text(json.dumps({"format": 1, "preset": plan.scale}))
        status = "diverged" if plan.trial_id in self.diverge else "ok"
        if plan.family != "retrain" and status == "ok":
            (plan.folder / "arch.json").write_text(json.dumps({"space": plan.space, "ops": []}))
        result = {"format": 1, "status": status, "epochs": 2, "best_valid_acc": 0.5,
                  "reason": "loss became nan"}
        (plan.folder / "epochs.jsonl").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in range(2)))
        (plan.folder / "result.json").write_text(json.dumps(result))
        return result


def run_all(plans, methods, **ctx):
    return LocalLauncher().run(plans, lambda p: run_one(p, RunContext(**ctx), methods))


@pytest.fixture
def fake(monkeypatch) -> FakeMethods:
    methods = FakeMethods()
    monkeypatch.setattr(launchers, "METHODS", methods)
    return methods


# --- expansion ----------------------------------------------------------------------------

def test_every_artefact_has_a_config():
    assert available() == sorted(COUNTS)


@pytest.mark.parametrize("name", sorted(COUNTS))
@pytest.mark.parametrize("scale", SCALES)
def test_expansion_counts(name, scale, tmp_path):
    plans = expand(load_config(name), scale, tmp_path)
    assert len(plans) == COUNTS[name][SCALES.index(scale)]
    assert all(p.scale == scale for p in plans)
    assert len({p.folder for p in plans}) == len(plans)


def test_expansion_ids_and_folders(tmp_path):
    fig2 = expand(load_config("fig2"), "quick", tmp_path)
    spaces = ("original", "extended")
    assert [p.key for p in fig2] == [f"fig2/enas-{s}{m}-s{i}" for m in ("", "-released") for s in spaces
                                     for i in range(3)]
    assert {p.overrides.get("branch_mode") for p in fig2 if "released" in p.trial_id} == {"as-released"}
    assert all("branch_mode" not in p.overrides for p in fig2 if "released" not in p.trial_id)
    fig5 = expand(load_config("fig5"), "quick", tmp_path)
    assert [p.trial_id for p in fig5] == [f"nasib-superkernel-b{b}-s0" for b in ("2m", "4m", "6m", "10m")]
    assert fig5[0].folder == tmp_path / "fig5" / "nasib-superkernel-b2m-s0"
    assert fig5[0].overrides == {"strategy": "nasib", "budget": "2m"}
    fig3 = {p.trial_id: p for p in expand(load_config("fig3"), "paper", tmp_path, seeds=[7])}
    assert set(fig3) == {"enas-original-s7", "nasib-narrow-s7", "nasib-superkernel-s7", "random-narrow-s7",
                         "darts-narrow-s7", "snas-narrow-s7"}
    assert fig3["darts-narrow-s7"].overrides == {"strategy": "darts", "budget": "200m"}
    assert fig3["enas-original-s7"].owner == "fig2"


def test_shared_trials_are_deduplicated(tmp_path):
    fig2 = plan_experiments(["fig2"], "quick", tmp_path)
    both = plan_experiments(["fig2", "fig4"], "quick", tmp_path)
    assert [p.folder for p in both] == [p.folder for p in fig2]
    fig4 = expand(load_config("fig4"), "quick", tmp_path)
    assert {p.folder for p in fig4} <= {p.folder for p in fig2 if p.space == "extended"}
    seeds = (0, 1, 2)
    alls = plan_experiments(["fig2", "fig3", "table1"], "quick", tmp_path, seeds)
    # fig2: 12 searches (2 spaces x 2 branch modes); fig3: 15 of its own (+3 ENAS from fig2);
    # table1: 12 retrains (+12 shared searches).
    assert len(alls) == 12 + 15 + 12
    table1 = expand(load_config("table1"), "quick", tmp_path, seeds)
    assert {p.owner for p in table1 if p.family != "retrain"} == {"fig2", "fig3"}


def test_retrains_come_after_their_sources(tmp_path):
    plans = plan_experiments(["table1"], "paper", tmp_path)
    where = {p.folder: i for i, p in enumerate(plans)}
    retrains = [(i, p) for i, p in enumerate(plans) if p.family == "retrain"]
    assert len(retrains) == 12
    for i, p in retrains:
        assert where[p.source.parent] < i
        assert p.source.parent.name == p.trial_id.removeprefix("retrain-")


def test_unknown_experiment_and_scale_list_valid_names(tmp_path):
    valid = "valid: fig2, fig2_release, fig3, fig4, fig5, table1"
    with pytest.raises(ExperimentError, match=f"unknown experiment 'fig9'; {valid}"):
        load_config("fig9")
    with pytest.raises(ExperimentError, match="unknown scale 'huge'.*smoke, quick, paper"):
        expand(load_config("fig2"), "huge", tmp_path)


def test_seeds_parse():
    assert parse_seeds("0,1,2") == (0, 1, 2)
    for bad in ("a,b", "1,1", "-1"):
        with pytest.raises(ExperimentError, match="--seeds"):
            parse_seeds(bad)


# --- config validation --------------------------------------------------------------------

BASE = """name: {name}
description: test
seeds: [0]
trials:
  - {{id: "enas-{{space}}-s{{seed}}", family: enas, space: original{extra}}}
scales:
  smoke: {{base: smoke}}
  quick: {{base: quick}}
  paper: {{base: paper{scale_extra}}}
{top}"""


def write_cfg(folder: Path, name: str = "mine", extra: str = "", scale_extra: str = "",
              top: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(BASE.format(name=name, extra=extra, scale_extra=scale_extra, top=top))
    return path


@pytest.mark.parametrize("kwargs, key", [
    ({"top": "colour: red\n"}, "'colour'"),
    ({"extra": ", epochs: 3"}, r"trials\[0\]: unknown key 'epochs'"),
    ({"scale_extra": ", seedz: [1]"}, "scales.paper: unknown key 'seedz'"),
    ({"extra": ", budgets: {smoke: [1s], quick: [1s], paper: [2s]}"}, "budgets: only nasib"),
    ({"extra": ", strategy: darts"}, "strategy: only nasib"),
    ({"top": "seeds: [0]\n"}, "line 10: bad YAML: duplicate key 'seeds'"),
])
def test_bad_config_names_file_and_key(tmp_path, kwargs, key):
    path = write_cfg(tmp_path, **kwargs)
    with pytest.raises(ConfigError, match=key) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_values_are_named(tmp_path):
    text = BASE.format(name="mine", extra="", scale_extra="", top="")
    cases = [("space: original", "space: narrow", "space: 'narrow' for enas"),
             ("family: enas, space: original",
              "family: nasib, space: narrow, budgets: {smoke: [1s], quick: [1s]}",
              "budgets: missing required key 'paper'"),
             ("family: enas", "family: darts", "family: 'darts'; valid: enas, nasib, retrain"),
             ("base: quick", "base: fast", "scales.quick.base: 'fast'; valid: smoke, quick, paper"),
             # a config written with the old names is told the new one, not just "unknown key"
             ("family: enas", "method: enas", r"trials\[0\].method: renamed to family \(write family: enas\)"),
             ("base: quick", "preset: quick", r"scales.quick.preset: renamed to base \(write base: quick\)"),
             ("seeds: [0]", "seeds: zero", "seeds: expected"),
             ("s{{seed}}", "x", "must use {seed}")]
    for old, new, message in cases:
        (tmp_path / "mine.yaml").write_text(text.replace(old.replace("{{", "{").replace("}}", "}"), new))
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / "mine.yaml")


def test_shared_trial_must_match_its_owner(tmp_path):
    write_cfg(tmp_path, "owner")
    sharer = write_cfg(tmp_path, "sharer", extra=", shared_with: owner")
    plans = expand(load_config(sharer), "smoke", tmp_path / "results")
    assert plans[0].folder == tmp_path / "results" / "owner" / "enas-original-s0"
    sharer.write_text(sharer.read_text().replace("space: original", "space: extended"))
    with pytest.raises(ConfigError, match="no such trial"):
        expand(load_config(sharer), "smoke", tmp_path)
    sharer.write_text(sharer.read_text().replace("space: extended", "space: original")
                      .replace("paper: {base: paper", "paper: {base: paper, overrides: {enas: {x: 1}}"))
    with pytest.raises(ConfigError, match="differs from owner's in overrides"):
        expand(load_config(sharer), "paper", tmp_path)
    missing = write_cfg(tmp_path, "lost", extra=", shared_with: nobody")
    with pytest.raises(ConfigError, match="lost.yaml: shared_with: unknown experiment 'nobody'"):
        expand(load_config(missing), "smoke", tmp_path)


# --- running ------------------------------------------------------------------------------

def test_finished_trials_are_skipped_and_partial_ones_resumed(tmp_path):
    plans = expand(load_config("fig2"), "smoke", tmp_path)
    done, partial = plans[0].folder, plans[1].folder
    done.mkdir(parents=True)
    (done / "result.json").write_text(json.dumps({"format": 1, "status": "ok"}))
    partial.mkdir(parents=True)
    (partial / "config.json").write_text(json.dumps({"format": 1, "preset": "smoke"}))
    methods = FakeMethods()
    outcomes = run_all(plans, methods)
    assert [o.status for o in outcomes] == ["skipped"] + ["ok"] * 11
    assert methods.calls == [p.key for p in plans[1:]]
    assert "finished earlier" in outcomes[0].detail
    methods.calls.clear()
    run_all(plan_experiments(["fig4"], "smoke", tmp_path), methods)  # fig4 shares fig2's: nothing new
    assert methods.calls == []
    run_all(plans[:1], methods, force=True)
    assert methods.calls == [plans[0].key]


def test_trial_of_another_scale_is_not_reused(tmp_path):
    plan = expand(load_config("fig2"), "quick", tmp_path)[0]
    plan.folder.mkdir(parents=True)
    (plan.folder / "config.json").write_text(json.dumps({"format": 1, "preset": "smoke"}))
    (plan.folder / "result.json").write_text(json.dumps({"format": 1, "status": "ok"}))
    outcome = run_one(plan, RunContext(), FakeMethods())
    assert outcome.failed and "scale 'smoke'" in outcome.detail and "--results" in outcome.detail


def test_outcomes_not_available_failed_diverged_blocked(tmp_path):
    methods = FakeMethods(fail={"nasib-narrow-s0"}, diverge={"nasib-superkernel-s0"})
    plans = plan_experiments(["table1", "fig3"], "smoke", tmp_path, seeds=[0])
    status = {o.plan.trial_id: o for o in run_all(plans, methods)}
    assert status["darts-narrow-s0"].status == "not available"
    assert status["snas-narrow-s0"].detail == "strategy 'snas' is not implemented yet"
    assert not status["darts-narrow-s0"].failed
    assert status["nasib-narrow-s0"].status == "failed"
    log = tmp_path / "_logs" / "fig3" / "nasib-narrow-s0.txt"
    assert status["nasib-narrow-s0"].detail == f"RuntimeError: CUDA error: boom (traceback: {log})"
    assert "Traceback" in log.read_text() and "second line" in log.read_text()
    assert status["nasib-superkernel-s0"].status == "diverged"
    assert status["retrain-nasib-superkernel-s0"].status == "blocked"
    assert status["retrain-nasib-narrow-s0"].failed  # its search failed: no arch.json
    assert status["retrain-enas-original-s0"].status == "ok"  # the others still ran
    assert status["random-narrow-s0"].status == "ok"


def test_a_missing_kernel_is_a_failure_not_a_gap(tmp_path):
    def no_kernel(plan, ctx):
        raise NotImplementedError("'aten::conv2d' is not implemented for 'Half'")

    plan = expand(load_config("fig3"), "smoke", tmp_path, seeds=[0])[-1]
    assert plan.strategy == "snas"
    assert run_one(plan, RunContext(), {"nasib": no_kernel}).status == "failed"


def test_run_context_reaches_the_methods(tmp_path, monkeypatch):
    calls = []

    def search_trial(spec, space, scale="quick", overrides=None):
        calls.append((spec, space, scale, overrides))
        return {"status": "ok", "epochs": 1}

    for name in ("enas_ext.search", "nasib.search"):
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(search_trial=search_trial))
    plans = plan_experiments(["fig3"], "quick", tmp_path, seeds=[4])
    ctx = RunContext(device="cuda:1", data_dir="/data/c10", deterministic=True)
    assert [run_one(p, ctx).status for p in plans[:2]] == ["ok", "ok"]
    (enas_spec, space, preset, _), (spec, _, _, overrides) = calls
    assert (enas_spec.out, enas_spec.experiment) == (plans[0].folder, "fig2")
    assert (space, preset) == ("original", "quick")
    assert (spec.seed, spec.device, spec.deterministic) == (4, "cuda:1", True)
    assert spec.data.data_dir == "/data/c10"
    assert spec.experiment == "fig3" and overrides == {"strategy": "nasib", "budget": "2m"}


def test_manifests_list_shared_folders(tmp_path):
    paths = write_manifests(expand_all(["fig2", "fig4"], "smoke", tmp_path), tmp_path, "smoke")
    assert paths == [tmp_path / "fig2" / "trials.json", tmp_path / "fig4" / "trials.json"]
    doc = json.loads(paths[1].read_text())
    assert [r["folder"] for r in doc["trials"]] == [f"fig2/enas-extended{m}-s{i}" for m in ("", "-released")
                                                    for i in range(3)]
    write_manifests(expand_all(["fig4"], "smoke", tmp_path, seeds=[5]), tmp_path, "smoke")
    rows = json.loads(paths[1].read_text())["trials"]
    # only the current plan, no stale rows
    assert [r["folder"] for r in rows] == ["fig2/enas-extended-s5", "fig2/enas-extended-released-s5"]


def test_a_narrower_run_says_which_finished_trials_leave_the_manifest(tmp_path):
    # running seed by seed rewrites trials.json each time: the user must hear that earlier seeds drop out
    write_manifests(expand_all(["fig2"], "smoke", tmp_path, seeds=[0, 1]), tmp_path, "smoke")
    for tid in ("enas-original-s0", "enas-extended-s0"):
        (tmp_path / "fig2" / tid).mkdir(parents=True)
        (tmp_path / "fig2" / tid / "result.json").write_text("{}")
    (line,) = dropped_from_manifests(expand_all(["fig2"], "smoke", tmp_path, seeds=[1]), tmp_path, "smoke")
    assert "2 finished trial(s) of seed(s) 0 leave the manifest" in line and "--seeds" in line
    assert dropped_from_manifests(expand_all(["fig2"], "smoke", tmp_path, seeds=[0, 1]), tmp_path, "smoke") == []
    # another scale's manifest is not this run's to keep (its folders are another results root's)
    assert dropped_from_manifests(expand_all(["fig2"], "quick", tmp_path, seeds=[1]), tmp_path, "quick") == []


def test_unknown_launcher_lists_valid():
    with pytest.raises(ValueError, match="unknown launcher 'slurm'; valid: local, ray"):
        get_launcher("slurm")


# --- command line -------------------------------------------------------------------------

def test_cli_dry_run_prints_the_plan_and_runs_nothing(tmp_path, fake):
    args = ["run", "table1", "--scale", "smoke", "--results", str(tmp_path), "--dry-run"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "table1/retrain-nasib-superkernel-s0" in res.output and "fig3/nasib-superkernel-s0" in res.output
    assert "24 trial(s) at scale smoke" in res.output
    assert fake.calls == [] and not any(tmp_path.iterdir())


def test_cli_runs_reports_and_exits_nonzero_on_failure(tmp_path, fake):
    fake.fail = {"enas-original-s1"}
    args = ["run", "fig2", "--scale", "smoke", "--results", str(tmp_path), "--device", "cpu",
            "--deterministic"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1
    assert "12 trial(s): 11 ok, 1 failed" in res.output
    assert "1 trial(s) failed: fig2/enas-original-s1" in res.output
    assert fake.ctx[0].device == "cpu" and fake.ctx[0].deterministic
    fake.fail = set()
    res = CliRunner().invoke(cli, [*args, "--seeds", "1"])
    assert res.exit_code == 0 and "4 trial(s): 1 ok, 3 skipped" in res.output


def test_cli_ctrl_c_stops_with_one_line(tmp_path, fake, monkeypatch):
    def interrupted(plan, ctx):
        raise KeyboardInterrupt

    monkeypatch.setitem(fake, "enas", interrupted)
    res = CliRunner().invoke(cli, ["run", "fig2", "--scale", "smoke", "--results", str(tmp_path)])
    assert res.exit_code == 130 and "Error: interrupted" in res.output and "Traceback" not in res.output


def test_cli_not_available_is_not_a_failure(tmp_path, fake):
    args = ["run", "fig3", "--scale", "smoke", "--seeds", "0", "--results", str(tmp_path)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert res.output.count("not available") >= 2


@pytest.mark.parametrize("args, message", [
    (["run", "fig9"], "unknown experiment 'fig9'; valid: fig2, fig2_release, fig3, fig4, fig5, table1"),
    (["run", "fig2", "--scale", "huge"], "Invalid value for '--scale' / '--preset': 'huge' is not one of"),
    (["run", "fig2", "--seeds", "x"], "--seeds 'x'"),
])
def test_cli_errors_are_one_line(args, message):
    res = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert res.exit_code == 2
    assert f"Error: {message}" in res.output
    assert "Traceback" not in res.output


def test_cli_list_shows_experiments_and_scales():
    res = CliRunner().invoke(cli, ["list"])
    assert res.exit_code == 0, res.output
    assert "trials smoke/quick/paper" in res.output
    for name, counts in COUNTS.items():
        row = next(line for line in res.output.splitlines() if line.startswith(name + " "))
        assert "/".join(map(str, counts)) in row
    rows = {line.split()[0]: line for line in res.output.splitlines()[1:]}
    # the medium scale with its count and the measured CPU-hours the config records; none where undefined
    assert "20 (~12.6 CPU-h)" in rows["fig2"] and "16 (~7.4 CPU-h)" in rows["fig5"]
    assert "CPU-h" not in rows["fig3"] and "CPU-h" not in rows["table1"]


def test_release_cells_carry_the_release_option_set(tmp_path):
    plans = expand(load_config("fig2_release"), "medium", tmp_path)
    assert [p.key for p in plans][:2] == ["fig2_release/enas-original-release-s0",
                                          "fig2_release/enas-original-release-s1"]
    assert len(plans) == 6 and all(p.overrides.get("options") == "release" for p in plans)


# --- checks before anything is written ---------------------------------------------------------

def _smoke_folders(tmp_path):
    """Finished fig2 trials recorded at the smoke preset, in the folders a paper run would use."""
    for plan in expand(load_config("fig2"), "paper", tmp_path):
        plan.folder.mkdir(parents=True)
        (plan.folder / "config.json").write_text(json.dumps({"format": 1, "preset": "smoke"}))
        (plan.folder / "result.json").write_text(json.dumps({"format": 1, "status": "ok"}))


def test_dry_run_reports_folders_of_another_scale_as_conflicts(tmp_path, fake):
    _smoke_folders(tmp_path)
    res = CliRunner().invoke(cli, ["run", "fig2", "--scale", "paper", "--results", str(tmp_path), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "finished" not in res.output and res.output.count("conflict fig2/") == 12
    assert "12 conflict(s)" in res.output


def test_conflicting_run_is_refused_before_writing_anything(tmp_path, fake):
    _smoke_folders(tmp_path)
    res = CliRunner().invoke(cli, ["run", "fig2", "--scale", "paper", "--results", str(tmp_path)])
    assert res.exit_code == 2 and "12 planned folder(s) hold trials recorded with other settings" in res.output
    assert fake.calls == [] and not (tmp_path / "fig2" / "trials.json").exists()


def test_trial_locked_by_a_live_runner_is_running_elsewhere(tmp_path, fake, monkeypatch):
    from nascore.lock import TrialLocked  # the real type: the runner recognises it by type, not by name

    def locked(plan, ctx):
        raise TrialLocked(f"{plan.folder}: locked by pid 4242 on this host")

    monkeypatch.setitem(fake, "enas", locked)
    res = CliRunner().invoke(cli, ["run", "fig2", "--scale", "smoke", "--seeds", "0", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "4 trial(s): 4 running elsewhere" in res.output and "failed" not in res.output


@pytest.mark.parametrize("launcher, message", [
    ("slurm", "unknown launcher 'slurm'; valid: local, ray"),
    ("ray", "--launcher ray needs the 'ray' package"),
])
def test_launchers_are_checked_up_front_even_in_a_dry_run(tmp_path, fake, launcher, message, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, installed or not
    args = ["run", "fig2", "--scale", "smoke", "--results", str(tmp_path), "--launcher", launcher]
    for extra in ([], ["--dry-run"]):
        res = CliRunner().invoke(cli, [*args, *extra])
        assert res.exit_code == 2 and f"Error: {message}" in res.output and "Traceback" not in res.output
    assert fake.calls == [] and not any(tmp_path.iterdir())


def test_unavailable_device_is_refused_once_before_any_trial(tmp_path, fake, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = CliRunner().invoke(cli, ["run", "fig2", "--scale", "smoke", "--results", str(tmp_path),
                                   "--device", "cuda"])
    assert res.exit_code == 2 and res.output.count("CUDA is not available") == 1
    assert fake.calls == [] and not any(tmp_path.iterdir())
