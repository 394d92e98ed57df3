"""Tests of the analysis package on synthetic trial folders written per the records contract."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from analysis import curves, kernel_freq, stats, table1
from analysis.__main__ import cli
from analysis.records import NoTrialsError, RecordError, epochs_frame, load_trials, select_experiment

ORIGINAL = ["conv3x3", "sep3x3", "conv5x5", "sep5x5", "avgpool3x3", "maxpool3x3"]
EXTENDED = ORIGINAL + ["conv1x1", "conv1x3", "conv3x1", "conv1x5", "conv5x1", "conv1x7", "conv7x1",
                       "conv2x2", "conv4x4", "conv3x5", "conv5x3", "conv7x7"]
NUM_OPS = {"original": 6, "extended": 18, "narrow": 7, "superkernel": 81}


def write_trial(root: Path, experiment: str, trial_id: str, method: str, space: str, seed: int,
                valid: list[float], *, finished: bool = True, status: str = "ok", result_fmt: int | None = 2,
                budget_s: float | None = None, budget_label: str | None = None, extra: dict | None = None,
                epoch_extra: dict | None = None, samples: list[list[str]] | None = None) -> Path:
    """Write one trial folder in format 2: config.json, epochs.jsonl (valid accuracy per epoch), result.json,
    samples; `method` is the strategy, or enas/retrain (tests/test_format.py covers format 1)."""
    folder = root / experiment / trial_id
    folder.mkdir(parents=True)
    family = method if method in ("enas", "retrain") else "nasib"
    names = {"family": family, "strategy": None if method == "retrain" else method}
    config = {"trial_id": trial_id, "experiment": experiment, **names, "space": space, "seed": seed,
              "scale": "smoke", "budget_s": budget_s, "budget_label": budget_label, "config": {},
              "provenance": {"device": "cpu", "device_name": "test-cpu", "data_source": "synthetic",
                             "data_copy": "test copy"},
              "format": 2}
    (folder / "config.json").write_text(json.dumps(config))
    lines = []
    for epoch, acc in enumerate(valid):
        row = {"epoch": epoch, "epoch_s": 1.0, "wall_s": epoch + 1.0, "train_loss": 2.0 - 0.1 * epoch,
               "train_acc": acc, "valid_acc": acc, "lr": 0.05, **(epoch_extra or {})}
        lines.append(json.dumps(row))
    (folder / "epochs.jsonl").write_text("\n".join(lines) + "\n")
    if samples is not None:
        doc = {"space": space, "op_names": EXTENDED if space == "extended" else ORIGINAL,
               "samples": [{"ops": ops, "skips": [[0] * i for i in range(len(ops))]} for ops in samples]}
        (folder / "samples.json").write_text(json.dumps(doc))
    if finished:
        result = {"format": result_fmt, "status": status, "trial_id": trial_id, **names,
                  "space": space, "seed": seed, "epochs": len(valid), "final_valid_acc": valid[-1],
                  "best_valid_acc": max(valid),
                  "search_s": 7200.0, "gpu_days": None, "device": "cpu", "params": 1_500_000,
                  "num_ops": NUM_OPS[space], "budget_s": budget_s,
                  "diverged_epoch": None, **(extra or {})}
        if result_fmt is None:
            del result["format"]
        (folder / "result.json").write_text(json.dumps(result))
    return folder


def fig2_records(root: Path, orig_finals: list[float], ext_finals: list[float], epochs: int = 3) -> None:
    """ENAS original/extended trials whose curves (3 epochs unless told) end at the given final accuracies."""
    for space, finals in (("original", orig_finals), ("extended", ext_finals)):
        for seed, final in enumerate(finals):
            curve = [final - 0.1 * (epochs - 1 - e) / max(1, epochs - 2) for e in range(epochs)]
            write_trial(root, "fig2", f"enas-{space}-s{seed}", "enas", space, seed, curve)


def test_kernel_frequencies_counted_exactly(tmp_path: Path) -> None:
    write_trial(tmp_path, "fig4", "enas-extended-s0", "enas", "extended", 0, [0.5],
                samples=[["conv3x3", "conv1x7", "conv1x7"], ["conv7x1", "conv3x3", "maxpool3x3"]])
    write_trial(tmp_path, "fig4", "enas-extended-s1", "enas", "extended", 1, [0.5],
                samples=[["conv1x7", "conv2x2", "conv2x2"], ["conv2x2", "sep3x3", "conv1x7"]])
    write_trial(tmp_path, "fig2", "enas-original-s0", "enas", "original", 0, [0.5], samples=[["conv3x3"] * 3])
    kernel_freq.run_kernel_freq(tmp_path, None, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "figures" / "fig4_kernel_freq.csv", index_col="op")
    assert list(table.index) == EXTENDED
    trial_cols = ["fig4/enas-extended-s0", "fig4/enas-extended-s1"]
    assert list(table.columns) == ["original", *trial_cols, "total", "share_pct"]
    s0, s1 = table["fig4/enas-extended-s0"], table["fig4/enas-extended-s1"]
    assert (s0["conv3x3"], s0["conv1x7"], s0["conv7x1"], s0["maxpool3x3"], s0.sum()) == (2, 2, 1, 1, 6)
    assert (s1["conv1x7"], s1["conv2x2"], s1["sep3x3"], s1.sum()) == (2, 3, 1, 6)
    assert table.loc["conv1x7", "total"] == 4 and table.loc["conv2x2", "total"] == 3
    assert table["total"].sum() == 12 and table.loc["conv5x5", "total"] == 0
    assert table.loc["conv2x2", "share_pct"] == pytest.approx(25.0)
    assert table["original"].tolist() == [True] * 6 + [False] * 12
    assert (tmp_path / "out" / "figures" / "fig4_kernel_freq.png").stat().st_size > 5000
    result = kernel_freq.added_share_tests(kernel_freq.count_ops(
        kernel_freq.select_trials(select_experiment(load_trials(tmp_path), "fig4"))))
    added = 8  # conv1x7 x4, conv7x1, conv2x2 x3
    assert result["pooled"]["k"] == added and result["pooled"]["expected"] == pytest.approx(12 / 18)
    assert result["pooled"]["p_two_sided"] == pytest.approx(sps.binomtest(added, 12, 12 / 18).pvalue)
    assert result["per_trial"] == {"fig4/enas-extended-s0": pytest.approx(3 / 6),
                                   "fig4/enas-extended-s1": pytest.approx(5 / 6)}


def test_kernel_freq_rejects_unknown_op(tmp_path: Path) -> None:
    write_trial(tmp_path, "fig4", "enas-extended-s0", "enas", "extended", 0, [0.5], samples=[["conv9x9"]])
    with pytest.raises(RecordError, match="samples.json.*conv9x9"):
        kernel_freq.run_kernel_freq(tmp_path, None, tmp_path / "out")


def test_curve_bands_match_numpy_and_scipy(tmp_path: Path) -> None:
    orig = [[0.50, 0.60, 0.62], [0.52, 0.58, 0.66], [0.47, 0.61, 0.65]]
    for seed, vals in enumerate(orig):
        write_trial(tmp_path, "fig2", f"enas-original-s{seed}", "enas", "original", seed, vals)
    write_trial(tmp_path, "fig2", "enas-extended-s0", "enas", "extended", 0, [0.55, 0.65, 0.70])
    curves.run_curves(tmp_path, "fig2", tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "figures" / "fig2_curves.csv")
    assert list(table.columns) == ["label", "metric", "epoch", "wall_s", "n", "mean", "std", "ci_low", "ci_high",
                                   "reliable"]
    got = table[table["label"] == "ENAS original"].sort_values("epoch")
    values = 100 * np.array(orig)  # recorded as fractions, reported in percent
    mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
    half = sps.t.ppf(0.975, 2) * std / np.sqrt(3)
    np.testing.assert_allclose(got["mean"], mean)
    np.testing.assert_allclose(got["std"], std)
    np.testing.assert_allclose(got["ci_low"], mean - half)
    np.testing.assert_allclose(got["ci_high"], mean + half)
    assert got["n"].tolist() == [3, 3, 3]
    single = table[table["label"] == "ENAS extended"]
    assert single["n"].tolist() == [1, 1, 1] and single["std"].isna().all() and single["ci_low"].isna().all()
    assert (tmp_path / "out" / "figures" / "fig2_curves.png").stat().st_size > 5000


def test_fig2_reproduced_when_extended_clearly_better(tmp_path: Path) -> None:
    fig2_records(tmp_path, [0.70, 0.71, 0.69], [0.80, 0.81, 0.82], epochs=12)
    result = runner_ok(["curves", str(tmp_path), "--figure", "fig2"])
    assert "extended above original reproduced, ~10 points reproduced" in result.output
    doc = json.loads((tmp_path / "figures" / "fig2_test.json").read_text())
    assert doc["verdict"] == "reproduced" and doc["welch"]["p_one_sided"] < 0.01
    assert doc["mean_diff_points"] == pytest.approx(11.0)
    assert doc["extended_above_at_every_epoch"] is True and doc["epochs_above"] == doc["epochs_compared"] == 12
    expected = sps.ttest_ind([81.0, 80.0, 82.0], [70.0, 71.0, 69.0], equal_var=False, alternative="greater")
    assert doc["welch"]["p_one_sided"] == pytest.approx(expected.pvalue)


def test_fig2_test_file_carries_the_scorecards_verdict(tmp_path: Path) -> None:
    """p = 0.47 at n = 3 is inconclusive in fig2_test.json exactly as in the scorecard (it read NOT REPRODUCED)."""
    fig2_records(tmp_path, [0.70, 0.75, 0.69], [0.70, 0.66, 0.73], epochs=12)
    runner_ok(["curves", str(tmp_path), "--figure", "fig2"])
    doc = json.loads((tmp_path / "figures" / "fig2_test.json").read_text())
    runner_ok(["claims", str(tmp_path)])
    rows = {r["id"]: r["verdict"] for r in json.loads((tmp_path / "figures" / "claims.json").read_text())["claims"]}
    assert doc["verdict"] == rows["fig2.sign"] == "inconclusive" and doc["extended_above_at_every_epoch"] is False
    # fig2's own rows; the [release] rows read fig2_release's trials, which fig2_test.json does not cover
    assert doc["scorecard"] == {k: v for k, v in rows.items() if k.startswith("fig2.") and "[release]" not in k}


def test_fig2_below_the_gate_reads_not_run_scale(tmp_path: Path) -> None:
    fig2_records(tmp_path, [0.70, 0.71, 0.69], [0.80, 0.81, 0.82])  # 3 epochs: below FIG2_GATE's 10
    result = runner_ok(["curves", str(tmp_path), "--figure", "fig2"])
    doc = json.loads((tmp_path / "figures" / "fig2_test.json").read_text())
    assert doc["verdict"] == "not run (scale)" and "3 epochs < 10" in result.output


def test_fig2_single_seed_cannot_be_tested(tmp_path: Path) -> None:
    fig2_records(tmp_path, [0.70], [0.90, 0.91], epochs=12)
    result = runner_ok(["curves", str(tmp_path), "--figure", "fig2"])
    assert "extended above original inconclusive" in result.output
    assert "n=1: no interval" in result.output
    doc = json.loads((tmp_path / "figures" / "fig2_test.json").read_text())
    assert doc["original"]["std"] is None and doc["welch"]["p_one_sided"] is None


def test_unfinished_skipped_and_diverged_not_averaged(tmp_path: Path) -> None:
    fig2_records(tmp_path, [0.70, 0.72], [0.80, 0.82])
    write_trial(tmp_path, "fig2", "enas-original-s9", "enas", "original", 9, [0.1, 0.1, 0.1], finished=False)
    write_trial(tmp_path, "fig2", "enas-extended-s9", "enas", "extended", 9, [0.1, 0.1, 0.1],
                status="diverged")
    trials = load_trials(tmp_path)
    assert len(trials.ok) == 4 and len(trials.unfinished) == 1
    assert [t.trial_id for t in trials.excluded] == ["enas-extended-s9"]
    summary = trials.summary()
    assert "skipped 1 unfinished" in summary and "1 diverged (not averaged: fig2/enas-extended-s9)" in summary
    curves.run_curves(tmp_path, "fig2", tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "figures" / "fig2_curves.csv")
    final = table[table["epoch"] == 2].set_index("label")
    assert final.loc["ENAS original", "n"] == 2 and final.loc["ENAS original", "mean"] == pytest.approx(71.0)
    assert final.loc["ENAS extended", "n"] == 2 and final.loc["ENAS extended", "mean"] == pytest.approx(81.0)


def test_epochs_frame_columns(tmp_path: Path) -> None:
    write_trial(tmp_path, "fig5", "nasib-superkernel-b2h-s0", "nasib", "superkernel", 0, [0.3, 0.4],
                budget_s=7200.0, budget_label="2h", epoch_extra={"p_explore": 0.5})
    frame = epochs_frame(load_trials(tmp_path).ok)
    for col in ("trial_id", "experiment", "family", "strategy", "space", "seed", "budget_label", "epoch",
                "epoch_s", "wall_s", "train_loss", "train_acc", "valid_acc", "lr", "p_explore"):
        assert col in frame.columns
    assert len(frame) == 2 and frame["budget_label"].tolist() == ["2h", "2h"]


def test_a_record_names_its_family_and_strategy(tmp_path: Path) -> None:
    # A format-1 record's `method` is the strategy: a DARTS search belongs to the nasib family
    for tid, method in (("darts-narrow-s0", "darts"), ("enas-original-s0", "enas"), ("nasib-narrow-s0", "nasib")):
        write_trial(tmp_path, "fig3", tid, method, "narrow" if method != "enas" else "original", 0, [0.3])
    trials = load_trials(tmp_path)
    got = {t.trial_id: (t.family, t.strategy) for t in trials.ok}
    assert got == {"darts-narrow-s0": ("nasib", "darts"), "enas-original-s0": ("enas", "enas"),
                   "nasib-narrow-s0": ("nasib", "nasib")}
    assert [t.trial_id for t in trials.select(family="nasib", strategy="darts")] == ["darts-narrow-s0"]


@pytest.mark.parametrize("fmt", [3, None])
def test_wrong_format_names_the_file(tmp_path: Path, fmt: int | None) -> None:
    folder = write_trial(tmp_path, "fig2", "enas-original-s0", "enas", "original", 0, [0.5], result_fmt=fmt)
    with pytest.raises(RecordError, match=str(folder / "result.json")):
        load_trials(tmp_path)
    result = CliRunner().invoke(cli, ["curves", str(tmp_path), "--figure", "fig2"])
    assert result.exit_code != 0 and "result.json" in result.output and "format" in result.output


@pytest.mark.parametrize("args", [["curves", "{root}", "--figure", "fig3"], ["kernel-freq", "{root}"],
                                  ["table1", "{root}"], ["all", "{root}"]])
def test_empty_folder_exits_nonzero(tmp_path: Path, args: list[str]) -> None:
    write_trial(tmp_path, "fig2", "enas-original-s0", "enas", "original", 0, [0.5], finished=False)
    result = CliRunner().invoke(cli, [a.format(root=tmp_path) for a in args])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no finished trials") and result.output.count("\n") == 1
    with pytest.raises(NoTrialsError):
        load_trials(tmp_path / "missing")


def test_fig3_labels_and_fig5_budget_order(tmp_path: Path) -> None:
    specs = [("enas", "original"), ("nasib", "narrow"), ("nasib", "superkernel"), ("darts", "narrow"),
             ("snas", "narrow"), ("random", "narrow")]
    for method, space in specs:
        write_trial(tmp_path, "fig3", f"{method}-{space}-s0", method, space, 0, [0.4, 0.5])
    for label, budget in (("8h", 28800.0), ("2h", 7200.0)):
        write_trial(tmp_path, "fig5", f"nasib-superkernel-b{label}-s0", "nasib", "superkernel", 0, [0.4, 0.6],
                    budget_s=budget, budget_label=label, epoch_extra={"p_explore": 0.5})
    groups = curves.figure_groups(select_experiment(load_trials(tmp_path), "fig3"), "fig3")
    assert sorted(label for label, _ in groups) == sorted(
        ["ENAS", "NASIB-1 (narrow)", "NASIB-2 (superkernel)", "DARTS", "SNAS", "random"])
    curves.run_curves(tmp_path, "fig5", tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "figures" / "fig5_curves.csv")
    assert table["label"].unique().tolist() == ["2h", "8h"]
    assert set(table["metric"]) == {"valid_acc", "train_loss", "p_explore"}
    loss = table[(table["metric"] == "train_loss") & (table["label"] == "2h")]
    assert loss["mean"].tolist() == pytest.approx([2.0, 1.9])
    assert (tmp_path / "out" / "figures" / "fig5_curves.png").stat().st_size > 5000


def test_table1_paper_and_measured_rows(tmp_path: Path) -> None:
    for seed in (0, 1):
        write_trial(tmp_path, "table1", f"nasib-superkernel-s{seed}", "nasib", "superkernel", seed, [0.5])
        extra = {"source_trial": f"table1/nasib-superkernel-s{seed}", "source_strategy": "nasib",
                 "source_space": "superkernel", "test_acc": 0.9, "test_error": [4.0, 5.0][seed],
                 "params": [2_000_000, 3_000_000][seed]}
        write_trial(tmp_path, "table1", f"retrain-nasib-superkernel-s{seed}", "retrain", "superkernel", seed,
                    [0.9], extra=extra)
    table1.run_table1(tmp_path, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "tables" / "table1.csv", dtype=str).set_index("network")
    paper = json.loads(table1.PAPER_PATH.read_text())["rows"]
    assert len(paper) == 11 and all(r["source"] == "NASIB paper, Table 1" for r in paper)
    assert table.loc["NASIB", "params_m"] == "6.71" and table.loc["NASIB", "test_error"] == "3.57"
    assert table.loc["ENAS (Pham et al. (2018))", "search_cost"] == "0.45"
    row = table.loc["NASIB-2"]
    assert float(row["params_m"]) == pytest.approx(2.5) and float(row["test_error"]) == pytest.approx(4.5)
    assert float(row["test_error_std"]) == pytest.approx(np.std([4.0, 5.0], ddof=1))
    assert row["num_ops"] == "81" and float(row["search_cost"]) == pytest.approx(2.0)
    assert row["search_unit"] == "hours (CPU)" and (row["n_search"], row["n_retrain"]) == ("2", "2")
    for name in ("ENAS", "ENAS-extended", "NASIB-1"):
        cells = table.loc[name, ["params_m", "test_error", "num_ops", "search_cost"]].tolist()
        assert cells == ["not run"] * 4
    markdown = (tmp_path / "out" / "tables" / "table1.md").read_text()
    row_md = "| measured | NASIB-2 | test copy | 2.5 | 4.50 ± 0.71 | 81 | 2 h (CPU) | search 2, retrain 2 |"
    assert row_md in markdown
    assert "scale smoke; device: test-cpu; data: test copy; commit unknown (4 trial(s))" in markdown


def test_stats_single_value_and_tests() -> None:
    one = stats.summarize([3.0])
    assert one["n"] == 1 and math.isnan(one["std"]) and one["note"] == "n=1: no interval"
    assert stats.format_mean_std(one) == "3.00 (n=1: no interval)"
    welch = stats.welch_test([1.0], [2.0, 3.0])
    assert math.isnan(welch["p_one_sided"]) and "n>=2" in welch["note"]
    mw = stats.mann_whitney([5.0, 6.0, 7.0], [1.0, 2.0, 3.0])
    assert mw["p_one_sided"] == pytest.approx(0.05) and "0.05" in mw["note"]


def test_all_command_skips_missing_figures(tmp_path: Path) -> None:
    fig2_records(tmp_path, [0.70, 0.71], [0.80, 0.81])
    result = runner_ok(["all", str(tmp_path)])
    assert "fig4: skipped" in result.output and "fig5: skipped" in result.output
    assert (tmp_path / "figures" / "fig2_curves.csv").exists()
    assert (tmp_path / "tables" / "table1.md").exists()


def runner_ok(args: list[str]):
    """Invoke the analysis CLI and assert success, showing the output when it fails."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result


def test_analysis_never_imports_torch() -> None:
    code = ("import sys, analysis.__main__, analysis.curves, analysis.kernel_freq, analysis.table1; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0


def write_manifest(root: Path, experiment: str, folders: list[str], fmt: object = 2) -> Path:
    """results/<experiment>/trials.json as experiments/launchers.py writes it: owner/trial-id folders."""
    rows = [{"folder": f, "trial_id": f.split("/")[1], "owner": f.split("/")[0]} for f in folders]
    path = root / experiment / "trials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": fmt, "experiment": experiment, "scale": "smoke", "trials": rows}))
    return path


def shared_records(root: Path) -> None:
    """fig2 owns ENAS searches (extended ones with samples); fig3 and fig5 own their own searches."""
    for seed in (0, 1):
        write_trial(root, "fig2", f"enas-original-s{seed}", "enas", "original", seed, [0.5, 0.6])
        write_trial(root, "fig2", f"enas-extended-s{seed}", "enas", "extended", seed, [0.6, 0.7],
                    samples=[["conv1x7", "conv3x3"]])
        write_trial(root, "fig3", f"nasib-narrow-s{seed}", "nasib", "narrow", seed, [0.4, 0.5])
    write_trial(root, "fig5", "nasib-superkernel-b2h-s0", "nasib", "superkernel", 0, [0.3, 0.4],
                budget_s=7200.0, budget_label="2h")


def test_manifest_selects_shared_trials_by_default(tmp_path: Path) -> None:
    shared_records(tmp_path)
    # Owned by fig4 but not in its manifest (a stale folder): the manifest, not config.json, decides.
    write_trial(tmp_path, "fig4", "enas-extended-s9", "enas", "extended", 9, [0.6], samples=[["conv3x3"] * 2])
    write_manifest(tmp_path, "fig4", ["fig2/enas-extended-s0", "fig2/enas-extended-s1", "fig4/not-run-s2"])
    result = runner_ok(["kernel-freq", str(tmp_path)])
    assert "manifest " + str(tmp_path / "fig4" / "trials.json") in result.output
    assert "1 listed folder(s) not written yet" in result.output
    table = pd.read_csv(tmp_path / "figures" / "fig4_kernel_freq.csv", index_col="op")
    assert [c for c in table.columns if "/" in c] == ["fig2/enas-extended-s0", "fig2/enas-extended-s1"]
    assert table.loc["conv1x7", "total"] == 2 and table["total"].sum() == 4
    write_manifest(tmp_path, "fig3", ["fig2/enas-original-s0", "fig2/enas-original-s1",
                                      "fig3/nasib-narrow-s0", "fig3/nasib-narrow-s1"])
    groups = dict(curves.figure_groups(select_experiment(load_trials(tmp_path), None, "fig3"), "fig3"))
    assert sorted(groups) == ["ENAS", "NASIB-1 (narrow)"]
    assert [t.key for t in groups["ENAS"]] == ["fig2/enas-original-s0", "fig2/enas-original-s1"]


def test_default_experiment_is_the_figures_own(tmp_path: Path) -> None:
    shared_records(tmp_path)
    fig2 = [f"fig2/enas-{space}-s{seed}" for space in ("original", "extended") for seed in (0, 1)]
    write_manifest(tmp_path, "fig2", fig2)
    write_manifest(tmp_path, "fig3", ["fig3/nasib-narrow-s0"])
    runner_ok(["curves", str(tmp_path), "--figure", "fig3"])
    labels = pd.read_csv(tmp_path / "figures" / "fig3_curves.csv").groupby("label")["n"].max().to_dict()
    assert labels == {"NASIB-1 (narrow)": 1}  # fig3's manifest only: no fig2 ENAS, no fig5 superkernel
    runner_ok(["curves", str(tmp_path), "--figure", "fig3", "--experiment", "fig2"])
    labels = pd.read_csv(tmp_path / "figures" / "fig3_curves.csv").groupby("label")["n"].max().to_dict()
    assert labels == {"ENAS": 2, "ENAS (extended)": 2}
    runner_ok(["curves", str(tmp_path), "--figure", "fig3", "--experiment", "all"])
    labels = pd.read_csv(tmp_path / "figures" / "fig3_curves.csv").groupby("label")["n"].max().to_dict()
    assert labels == {"ENAS": 2, "ENAS (extended)": 2, "NASIB-1 (narrow)": 2, "NASIB-2 (superkernel)": 1}
    result = runner_ok(["all", str(tmp_path)])
    assert "fig5: skipped" not in result.output and "fig4: skipped" not in result.output
    help_text = CliRunner().invoke(cli, ["curves", "--help"]).output
    assert "trials.json" in help_text and "'all'" in help_text


def test_without_manifest_config_experiment_decides(tmp_path: Path) -> None:
    shared_records(tmp_path)
    chosen = select_experiment(load_trials(tmp_path), "fig3")
    assert sorted(t.key for t in chosen.ok) == ["fig3/nasib-narrow-s0", "fig3/nasib-narrow-s1"]
    assert "config experiment 'fig3', no trials.json" in chosen.summary()
    with pytest.raises(NoTrialsError, match="fig4"):  # asked for by name: nothing names it
        kernel_freq.run_kernel_freq(tmp_path, "fig4", tmp_path / "out")
    result = runner_ok(["kernel-freq", str(tmp_path)])  # default fig4, absent: every trial
    assert "every trial: no fig4 manifest or trials" in result.output
    table = pd.read_csv(tmp_path / "figures" / "fig4_kernel_freq.csv", index_col="op")
    assert [c for c in table.columns if "/" in c] == ["fig2/enas-extended-s0", "fig2/enas-extended-s1"]


def test_table1_reads_shared_searches_through_manifest(tmp_path: Path) -> None:
    shared_records(tmp_path)
    for seed in (0, 1):
        extra = {"source_trial": f"fig3/nasib-narrow-s{seed}", "source_strategy": "nasib",
                 "source_space": "narrow", "test_error": 5.0, "params": 1_000_000}
        write_trial(tmp_path, "table1" if seed == 0 else "other", f"retrain-nasib-narrow-s{seed}", "retrain",
                    "narrow", seed, [0.9], extra=extra)
    write_manifest(tmp_path, "table1", ["fig3/nasib-narrow-s0", "table1/retrain-nasib-narrow-s0"])
    runner_ok(["table1", str(tmp_path)])
    row = pd.read_csv(tmp_path / "tables" / "table1.csv", dtype=str).set_index("network").loc["NASIB-1"]
    assert (row["n_search"], row["n_retrain"]) == ("1", "1")
    runner_ok(["table1", str(tmp_path), "--experiment", "all"])
    row = pd.read_csv(tmp_path / "tables" / "table1.csv", dtype=str).set_index("network").loc["NASIB-1"]
    assert (row["n_search"], row["n_retrain"]) == ("2", "2")


@pytest.mark.parametrize("fmt,trials_ok", [(3, True), (1, False)])
def test_bad_manifest_names_the_file(tmp_path: Path, fmt: int, trials_ok: bool) -> None:
    shared_records(tmp_path)
    path = write_manifest(tmp_path, "fig2", ["fig2/enas-original-s0"], fmt=fmt)
    if not trials_ok:
        path.write_text(json.dumps({"format": 1, "experiment": "fig2", "trials": ["fig2/enas-original-s0"]}))
    result = CliRunner().invoke(cli, ["curves", str(tmp_path), "--figure", "fig2"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {path}")


def test_inventory_lists_every_finished_trial(tmp_path: Path) -> None:
    from analysis.inventory import main as inventory_main

    fig2_records(tmp_path, [0.5, 0.6], [0.7])
    write_trial(tmp_path, "fig5", "nasib-b1m-s0", "nasib", "superkernel", 0, [0.3], budget_label="1m",
                budget_s=60.0)
    write_trial(tmp_path, "fig5", "nasib-b2m-s0", "nasib", "superkernel", 0, [0.3], finished=False)
    res = CliRunner().invoke(inventory_main, [str(tmp_path)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "inventory.csv")
    assert table["trial"].tolist() == ["fig2/enas-extended-s0", "fig2/enas-original-s0", "fig2/enas-original-s1",
                                       "fig5/nasib-b1m-s0"]  # the unfinished one is not listed
    assert table.loc[3, "budget"] == "1m" and (table["device"] == "test-cpu").all()
    assert "| fig5/nasib-b1m-s0 | nasib | nasib | superkernel |" in (tmp_path / "inventory.md").read_text()


def test_captions_name_the_scale_the_manifest_ran(tmp_path: Path) -> None:
    """A `medium` trial records the smoke scale it overrides; its caption must not call it smoke."""
    fig2_records(tmp_path, [0.5, 0.52, 0.51], [0.6, 0.61, 0.62])
    manifest = write_manifest(tmp_path, "fig2", [f"fig2/enas-{sp}-s{s}" for sp in ("original", "extended")
                                                 for s in range(3)])
    manifest.write_text(manifest.read_text().replace('"scale": "smoke"', '"scale": "medium"'))
    runner_ok(["curves", str(tmp_path), "--figure", "fig2"])
    text = (tmp_path / "figures" / "fig2_test.json").read_text()
    assert "scale medium (smoke's settings" in text and "scale smoke;" not in text
