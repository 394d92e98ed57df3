"""The claims scorecard on synthetic records: verdicts follow the intervals, and nothing is judged from air."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from test_analysis import write_trial

from analysis import claims, curves, stats
from analysis.claim_measures import unconventional
from analysis.records import load_trials

EPOCHS = 12  # above the Fig 2 gate's 10 epochs (write_trial's configs use the default 5,000 images)


def _fig2(root: Path, gap: float, seeds: int = 3, commits: tuple[str, ...] = ("a" * 40,)) -> None:
    """ENAS original/extended trials with 12 epochs; extended sits `gap` (fraction) above at every epoch."""
    for seed in range(seeds):
        base = [0.30 + 0.02 * e + 0.01 * seed for e in range(EPOCHS)]
        prov = {"git_commit": commits[seed % len(commits)], "git_dirty": False}
        for space, shift in (("original", 0.0), ("extended", gap)):
            folder = write_trial(root, "fig2", f"enas-{space}-s{seed}", "enas", space, seed,
                                 [v + shift for v in base])
            cfg = json.loads((folder / "config.json").read_text())
            cfg["provenance"].update(prov)
            (folder / "config.json").write_text(json.dumps(cfg))


def _by_id(root: Path) -> dict[str, claims.Claim]:
    return {c.id: c for c in claims.all_claims(load_trials(root))}


def test_fig2_clear_gap_is_reproduced_and_reverse_is_not(tmp_path: Path) -> None:
    _fig2(tmp_path / "up", 0.15)
    up = _by_id(tmp_path / "up")
    assert up["fig2.above_throughout"].verdict == "reproduced"
    assert up["fig2.sign"].verdict == "reproduced"
    assert up["fig2.margin"].verdict == "not reproduced"  # 15 [15, 15]: above 5 but excludes 10
    assert up["fig2.margin"].effect == pytest.approx(15.0)
    _fig2(tmp_path / "down", -0.15)
    down = _by_id(tmp_path / "down")
    assert down["fig2.above_throughout"].verdict == "not reproduced"
    assert down["fig2.sign"].verdict == "not reproduced"
    assert down["fig2.margin"].verdict == "not reproduced"


def test_small_gap_with_noise_is_inconclusive_and_says_how_many_seeds(tmp_path: Path) -> None:
    for seed, (o, e) in enumerate([(0.30, 0.40), (0.40, 0.35), (0.35, 0.45)]):
        write_trial(tmp_path, "fig2", f"enas-original-s{seed}", "enas", "original", seed, [o] * EPOCHS)
        write_trial(tmp_path, "fig2", f"enas-extended-s{seed}", "enas", "extended", seed, [e] * EPOCHS)
    row = _by_id(tmp_path)["fig2.above_throughout"]
    assert row.verdict == "inconclusive" and row.ci_low < 0 < row.ci_high
    assert row.seeds_needed and row.seeds_needed > 3 and f"{row.seeds_needed} seeds" in row.detail


def test_one_seed_gives_no_interval_and_no_verdict_either_way(tmp_path: Path) -> None:
    _fig2(tmp_path, 0.15, seeds=1)
    rows = _by_id(tmp_path)
    assert rows["fig2.margin"].verdict == "inconclusive" and rows["fig2.margin"].ci_low is None
    assert rows["fig2.above_throughout"].verdict == "inconclusive"


def test_missing_records_are_not_run_and_files_written(tmp_path: Path) -> None:
    _fig2(tmp_path, 0.15, commits=("a" * 40, "b" * 40))
    claims.run_claims(tmp_path, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "figures" / "claims.json").read_text())
    rows = {r["id"]: r for r in doc["claims"]}
    for figure in ("fig3", "fig4", "fig5", "table1"):
        measured = [r for r in rows.values() if r["figure"] == figure and r["id"] != "table1.ops_12x"]
        assert {r["verdict"] for r in measured} == {"not run"}
    assert any("mixed commits (2" in f for f in rows["fig2.margin"]["flags"])
    markdown = (tmp_path / "out" / "figures" / "claims.md").read_text()
    assert "by a margin of 10%" in markdown and "**reproduced**" in markdown
    table = markdown.split("## Each claim")[0]
    assert max(len(line) for line in table.splitlines() if line.startswith("|")) < 120  # reads in a terminal


def test_empty_results_give_every_row_not_run(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    claims.run_claims(tmp_path / "r")
    doc = json.loads((tmp_path / "r" / "figures" / "claims.json").read_text())
    measured = [r for r in doc["claims"] if r["id"] != "table1.ops_12x"]  # arithmetic needs no records
    assert measured and {r["verdict"] for r in measured} == {"not run"}


def _fig3_trial(root: Path, trial_id: str, method: str, space: str, seed: int, accs: list[float],
                epoch_s: float) -> None:
    folder = write_trial(root, "fig3", trial_id, method, space, seed, accs)
    rows = [json.loads(line) for line in (folder / "epochs.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        row["wall_s"] = (i + 1) * epoch_s
    (folder / "epochs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_fig3_equal_epochs_and_equal_time_can_disagree(tmp_path: Path) -> None:
    """DARTS: slow epochs that learn fast per epoch; NASIB-1: cheap epochs. Time favours NASIB-1."""
    for seed in range(3):
        jitter = 0.005 * seed
        _fig3_trial(tmp_path, f"darts-s{seed}", "darts", "narrow", seed,
                    [0.20 + 0.04 * e + jitter for e in range(12)], epoch_s=10.0)
        _fig3_trial(tmp_path, f"nasib-s{seed}", "nasib", "narrow", seed,
                    [0.18 + 0.01 * e + jitter for e in range(60)], epoch_s=2.0)
    rows = _by_id(tmp_path)
    assert rows["fig3.nasib1_best@epochs"].verdict == "not reproduced"
    assert rows["fig3.nasib1_best@wall-clock"].verdict == "reproduced"
    assert rows["fig3.superkernel_less_efficient@epochs"].verdict == "not run"


def test_stats_helpers() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    iv = stats.diff_interval([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert iv["effect"] == pytest.approx(1.0) and iv["ci_low"] < 1.0 < iv["ci_high"]
    assert stats.seeds_needed(1.0, 1.0, 1.0) == math.ceil((1.959964 + 0.841621) ** 2 * 2)
    assert stats.seeds_needed(-1.0, 1.0, 1.0) is None
    assert unconventional("conv1x3") and unconventional("conv2x2") and unconventional("sep4x4")
    assert not unconventional("conv3x3") and not unconventional("conv1x1") and not unconventional("maxpool3x3")


def test_curve_tail_on_one_seed_is_marked_and_has_no_interval(tmp_path: Path) -> None:
    for seed, n in enumerate([2, 4, 4]):
        write_trial(tmp_path, "fig2", f"enas-original-s{seed}", "enas", "original", seed, [0.3] * n)
    curves.run_curves(tmp_path, "fig2", tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "figures" / "fig2_curves.csv")
    tail = table[table["epoch"] >= 2]
    assert (tail["n"] == 2).all() and not tail["reliable"].any()
    assert table[table["epoch"] < 2]["reliable"].all()


def test_fig3_csv_has_wall_clock_curves(tmp_path: Path) -> None:
    for seed in range(2):
        _fig3_trial(tmp_path, f"darts-s{seed}", "darts", "narrow", seed, [0.2, 0.3, 0.4], epoch_s=10.0)
    curves.run_curves(tmp_path, "fig3", tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "figures" / "fig3_curves.csv")
    wall = table[table["metric"] == "valid_acc@wall"]
    assert not wall.empty and wall["wall_s"].max() == pytest.approx(30.0) and wall["epoch"].isna().all()
    assert wall[wall["wall_s"] < 10]["n"].sum() == 0  # nothing before the first epoch finished


def test_seeds_needed_is_unknown_without_a_per_seed_spread():
    """A rank correlation has no per-seed SD: 'unknown', never the old '2 seeds'."""
    assert stats.seeds_needed(0.3, None) is None and stats.seeds_needed(0.3, math.nan) is None
    assert stats.seeds_needed(0.3, 0.0, 0.0) == 2  # a known zero spread is another matter


def test_two_seed_curves_are_dotted_as_the_caption_says_and_fig5_fits_a_page(tmp_path: Path) -> None:
    """n = 2 everywhere used to count as 'reliable' (the cap at a group's largest n) and be drawn solid."""
    for seed in range(2):
        write_trial(tmp_path, "fig2", f"enas-original-s{seed}", "enas", "original", seed, [0.3, 0.35, 0.4])
    curves.run_curves(tmp_path, "fig2", tmp_path / "out")
    assert not pd.read_csv(tmp_path / "out" / "figures" / "fig2_curves.csv")["reliable"].any()
    for seed in range(2):
        write_trial(tmp_path, "fig5", f"nasib-b{seed}", "nasib", "superkernel", seed, [0.2, 0.3, 0.35],
                    budget_label="3ep", epoch_extra={"p_explore": 0.5, "p2_entropy": 0.9})
    curves.run_curves(tmp_path, "fig5", tmp_path / "out")
    height, width = plt.imread(tmp_path / "out" / "figures" / "fig5_curves.png").shape[:2]
    assert width <= 1600 and height > 0.6 * width  # two panels a row, not a 3120-pixel strip
