"""The rules a verdict must pass, each pinned by a small hand-made record set (issue 16, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_analysis import EXTENDED, write_trial

from analysis import claims, stats
from analysis.claims_fig4 import kendall_w
from analysis.records import RecordError, load_trials
from analysis.verdicts import Claim, judge, judge_band


def _set(folder: Path, **config) -> None:
    """Merge keys into a trial's config.json (nested 'config' too)."""
    path = folder / "config.json"
    doc = json.loads(path.read_text())
    doc["config"].update(config.pop("config", {}))
    doc.update(config)
    path.write_text(json.dumps(doc))


def _rows(root: Path) -> dict[str, Claim]:
    return {c.id: c for c in claims.all_claims(load_trials(root))}


def _claim() -> Claim:
    return Claim("x", "fig2", "", "", "", "")


def test_equal_values_give_no_direction_without_a_floor_and_an_interval_with_one():
    iv = stats.diff_interval([20.0] * 3, [19.5] * 3)
    row = judge(_claim(), iv)
    assert row.verdict == "inconclusive" and "zero spread" in row.detail and row.seeds_needed == "not estimable"
    floored = stats.diff_interval([20.0] * 3, [19.5] * 3, sd_floor=1.0)
    assert floored["ci_low"] < 0.5 < floored["ci_high"] and floored["ci_high"] - floored["ci_low"] > 1.0
    assert judge(_claim(), floored).verdict == "inconclusive"  # 0.5 points is within one image's rounding


def test_two_seeds_never_give_a_direction():
    row = judge(_claim(), stats.diff_interval([20.0, 20.1], [10.0, 10.1]))
    assert row.verdict == "inconclusive" and "fewer than 3" in row.detail


def _fig2(root: Path, finals: dict[str, list[list[float]]], valid: int = 5000) -> None:
    for space, curves in finals.items():
        for seed, curve in enumerate(curves):
            folder = write_trial(root, "fig2", f"enas-{space}-s{seed}", "enas", space, seed, curve)
            _set(folder, config={"data": {"valid_size": valid}})


def test_duplicated_curves_count_once(tmp_path: Path):
    same = [0.3 + 0.02 * e for e in range(12)]
    _fig2(tmp_path, {"original": [same, same, same], "extended": [[v + 0.1 for v in same]] * 2
                     + [[v + 0.11 for v in same]]})
    row = _rows(tmp_path)["fig2.sign"]
    assert row.n == "2 vs 1 seeds" and row.verdict == "inconclusive"


def test_a_negative_epoch_makes_seeds_needed_not_estimable(tmp_path: Path):
    """The old rule took the epoch with the lowest lower bound and quoted seeds while epoch 2's mean was below 0."""
    orig = [[0.30 + 0.02 * e + 0.01 * s for e in range(12)] for s in range(3)]
    ext = [[v + (0.05 if e != 2 else -0.02) + 0.03 * (s - 1) * (e == 5) for e, v in enumerate(c)]
           for s, c in enumerate(orig)]
    _fig2(tmp_path, {"original": orig, "extended": ext})
    row = _rows(tmp_path)["fig2.above_throughout"]
    assert row.verdict == "inconclusive" and row.seeds_needed == "not estimable"
    assert "below 0 at epochs [3]" in row.detail


def test_fig2_below_its_gate_is_not_run_scale_with_what_it_lacks(tmp_path: Path):
    curves = [[0.3 + 0.02 * e + 0.01 * s for e in range(12)] for s in range(3)]
    _fig2(tmp_path, {"original": curves, "extended": [[v + 0.2 for v in c] for c in curves]}, valid=300)
    row = _rows(tmp_path)["fig2.sign"]
    assert row.verdict == "not run (scale)" and "300 validation images < 2,000" in row.detail
    assert row.effect == pytest.approx(20.0)  # the value is still shown


def _fig4(root: Path, samples: list[list[list[str]]], mode: str = "intended", steps: int = 100) -> None:
    for seed, sample in enumerate(samples):
        tid = f"enas-extended{'-released' if mode != 'intended' else ''}-s{seed}"
        folder = write_trial(root, "fig4", tid, "enas", "extended", seed, [0.5] * 12, samples=sample)
        _set(folder, branch_mode=mode, config={"controller": {"train_steps": steps}})


def test_fig4_gate_and_duplicated_samples(tmp_path: Path):
    a = [["conv1x3"] * 6] * 20
    b = [["conv3x3"] * 6] * 20
    _fig4(tmp_path / "small", [a, b, a], steps=1)  # 12 epochs x 1 update
    rows = _rows(tmp_path / "small")
    assert rows["fig4.ops_above_uniform"].verdict == "not run (scale)"
    assert "12 controller updates < 1,000" in rows["fig4.ops_above_uniform"].detail
    _fig4(tmp_path / "big", [a, b, a])  # 1,200 updates, but seeds 0 and 2 sampled the same ops
    row = _rows(tmp_path / "big")["fig4.ops_above_uniform"]
    assert row.n == "2 distinct trials" and row.verdict == "inconclusive" and "identical samples" in row.detail


def test_kendalls_w_and_agreement_row(tmp_path: Path):
    assert kendall_w([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]) == pytest.approx(1.0)
    same = [[op] * 6 for op in EXTENDED for _ in range(EXTENDED.index(op) + 1)]  # count rises with the op's index
    _fig4(tmp_path, [same, same[1:], same[2:]])
    row = _rows(tmp_path)["fig4.agreement"]
    assert row.effect > 0.9 and row.verdict == "not reproduced"  # the trials do prefer the same ops


def test_interaction_paired_by_seed(tmp_path: Path):
    base = [0.3 + 0.02 * e for e in range(12)]
    for seed in range(3):
        j = 0.004 * seed
        for space, mode, shift in (("original", "intended", 0.0), ("extended", "intended", 0.01 + j),
                                   ("original", "as-released", 0.0), ("extended", "as-released", 0.09 - 2 * j)):
            tid = f"enas-{space}{'-released' if mode != 'intended' else ''}-s{seed}"
            folder = write_trial(tmp_path, "fig2", tid, "enas", space, seed, [v + shift + j for v in base])
            _set(folder, branch_mode=mode)
    row = _rows(tmp_path)["fig2.interaction"]
    assert row.effect == pytest.approx(6.8) and row.n == "3 seeds x 4 cells" and row.verdict == "reproduced"


def test_release_option_rows_read_fig2_release_only(tmp_path: Path):
    base = [0.3 + 0.02 * e for e in range(12)]
    for seed in range(3):
        j = 0.004 * seed
        for exp, space, mode, shift in (("fig2", "original", "intended", 0.0), ("fig2", "extended", "intended", 0.01),
                                        ("fig2", "original", "as-released", 0.0),
                                        ("fig2", "extended", "as-released", 0.09),
                                        ("fig2_release", "original", "as-released", 0.0),
                                        ("fig2_release", "extended", "as-released", 0.05 + j)):
            tid = f"enas-{space}-{mode}-s{seed}"
            folder = write_trial(tmp_path, exp, tid, "enas", space, seed, [v + shift + j for v in base])
            _set(folder, branch_mode=mode)
    for space in ("original", "extended"):  # a seed only fig2 has: read into the release rows, it shows in their n
        extra = write_trial(tmp_path, "fig2", f"enas-{space}-as-released-s3", "enas", space, 3, base)
        _set(extra, branch_mode="as-released")
    rows = _rows(tmp_path)
    assert rows["fig2.interaction"].effect == pytest.approx(8.0)  # fig2's cells only: the release trials stay out
    assert rows["fig2.sign[release]"].effect == pytest.approx(5.4) and rows["fig2.sign[release]"].n == "3 vs 3 seeds"
    assert rows["fig2.interaction[release]"].effect == pytest.approx(4.4)  # the release gap minus fig2's intended
    assert rows["fig2.interaction[release]"].n == "3 seeds x 4 cells"


def test_release_rows_say_how_to_run_them(tmp_path: Path):
    write_trial(tmp_path, "fig2", "enas-original-s0", "enas", "original", 0, [0.3, 0.4])
    row = _rows(tmp_path)["fig2.sign[release]"]
    assert row.verdict == "not run" and "experiments run fig2_release" in row.detail


def test_params_seeds_are_against_the_band_not_zero():
    row = judge_band(_claim(), stats.mean_interval([4.5, 5.5, 6.5]), (5.0, 8.4))
    assert row.verdict == "inconclusive"
    want = stats.seeds_needed(5.5 - 5.0, 1.0)
    assert row.seeds_needed == want and want > stats.seeds_needed(5.5, 1.0)


def test_headline_separates_kinds_and_json_is_deterministic(tmp_path: Path):
    (tmp_path / "r").mkdir()
    claims.run_claims(tmp_path / "r")
    first = (tmp_path / "r" / "figures" / "claims.json").read_bytes()
    claims.run_claims(tmp_path / "r")
    assert (tmp_path / "r" / "figures" / "claims.json").read_bytes() == first
    doc = json.loads(first)
    assert [line.split(" ", 1)[1].split(":")[0] for line in doc["headline"]] == [
        "claims of the paper", "checks of the kit's own mechanics", "true by construction"]
    kinds = {r["id"]: r["kind"] for r in doc["claims"]}
    assert kinds["table1.num_ops"] == kinds["table1.search_cost"] == "tautology"
    assert kinds["fig5.p2_entropy_falls"] == "mechanics" and kinds["fig2.interaction"] == "paper"


def test_spreads_in_claims_json_recompute_seeds_needed(tmp_path: Path):
    for seed, (o, e) in enumerate([(0.30, 0.40), (0.40, 0.35), (0.35, 0.45)]):
        write_trial(tmp_path, "fig2", f"enas-original-s{seed}", "enas", "original", seed, [o] * 12)
        write_trial(tmp_path, "fig2", f"enas-extended-s{seed}", "enas", "extended", seed, [e] * 12)
    claims.run_claims(tmp_path)
    row = next(r for r in json.loads((tmp_path / "figures" / "claims.json").read_text())["claims"]
               if r["id"] == "fig2.sign")
    s = row["spread"]
    assert row["seeds_needed"] == stats.seeds_needed(row["effect"], s["sd_a"], s["sd_b"], s["margin"])


def _ablation_records(root: Path, with_ops: bool, longest_ran: int = 20) -> None:
    """3 seeds at 10ep and 20ep; the 10ep run ends 5 points above the 20ep one's epoch 9."""
    for seed in range(3):
        for budget, n in (("10ep", 10), ("20ep", longest_ran)):
            last = "conv5x5" if budget == "10ep" else "conv3x3"  # one layer of six differs
            extra = {"argmax_ops": ["conv3x3"] * 5 + [last]} if with_ops else None
            accs = [0.2 + 0.02 * e + (0.05 if budget == "10ep" and e == n - 1 else 0) + 0.01 * seed for e in range(n)]
            write_trial(root, "fig5", f"nasib-superkernel-b{budget}-s{seed}", "nasib", "superkernel", seed,
                        accs, budget_label=budget, epoch_extra=extra)


def test_ablation_pairs_the_truncated_longest_run_and_argmax_ops_only_add_layers(tmp_path: Path):
    for with_ops in (False, True):
        _ablation_records(tmp_path / str(with_ops), with_ops)
    plain = _rows(tmp_path / "False")["fig5.budget_aware_ablation"]
    assert plain.effect == pytest.approx(5.0) and plain.verdict == "reproduced"
    assert "no per-epoch argmax_ops" in plain.detail and "left out" not in plain.detail
    row = _rows(tmp_path / "True")["fig5.budget_aware_ablation"]
    assert row.effect == pytest.approx(5.0) and "differ in 17% of layers" in row.detail


def test_ablation_is_not_run_when_the_longest_run_is_not_cut_short(tmp_path: Path):
    _ablation_records(tmp_path, True, longest_ran=10)  # the 20ep runs stop where the 10ep runs do: not truncated
    row = _rows(tmp_path)["fig5.budget_aware_ablation"]
    assert row.verdict == "not run" and "goes past the last epoch" in row.detail


@pytest.mark.parametrize("experiment", ["fig2", "fig5"])
def test_two_trials_of_one_seed_in_a_cell_are_named_not_overwritten(tmp_path: Path, experiment: str):
    if experiment == "fig2":
        for seed in range(3):
            write_trial(tmp_path, "fig2", f"enas-original-s{seed}", "enas", "original", seed, [0.3 + seed / 100] * 12)
            write_trial(tmp_path, "fig2", f"enas-extended-s{seed}", "enas", "extended", seed, [0.4 + seed / 100] * 12)
        write_trial(tmp_path, "fig2", "enas-original-copy", "enas", "original", 1, [0.9] * 12)
    else:
        _ablation_records(tmp_path, False)
        write_trial(tmp_path, "fig5", "nasib-superkernel-b10ep-copy", "nasib", "superkernel", 1, [0.9] * 10,
                    budget_label="10ep")
    with pytest.raises(RecordError, match="two trials of seed 1 in one comparison cell") as err:
        _rows(tmp_path)
    assert "-copy" in str(err.value) and "-s1" in str(err.value)  # both folders named


def test_trials_moved_aside_by_force_are_not_read(tmp_path: Path):
    for seed in range(3):
        write_trial(tmp_path, "fig2", f"enas-original-s{seed}", "enas", "original", seed, [0.3 + seed / 100] * 12)
        write_trial(tmp_path, "fig2", f"enas-extended-s{seed}", "enas", "extended", seed, [0.4 + seed / 100] * 12)
    write_trial(tmp_path, "fig2", "enas-original-s1.old-20261204-120000", "enas", "original", 1, [0.9] * 12)
    assert sorted(t.trial_id for t in load_trials(tmp_path).ok if t.space == "original") == [
        f"enas-original-s{seed}" for seed in range(3)]
    assert _rows(tmp_path)["fig2.sign"].effect == pytest.approx(10.0)  # the moved-aside 90% is not counted


def test_unwritable_output_is_one_line(tmp_path: Path):
    (tmp_path / "r").mkdir()
    (tmp_path / "out" / "figures" / "claims.md").mkdir(parents=True)  # a folder where the file goes
    res = CliRunner().invoke(claims.main, [str(tmp_path / "r"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "claims.md" in res.output and "Traceback" not in res.output


def test_every_analysis_command_reports_an_unwritable_file_in_one_line(tmp_path: Path):
    from analysis.__main__ import cli
    from analysis.inventory import main as inventory_main

    write_trial(tmp_path, "fig2", "enas-original-s0", "enas", "original", 0, [0.3, 0.4])
    (tmp_path / "figures" / "fig2_curves.csv").mkdir(parents=True)
    (tmp_path / "inventory.csv").mkdir()
    for command, args, name in ((cli, ["curves", str(tmp_path), "--figure", "fig2"], "fig2_curves.csv"),
                                (inventory_main, [str(tmp_path)], "inventory.csv")):
        res = CliRunner().invoke(command, args)
        assert res.exit_code == 1 and name in res.output and "Traceback" not in res.output, res.output


def test_the_medium_scale_clears_the_gates_it_is_for(tmp_path: Path):
    """fig2/fig4/fig5 at medium: above FIG2/FIG4/FIG5_GATE, same seeds in every fig2 cell, 4 target-epoch budgets."""
    from analysis.gates import FIG2_GATE, FIG4_GATE, FIG5_GATE
    from experiments.runner import expand, load_config

    fig2 = expand(load_config("fig2"), "medium", tmp_path, check_shared=False)
    cells: dict[tuple, set[int]] = {}
    for plan in fig2:
        over = plan.overrides
        assert over["data"]["valid_size"] >= FIG2_GATE.min_valid and over["epochs"] >= FIG2_GATE.min_epochs
        assert over["epochs"] * over["controller"]["train_steps"] >= FIG4_GATE.min_updates
        cells.setdefault((plan.space, over.get("branch_mode", "intended")), set()).add(plan.seed)
    assert len(cells) == 4 and len({frozenset(s) for s in cells.values()}) == 1 and len(next(iter(cells.values()))) >= 5
    fig4 = expand(load_config("fig4"), "medium", tmp_path)  # shares fig2's trials: same settings, checked
    assert {p.folder for p in fig4} <= {p.folder for p in fig2}
    fig5 = expand(load_config("fig5"), "medium", tmp_path, check_shared=False)
    budgets = sorted({int(p.overrides["budget"].removesuffix("ep")) for p in fig5})
    assert len(budgets) == 4 and budgets[0] >= FIG5_GATE.min_epochs and len({p.seed for p in fig5}) >= 4
    assert all(p.overrides["data"]["valid_size"] >= FIG5_GATE.min_valid for p in fig5)
