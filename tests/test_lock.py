"""The trial lock under real races: eight processes, one holder per round, stale and foreign locks."""
from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nascore import lock as lockmod
from nascore.lock import LEASE_S, TrialLock, TrialLocked, read_owner

WORKERS, ROUNDS = 8, 40
CTX = multiprocessing.get_context("fork")  # the workers need only this module, already imported
ROOT = Path(__file__).resolve().parents[1]


def _log(path: Path, line: str) -> None:
    """Append one line to the shared log (O_APPEND: whole short lines never interleave)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (line + "\n").encode())
    os.close(fd)


def _racer(folders: list[Path], start, tried, log: Path) -> None:
    """Each round: start with the others, try once, log the outcome, and hold until all have tried."""
    for folder in folders:
        start.wait()
        lock = TrialLock(folder)
        try:
            lock.acquire()
            mine = read_owner((folder / ".lock").read_text())["pid"] == os.getpid()
            _log(log, f"{folder.name} held {int(mine)}")
        except TrialLocked:
            _log(log, f"{folder.name} refused 1")
        except Exception as e:  # noqa: BLE001 - any other failure is a finding, logged for the parent
            _log(log, f"{folder.name} error {type(e).__name__}")
        tried.wait()
        lock.release()


def _race(folders: list[Path], log: Path) -> dict[str, list[str]]:
    """Run WORKERS racers over `folders`; the outcomes per folder."""
    start, tried = CTX.Barrier(WORKERS, timeout=120), CTX.Barrier(WORKERS, timeout=120)
    procs = [CTX.Process(target=_racer, args=(folders, start, tried, log)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    rounds: dict[str, list[str]] = {f.name: [] for f in folders}
    for line in log.read_text().splitlines():
        name, what, ok = line.split()
        rounds[name].append(what if ok == "1" else f"{what} (not its own record)")
    return rounds


def _one_holder_each(rounds: dict[str, list[str]]) -> None:
    """Every round: exactly one holder, every other racer refused, nothing else."""
    bad = {name: got for name, got in rounds.items()
           if sorted(got) != ["held"] + ["refused"] * (WORKERS - 1)}
    assert not bad, f"{len(bad)} of {len(rounds)} rounds without exactly one holder: {bad}"


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)


def test_eight_processes_on_an_empty_folder_one_holder_per_round(tmp_path):
    folders = [tmp_path / f"r{i}" for i in range(ROUNDS)]
    for f in folders:
        f.mkdir()
    _one_holder_each(_race(folders, tmp_path / "log"))
    assert not any((f / ".lock").exists() for f in folders)  # every holder released its lock


def test_eight_processes_on_a_stale_lock_one_holder_per_round(tmp_path):
    host, dead = socket.gethostname(), _dead_pid()
    stale = [json.dumps({"host": host, "pid": dead, "heartbeat": time.time()}),  # dead owner, this host
             f"{host} {dead}",  # the older one-line record
             "",  # an owner killed before it wrote its record
             json.dumps({"host": "gone-host", "pid": 7, "heartbeat": time.time() - LEASE_S - 5})]  # lease over
    folders = [tmp_path / f"r{i}" for i in range(ROUNDS)]
    for i, f in enumerate(folders):
        f.mkdir()
        (f / ".lock").write_text(stale[i % len(stale)])
    _one_holder_each(_race(folders, tmp_path / "log"))


def _churner(folder: Path, holds: int, log: Path) -> None:
    """Take and drop the lock `holds` times; inside, create a marker no one else may see."""
    real = lockmod.fcntl.flock

    def late_flock(fd: int, op: int) -> None:  # a racer preempted between open() and flock()
        time.sleep(0.002)
        real(fd, op)

    lockmod.fcntl.flock = late_flock  # this worker process only (forked)
    done = 0
    while done < holds:
        lock = TrialLock(folder)
        try:
            lock.acquire()
        except TrialLocked:
            time.sleep(0.001)
            continue
        try:
            os.close(os.open(folder / "inside", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            _log(log, "overlap")
        time.sleep(0.001)
        (folder / "inside").unlink(missing_ok=True)
        lock.release()
        done += 1
    _log(log, "done")


def test_take_and_release_in_a_loop_never_overlaps(tmp_path):
    # Releasing unlinks the file, so a racer may lock a file already gone: it must notice and retry.
    folder, log = tmp_path / "t", tmp_path / "log"
    folder.mkdir()
    procs = [CTX.Process(target=_churner, args=(folder, 10, log)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    lines = log.read_text().splitlines()
    assert lines.count("done") == WORKERS and "overlap" not in lines


def test_live_holder_in_another_process_is_named(tmp_path):
    code = ("import sys, time; from nascore.lock import TrialLock; l = TrialLock(sys.argv[1]); l.acquire(); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TrialLocked, match=f"being run by {socket.gethostname()} pid {holder.pid};"):
            TrialLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with TrialLock(tmp_path):  # killed: its flock went with it
        assert read_owner((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_another_hosts_lock_is_honoured_within_its_lease_then_taken_over(tmp_path):
    record = json.dumps({"host": "node-b", "pid": 7, "heartbeat": time.time() - LEASE_S + 60})
    (tmp_path / ".lock").write_text(record)
    with pytest.raises(TrialLocked, match="being run by node-b pid 7 .another host"):
        TrialLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_text() == record  # refused without touching it
    (tmp_path / ".lock").write_text(json.dumps({"host": "node-b", "pid": 7, "heartbeat": time.time() - LEASE_S - 1}))
    with TrialLock(tmp_path):
        assert read_owner((tmp_path / ".lock").read_text())["host"] == socket.gethostname()


def test_heartbeat_is_refreshed_while_held(tmp_path, monkeypatch):
    monkeypatch.setattr(lockmod, "HEARTBEAT_S", 0.02)
    with TrialLock(tmp_path):
        first = read_owner((tmp_path / ".lock").read_text())["heartbeat"]
        for _ in range(500):
            if read_owner((tmp_path / ".lock").read_text())["heartbeat"] > first:
                break
            time.sleep(0.01)
        assert read_owner((tmp_path / ".lock").read_text())["heartbeat"] > first


def test_a_holder_whose_lock_was_taken_over_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(lockmod, "HEARTBEAT_S", 0.02)
    lock = TrialLock(tmp_path)
    lock.acquire()
    try:
        # What another host writes once our lease ran out (it holds no flock here).
        fd = os.open(tmp_path / ".lock", os.O_WRONLY)
        os.pwrite(fd, json.dumps({"host": "node-b", "pid": 9, "heartbeat": time.time()}).encode().ljust(512), 0)
        os.close(fd)
        with pytest.raises(KeyboardInterrupt):
            for _ in range(500):
                time.sleep(0.01)
    finally:
        lock.release()


def test_unwritable_folder_is_one_line(tmp_path):
    with pytest.raises(lockmod.RecordError, match="cannot write to"):
        TrialLock(tmp_path / "missing" / "t").acquire()
