"""Record format 2 (one name per axis) and format-1 trials: still read, skipped, resumed and adopted."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.inventory import _row
from analysis.records import load_trials
from contract.errors import RecordError
from contract.format import FORMAT, upgrade
from nascore.data import DataConfig
from nascore.loop import RunSpec
from nasib.search import search_trial

REPO = Path(__file__).resolve().parents[1]
MEDIUM = REPO / "results" / "reference" / "medium"
SMALL = {"valid_size": 100, "train_size": 160}


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _format1(record: dict) -> dict:
    """What the format-1 writer put on disk for a format-2 record (the kit before one name per axis)."""
    out = {k: v for k, v in record.items() if k not in ("family", "strategy", "scale", "source_strategy")}
    if "family" in record:
        out["method"] = record["strategy"] or record["family"]
    if "scale" in record:
        out["preset"] = record["scale"]
    if "source_strategy" in record:
        out["source_method"] = record["source_strategy"]
    if isinstance(record.get("plan"), dict):
        plan = {k: v for k, v in record["plan"].items() if k not in ("family", "scale")}
        out["plan"] = {**plan, "method": record["plan"]["family"], "preset": record["plan"]["scale"]}
    return {**out, "format": 1} if "format" in record else out


def _downgrade(folder: Path) -> None:
    """Rewrite a trial's config.json, result.json and arch.json as the format-1 writer wrote them."""
    for name in ("config.json", "result.json", "arch.json"):
        if (folder / name).exists():
            (folder / name).write_text(json.dumps(_format1(_read(folder / name))))


@pytest.mark.parametrize("record, family, strategy", [
    ({"format": 1, "method": "darts", "preset": "smoke"}, "nasib", "darts"),
    ({"format": 1, "method": "enas", "preset": "paper"}, "enas", "enas"),
    ({"format": 1, "method": "retrain", "preset": "quick", "source_method": "snas"}, "retrain", None),
])
def test_upgrade_names_each_axis_once(record, family, strategy):
    new = upgrade(record)
    assert (new["family"], new["strategy"], new["format"]) == (family, strategy, FORMAT)
    assert new["scale"] == record["preset"] and not {"method", "preset", "source_method"} & set(new)
    assert upgrade(new) == new  # format 2 comes back equal
    if "source_method" in record:
        assert new["source_strategy"] == "snas"


def test_committed_format1_records_upgrade_to_what_format2_writes():
    folder = MEDIUM / "fig5" / "nasib-superkernel-b10ep-s0"
    config = _read(folder / "config.json")
    assert config["format"] == 1  # a record written before format 2: this test reads the old writer's output
    new = upgrade(config)
    assert (new["family"], new["strategy"], new["scale"]) == ("nasib", "nasib", "smoke")
    assert (new["plan"]["family"], new["plan"]["scale"], new["plan"]["strategy"]) == ("nasib", "smoke", "nasib")
    arch = upgrade(_read(folder / "arch.json"))
    assert (arch["family"], arch["strategy"]) == ("nasib", "nasib") and "method" not in arch


def test_analysis_reads_format1_and_format2_the_same(tmp_path):
    for name in ("fig2", "fig2_release"):
        shutil.copytree(MEDIUM / name / "enas-original-s0" if name == "fig2" else
                        MEDIUM / name / "enas-original-release-s0", tmp_path / "v2" / name / "t")
    shutil.copytree(tmp_path / "v2", tmp_path / "v1")
    for folder in (tmp_path / "v2").glob("*/t"):  # turn the committed format-1 copies into format 2
        for rec in ("config.json", "result.json", "arch.json"):
            (folder / rec).write_text(json.dumps(upgrade(_read(folder / rec))))
    old, new = load_trials(tmp_path / "v1"), load_trials(tmp_path / "v2")
    assert len(old.ok) == len(new.ok) == 2
    rows = [sorted((_row(t) | {"trial": t.key.split("/")[0]} for t in ts.ok), key=str) for ts in (old, new)]
    assert rows[0] == rows[1] and {r["family"] for r in rows[0]} == {"enas"} and rows[0][0]["scale"] == "smoke"


def _search(tmp_path, data, **over):
    spec = RunSpec(out=tmp_path / "trial", seed=0, device="cpu", data=DataConfig(data_dir=str(data)))
    return search_trial(spec, "narrow", "smoke", {"epochs": 2, "data": SMALL, **over})


def test_format1_trial_is_skipped_refused_and_resumed(tmp_path, tiny_data):
    first = _search(tmp_path, tiny_data)
    out = tmp_path / "trial"
    _downgrade(out)
    assert _read(out / "config.json")["format"] == 1 and "method" in _read(out / "config.json")
    assert _search(tmp_path, tiny_data) is None  # finished with the same settings: skipped
    with pytest.raises(RecordError, match="strategy"):
        _search(tmp_path, tiny_data, strategy="random")  # another strategy: refused, not skipped
    (out / "result.json").unlink()  # a format-1 trial stopped after its last checkpoint
    again = _search(tmp_path, tiny_data)
    assert (again["epochs"], again["best_valid_acc"]) == (first["epochs"], first["best_valid_acc"])
    result = _read(out / "result.json")
    assert result["format"] == FORMAT and (result["family"], result["strategy"]) == ("nasib", "nasib")
