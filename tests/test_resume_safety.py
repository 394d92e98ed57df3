"""Resume never loses or invents records: torn lines, lost checkpoints, damaged finished trials, other data,
temp files, full disks, exit codes, and which finished folders the experiment runner adopts (issue 20)."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments.launchers import RunContext, plan_record, run_one
from experiments.runner import expand, load_config
from nascore.cli import reports_errors
from nascore.intact import data_digest
from nascore.lock import TrialLock
from nascore.loop import Interrupted, run_trial
from nascore.records import RecordError, Trial, atomic_save, atomic_write_bytes, read_json
from nascore.trial import move_aside, trial_meta
from tests.faults.toy import ToySearcher, run
from tests.test_faults import numbers

META = {"trial_id": "toy", "family": "toy", "strategy": None, "space": None, "seed": 0, "config": {"epochs": 3}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted 6-epoch toy run."""
    out = tmp_path_factory.mktemp("ref") / "toy"
    run(out, 6)
    return out


def stopped_after(out: Path, epochs: int) -> Path:
    """A toy trial as a kill after its last checkpoint leaves it: `epochs` epochs, no result.json."""
    run(out, epochs)
    (out / "result.json").unlink()
    return out


def dead_pid() -> int:
    """The pid of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


# --- item 3: every intact epoch line is kept ---------------------------------------------------

def test_a_torn_line_in_the_middle_is_dropped_alone(tmp_path, reference):
    out = stopped_after(tmp_path / "toy", 3)
    lines = (out / "epochs.jsonl").read_text().splitlines(keepends=True)
    (out / "epochs.jsonl").write_text(lines[0] + '{"epoch": 7, "tra\n' + "".join(lines[1:]))
    run(out, 6)  # the old reader stopped at the torn line and lost epochs 2 and 3
    assert numbers(out) == numbers(reference)


def test_a_damaged_line_the_checkpoint_covers_stops_the_run_naming_it(tmp_path):
    out = stopped_after(tmp_path / "toy", 3)
    lines = (out / "epochs.jsonl").read_text().splitlines(keepends=True)
    damaged = lines[0] + '{"epoch": 1, "tr\n' + lines[2]
    (out / "epochs.jsonl").write_text(damaged)
    with pytest.raises(RecordError, match=r"lacks epoch\(s\) 2 that .*checkpoint.pt covers.*--force"):
        run(out, 6)
    assert (out / "epochs.jsonl").read_text() == damaged  # nothing rewritten
    assert not (out / "result.json").exists()


@pytest.mark.parametrize("line", ["[1, 2]", "7", '{"loss": 1.0}'])
def test_a_json_line_that_is_no_epoch_record_is_one_line(tmp_path, line):
    out = stopped_after(tmp_path / "toy", 2)
    with open(out / "epochs.jsonl", "a") as f:
        f.write(line + "\n")
    with pytest.raises(RecordError, match=r"epochs.jsonl line 3: not an epoch record"):
        run(out, 4)


# --- item 4: a lost checkpoint is no silent start-over -------------------------------------------

def test_a_lost_checkpoint_goes_through_the_settings_check(tmp_path):
    out = tmp_path / "toy"
    run_trial(Trial(out), ToySearcher(2), META)
    (out / "result.json").unlink()
    (out / "checkpoint.pt").unlink()
    before = (out / "config.json").read_text()
    with pytest.raises(RecordError, match=r"config.epochs=3.*--force"):
        run_trial(Trial(out), ToySearcher(2), {**META, "config": {"epochs": 30}})
    assert (out / "config.json").read_text() == before and len(numbers(out)) == 2


@pytest.mark.parametrize("config", ["{not json", '{"format": 1, "method": "other"}'])
def test_a_lost_checkpoint_with_a_broken_or_other_config_is_refused(tmp_path, config):
    out = tmp_path / "toy"
    run_trial(Trial(out), ToySearcher(2), META)
    for name in ("result.json", "checkpoint.pt"):
        (out / name).unlink()
    (out / "config.json").write_text(config)
    with pytest.raises(RecordError, match=r"(config.json|was started with).*--force") as e:
        run_trial(Trial(out), ToySearcher(2), META)
    assert len(str(e.value).splitlines()) == 1
    assert (out / "config.json").read_text() == config  # kept for the user to look at


def test_a_lost_checkpoint_with_the_same_settings_starts_over_and_says_so(tmp_path, capsys, reference):
    out = stopped_after(tmp_path / "toy", 3)
    (out / "checkpoint.pt").unlink()
    run(out, 6)
    assert "no checkpoint.pt to resume from" in capsys.readouterr().err
    assert numbers(out) == numbers(reference)


def test_a_damaged_checkpoint_points_to_force_not_to_deleting_it(tmp_path):
    out = stopped_after(tmp_path / "toy", 2)
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RecordError, match="unreadable checkpoint") as e:
        run(out, 4)
    assert "--force" in str(e.value) and "delete" not in str(e.value)


def test_a_checkpoint_of_another_run_is_one_line(tmp_path):
    out = stopped_after(tmp_path / "toy", 2)
    torch.save({"format": 1, "epoch": 1, "wall_s": 0.0, "rng": {}, "searcher": {"w": torch.zeros(9)}},
               out / "checkpoint.pt")
    with pytest.raises(RecordError, match="does not fit this trial.*--force"):
        run(out, 4)


def test_an_invalid_config_json_on_resume_names_the_next_step(tmp_path):
    out = stopped_after(tmp_path / "toy", 2)
    (out / "config.json").write_text("{torn")
    with pytest.raises(RecordError, match=r"restore config.json, or pass --force"):
        run(out, 4)


def test_a_config_json_of_another_format_says_its_next_step_once(tmp_path):
    """Its own message already names --force; wrapping it again would say the next step twice."""
    out = stopped_after(tmp_path / "toy", 2)
    (out / "config.json").write_text('{"format": 99, "family": "toy", "strategy": null}')
    with pytest.raises(RecordError, match=r"record format 99") as e:
        run(out, 4)
    assert str(e.value).count("--force") == 1 and "cannot be checked" not in str(e.value)


# --- item 5: a trial that claims to be finished but is not -----------------------------------------

@pytest.mark.parametrize("damage", ["no log", "short log", "broken result", "result of another kind"])
def test_a_damaged_finished_trial_is_reported_and_rerun_only_with_force(tmp_path, damage):
    out = tmp_path / "toy"
    run(out, 3)
    result = out / "result.json"
    if damage == "no log":
        (out / "epochs.jsonl").unlink()
    elif damage == "short log":
        (out / "epochs.jsonl").write_text((out / "epochs.jsonl").read_text().splitlines(keepends=True)[0])
    else:
        result.write_text('{"status": "ok", "epo' if damage == "broken result" else "[1]")
    before = result.read_text()
    assert not Trial(out).finished  # so no command skips it as done
    with pytest.raises(RecordError, match="--force") as e:
        run(out, 3)
    assert len(str(e.value).splitlines()) == 1 and result.read_text() == before  # never "ok" with fewer epochs
    trial, lock = Trial(out), TrialLock(Trial(out))  # on request (--force): moved aside, the trial re-run
    lock.acquire()
    move_aside(trial, lock)[0].release()
    res = run_trial(trial, ToySearcher(3), {**META, "config": {}})
    assert res["status"] == "ok" and res["epochs"] == 3 and len(numbers(out)) == 3


def test_an_epoch_log_deleted_while_the_trial_runs_gives_no_result(tmp_path):
    class Deleting(ToySearcher):
        def run_epoch(self, epoch: int) -> dict:
            if epoch == 2:
                (tmp_path / "toy" / "epochs.jsonl").unlink()
            return super().run_epoch(epoch)

    with pytest.raises(RecordError, match=r"holds 2 epoch line\(s\) but this trial ran 4"):
        run_trial(Trial(tmp_path / "toy"), Deleting(4), META)
    assert not (tmp_path / "toy" / "result.json").exists()


def test_an_epoch_log_deleted_before_a_resume_is_refused(tmp_path):
    out = stopped_after(tmp_path / "toy", 3)
    (out / "epochs.jsonl").unlink()
    with pytest.raises(RecordError, match=r"lacks epoch\(s\) 1-3"):
        run(out, 6)
    assert not (out / "result.json").exists()


# --- item 5: another data source --------------------------------------------------------------

def _with_data(source: str, digest: str | None) -> dict:
    return {**META, "provenance": {"data_source": source, "data_digest": digest}}


def test_resuming_on_other_data_is_refused_naming_both(tmp_path):
    out = tmp_path / "toy"
    run_trial(Trial(out), ToySearcher(2), _with_data("/data/a", "d1"))
    (out / "result.json").unlink()
    for meta in (_with_data("/data/b", "d2"), _with_data("/data/a", "d2")):
        with pytest.raises(RecordError, match=r"started on the data in /data/a \(digest d1\).* reads /data/b|d2"):
            run_trial(Trial(out), ToySearcher(3), meta)
    (out / "checkpoint.pt").unlink()  # a lost checkpoint passes the same check
    with pytest.raises(RecordError, match="digest d2"):
        run_trial(Trial(out), ToySearcher(3), _with_data("/data/b", "d2"))


def test_the_same_files_moved_are_accepted_and_recorded(tmp_path):
    out = tmp_path / "toy"
    run_trial(Trial(out), ToySearcher(2), _with_data("/data/a", "d1"))
    (out / "result.json").unlink()
    assert run_trial(Trial(out), ToySearcher(3), _with_data("/mnt/a", "d1"))["status"] == "ok"
    prov = read_json(out / "config.json")["provenance"]
    assert prov["data_source"] == "/data/a"
    assert prov["data_moved"] == [{"from_epoch": 2, "data_source": "/mnt/a"}]


def test_the_data_digest_follows_the_files(tiny_data, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_data / "cifar-10-batches-py", copy)
    digest = data_digest(str(copy))
    assert digest and digest == data_digest(str(tiny_data / "cifar-10-batches-py"))
    with open(copy / "test_batch", "ab") as f:
        f.write(b"x")
    assert data_digest(str(copy)) not in (None, digest)


# --- item 6: temp files and disk errors ---------------------------------------------------------

def test_stale_temp_files_of_dead_processes_are_removed_on_start(tmp_path):
    out = stopped_after(tmp_path / "toy", 2)
    pid = dead_pid()
    stale = [out / f".checkpoint.pt.tmp{pid}", out / f".alphas.json.tmp{pid}", out / f".probe{pid}"]
    live = out / f".samples.json.tmp{os.getppid()}"  # a live process's write in flight is left alone
    for path in [*stale, live]:
        path.write_bytes(b"x" * 1000)
    run(out, 3)
    assert not any(p.exists() for p in stale) and live.exists()


def _failing_write(exc: BaseException):
    def write(obj, f):
        f.write(b"partial")
        raise exc
    return write


@pytest.mark.parametrize("exc, needle", [
    (RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0: "
                  "file write failed"), r"file write failed \(disk full\? .* free there, it needs about"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device .*free some space"),
    (OSError(errno.EROFS, "Read-only file system"), "Read-only file system; .*writable folder"),
])
def test_a_failed_checkpoint_write_is_one_line_and_leaves_no_temp(tmp_path, monkeypatch, exc, needle):
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 0}, path)
    monkeypatch.setattr(torch, "save", _failing_write(exc))
    with pytest.raises(RecordError, match=needle) as e:
        atomic_save(path, {"epoch": 1})
    assert str(path) in str(e.value) and len(str(e.value).splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp; the old checkpoint intact
    monkeypatch.undo()
    assert torch.load(path)["epoch"] == 0


def test_a_bug_in_a_writer_still_removes_its_temp(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", _failing_write(TypeError("cannot pickle 'generator'")))
    with pytest.raises(TypeError):  # a bug keeps its traceback
        atomic_save(tmp_path / "checkpoint.pt", {})
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_on_a_small_record_names_the_bytes_it_needs(tmp_path, monkeypatch):
    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(RecordError, match=r"result.json: No space left on device .*needs about 2 bytes"):
        atomic_write_bytes(tmp_path / "result.json", b"{}")
    assert list(tmp_path.iterdir()) == []


def test_force_moves_aside_a_folder_named_near_the_limit_twice_in_a_second(tmp_path):
    out = tmp_path / ("t" * 250)  # + ".old-<stamp>" is over the 255-byte limit of a name
    moved = []
    for _ in range(2):
        run(out, 1)
        moved.append(Trial(out).archive())
    assert len(set(moved)) == 2 and all(p.is_dir() and len(p.name.encode()) <= 255 for p in moved)
    assert not out.exists()


def test_a_read_only_disk_when_moving_aside_is_one_line(tmp_path, monkeypatch):
    out = tmp_path / "toy"
    run(out, 1)

    def read_only(self, dest):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "rename", read_only)
    with pytest.raises(RecordError, match=r"cannot move .*toy aside to toy.old-.*: Read-only file system; "):
        Trial(out).archive()


# --- item 10: exit codes and true messages -------------------------------------------------------

def test_ctrl_c_while_the_final_records_are_written_exits_130_and_resumes(tmp_path, reference):
    class StoppedAtTheEnd(ToySearcher):
        def finish(self, trial, epochs):
            raise KeyboardInterrupt

    out = tmp_path / "toy"
    command = reports_errors(lambda: run_trial(Trial(out), StoppedAtTheEnd(6), META))
    code = None
    try:
        command()
    except KeyboardInterrupt:  # what click turns into "Aborted!" and exit 1
        pytest.fail("Ctrl-C while the final records were written escaped as KeyboardInterrupt")
    except SystemExit as e:
        code = e.code
    assert code == 130 and not (out / "result.json").exists() and not (out / ".lock").exists()
    with pytest.raises(Interrupted, match="keeps its last checkpoint"):
        run_trial(Trial(out), StoppedAtTheEnd(6), META)
    assert run_trial(Trial(out), ToySearcher(6), META)["epochs"] == 6


@pytest.mark.parametrize("nan_at, said", [(0, "no checkpoint was written"), (3, "checkpoint (epoch 3) is kept")])
def test_a_divergence_says_truly_what_was_kept(tmp_path, capsys, nan_at, said):
    run(tmp_path / "toy", 5, nan_at=nan_at)
    err = capsys.readouterr().err
    assert said in err
    assert (tmp_path / "toy" / "checkpoint.pt").exists() == (nan_at > 0)


# --- the runner: adopting finished folders --------------------------------------------------------

class Recording(dict):
    """A method registry that records which trials it was asked to run."""

    def __init__(self):
        super().__init__(enas=self._run, nasib=self._run, retrain=self._run)
        self.calls: list[str] = []

    def _run(self, plan, ctx):
        self.calls.append(plan.key)
        return {"status": "ok", "epochs": 1}


def _finished(plan, config: dict, epochs: int = 2) -> None:
    """Write a finished trial folder for `plan` with this config.json."""
    plan.folder.mkdir(parents=True)
    (plan.folder / "config.json").write_text(json.dumps({"format": 1, **config}))
    (plan.folder / "epochs.jsonl").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in range(epochs)))
    (plan.folder / "result.json").write_text(json.dumps({"format": 1, "status": "ok", "epochs": epochs}))


@pytest.fixture
def plan(tmp_path):
    return expand(load_config("fig2"), "smoke", tmp_path)[0]


def test_the_runner_adopts_a_folder_it_started_for_the_same_plan(plan):
    spec = RunContext(device="cpu").spec(plan)
    meta = trial_meta(spec, torch.device("cpu"), None, family="enas", strategy="enas", space=plan.space,
                      scale=plan.scale, config={"epochs": 4})
    _finished(plan, {k: v for k, v in meta.items() if k != "provenance"})
    outcome = run_one(plan, RunContext(), Recording())
    assert outcome.status == "skipped" and "status ok" in outcome.detail


def test_the_runner_does_not_adopt_a_hand_run_trial(plan):
    hand = {"experiment": None, "trial_id": plan.trial_id, "method": "enas", "space": plan.space, "seed": 0,
            "preset": plan.scale, "plan": None, "config": {"epochs": 1}}
    _finished(plan, hand, epochs=1)
    methods = Recording()
    outcome = run_one(plan, RunContext(), methods)
    assert outcome.failed and "experiment None, this plan wants 'fig2'" in outcome.detail and not methods.calls


def test_the_runner_does_not_adopt_a_trial_of_another_plan(plan):
    other = {**plan_record(plan), "overrides": {"epochs": 1}}
    _finished(plan, {"experiment": "fig2", "preset": plan.scale, "plan": other})
    outcome = run_one(plan, RunContext(), Recording())
    assert outcome.failed and "overrides.epochs 1, this plan wants None" in outcome.detail


def test_the_runner_adopts_a_format1_trial_it_started(plan):
    """A folder the format-1 runner started (plan and trial named `method` and `preset`) is still its own."""
    old = {**plan_record(plan), "method": plan.family, "preset": plan.scale}
    old = {k: v for k, v in old.items() if k not in ("family", "scale")}
    _finished(plan, {"experiment": "fig2", "method": "enas", "preset": plan.scale, "plan": old})
    outcome = run_one(plan, RunContext(), Recording())
    assert outcome.status == "skipped" and "status ok" in outcome.detail


def test_the_runner_checks_old_records_field_by_field(plan):
    _finished(plan, {"experiment": "fig2", "preset": plan.scale, "seed": 1, "config": {"epochs": 4}})
    assert "seed 1, this plan wants 0" in run_one(plan, RunContext(), Recording()).detail


@pytest.mark.parametrize("result, needle", [("{broken", "unreadable"), ('{"format": 1}', "status None")])
def test_the_runner_reports_a_broken_result_instead_of_skipping_it(plan, result, needle):
    _finished(plan, {"preset": plan.scale})
    (plan.folder / "result.json").write_text(result)
    methods = Recording()
    outcome = run_one(plan, RunContext(), methods)
    assert outcome.failed and needle in outcome.detail and "--force" in outcome.detail and not methods.calls
    assert "status ?" not in outcome.detail
    assert run_one(plan, RunContext(force=True), methods).status == "ok" and methods.calls == [plan.key]


def test_the_runner_stays_torch_free():
    code = ("import sys; from experiments import launchers, runner; from pathlib import Path; "
            "p = runner.plan_experiments(['fig2'], 'smoke', Path('results'))[0]; launchers._mismatch(p); "
            "launchers.trial_state(p.folder); sys.exit('torch' in sys.modules)")
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
                          ).returncode == 0
