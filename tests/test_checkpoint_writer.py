"""Background checkpoints: the file holds the state as it was at save time, errors surface, order is kept."""
from __future__ import annotations

import pytest
import torch

from nascore.records import CheckpointWriter, RecordError, Trial, snapshot


def test_the_saved_state_is_the_one_at_save_time(tmp_path):
    trial = Trial(tmp_path / "t")
    trial.prepare()
    weights, momentum = torch.arange(1000.0), [torch.ones(3)]
    writer = CheckpointWriter(trial)
    writer.save({"epoch": 0, "searcher": {"w": weights, "opt": momentum}, "note": ["a"]})
    weights.add_(1000)  # the next epoch trains on while the write is in flight
    momentum[0].zero_()
    writer.wait()
    state = trial.load_checkpoint()
    assert torch.equal(state["searcher"]["w"], torch.arange(1000.0))
    assert torch.equal(state["searcher"]["opt"][0], torch.ones(3)) and state["note"] == ["a"]


def test_writes_land_in_order_and_the_last_one_wins(tmp_path):
    trial = Trial(tmp_path / "t")
    trial.prepare()
    writer = CheckpointWriter(trial)
    for epoch in range(3):
        writer.save({"epoch": epoch, "x": torch.full((10_000,), float(epoch))})
    writer.wait()
    state = trial.load_checkpoint()
    assert state["epoch"] == 2 and float(state["x"][0]) == 2.0
    assert [p.name for p in trial.path.iterdir()] == ["checkpoint.pt"]  # no temp file left behind


def test_a_failed_background_write_is_raised_in_the_caller(tmp_path):
    trial = Trial(tmp_path / "gone")  # never prepared: the folder does not exist
    writer = CheckpointWriter(trial)
    writer.save({"epoch": 0})
    with pytest.raises(RecordError, match="cannot write"):
        writer.wait()
    writer.wait()  # reported once


def test_snapshot_copies_tensors_and_containers():
    t = torch.zeros(2)
    snap = snapshot({"a": (t, 1), "b": [t]})
    t.add_(1)
    assert torch.equal(snap["a"][0], torch.zeros(2)) and torch.equal(snap["b"][0], torch.zeros(2))
