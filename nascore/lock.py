"""The trial lock: one process at a time writes a trial folder, whatever the race.

The lock is `fcntl.flock` on an open descriptor of `<trial>/.lock`; the owner (host, pid,
start time, heartbeat time and lease) is written inside only once the flock is held. On
one host the kernel is the judge: a dead owner's flock is gone with it, so its record is
simply overwritten (no delete-then-create window), and release unlinks the file before it
drops the flock, so a process that opened the old file checks the inode after locking and
starts again. A lock written on another host is honoured while its heartbeat is younger
than its lease (the holder refreshes it every HEARTBEAT_S from a timer thread), then taken
over; a holder that finds its record overwritten stops its run. Torch-free on purpose.
"""
from __future__ import annotations

import _thread
import datetime as dt
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from contract.errors import RecordError
from contract.names import LOCK

# Another host's lock is honoured this long after its last heartbeat (clocks of the hosts are
# assumed within a minute of each other; ten missed heartbeats mean its process or host is gone).
LEASE_S = 300.0
HEARTBEAT_S = 30.0  # how often the holder rewrites its heartbeat time
RECORD_BYTES = 512  # the record is padded to this size, so an update never shows a shorter file


class TrialLocked(RecordError):
    """Another live process holds this trial folder."""


def _now_iso(t: float) -> str:
    """UTC time stamp of epoch seconds `t`, for people reading the lock."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


def read_owner(text: str) -> dict | None:
    """The owner written in a lock file: a JSON record, or the older "host pid" line; None if neither."""
    try:
        rec = json.loads(text)
        if isinstance(rec, dict) and isinstance(rec.get("host"), str) and isinstance(rec.get("pid"), int):
            return rec
    except ValueError:
        pass
    parts = text.split()
    if len(parts) == 2 and parts[1].isdigit():
        return {"host": parts[0], "pid": int(parts[1])}  # no heartbeat: its lease is over
    return None


def honoured(owner: dict | None, now: float) -> bool:
    """Whether a record found under a free flock still holds: only another host's, within its lease."""
    if owner is None or owner["host"] == socket.gethostname():
        return False  # this host's owner would still hold the flock if it were alive
    beat = owner.get("heartbeat")
    lease = owner.get("lease_s", LEASE_S)
    return isinstance(beat, (int, float)) and isinstance(lease, (int, float)) and now - beat < lease


class TrialLock:
    """An exclusive lock on a trial folder (see the module docstring for the rule)."""

    def __init__(self, trial):
        self.path = Path(getattr(trial, "path", trial)) / LOCK
        self._fd: int | None = None
        self._record: dict = {}
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def _refuse(self, owner: dict | None) -> TrialLocked:
        """The one-line refusal naming the holder."""
        folder = self.path.parent
        if owner is None:
            return TrialLocked(f"{folder} is being run by another process (its lock {self.path} is held); "
                               f"wait for it to finish")
        where, beat = "", owner.get("heartbeat")
        if owner["host"] != socket.gethostname() and isinstance(beat, (int, float)):
            where = f" (another host: its lock holds until {_now_iso(beat + owner.get('lease_s', LEASE_S))})"
        return TrialLocked(f"{folder} is being run by {owner['host']} pid {owner['pid']}{where}; "
                           f"wait for it to finish")

    def _open(self) -> int:
        """A descriptor of the lock file whose flock we hold and which is still the file at `path`."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise RecordError(f"cannot write to {self.path.parent}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = read_owner(_read_fd(fd))
                os.close(fd)
                raise self._refuse(owner) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # the holder released (unlinked) it between our open and our flock: again

    def acquire(self) -> None:
        """Take the lock, or raise TrialLocked naming the live holder."""
        fd = self._open()
        owner = read_owner(_read_fd(fd))
        if honoured(owner, time.time()):
            os.close(fd)
            raise self._refuse(owner)
        if owner is not None and owner["host"] != socket.gethostname():
            print(f"{self.path.parent}: taking over the lock of {owner['host']} pid {owner['pid']}, "
                  f"whose lease ran out", file=sys.stderr)
        now = time.time()
        self._record = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now_iso(now),
                        "heartbeat": now, "lease_s": LEASE_S}
        self._fd = fd
        self._write()
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="trial-lock", daemon=True)
        self._beat.start()

    def _write(self) -> None:
        """Write our record in place (padded: never empty, never a shorter torn read)."""
        data = json.dumps(self._record).encode().ljust(RECORD_BYTES)
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))
        os.fsync(self._fd)

    def _heartbeat(self) -> None:
        """Refresh the heartbeat until released; stop the run if another host took the lock over."""
        while not self._stop.wait(HEARTBEAT_S):
            try:
                owner = read_owner(_read_fd(self._fd))
                if owner is not None and (owner["host"], owner["pid"]) != (self._record["host"], os.getpid()):
                    print(f"{self.path.parent}: the lock was taken over by {owner['host']} pid {owner['pid']} "
                          f"(this process missed its lease); stopping", file=sys.stderr)
                    _thread.interrupt_main()
                    return
                self._record["heartbeat"] = time.time()
                self._write()
            except (OSError, TypeError):
                return  # released under us, or the disk went away: the run reports its own errors

    def release(self) -> None:
        """Drop the lock if held: unlink the file while the flock is still ours, then close."""
        if self._fd is None:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        fd, self._fd = self._fd, None
        try:
            if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        except OSError:
            pass  # already gone (the folder was moved aside with us in it) or read-only: the flock still ends
        os.close(fd)

    def moved_to(self, folder: Path) -> None:
        """Follow the lock file after its folder was renamed (the descriptor stays valid)."""
        self.path = Path(folder) / LOCK

    def __enter__(self) -> TrialLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_fd(fd: int) -> str:
    """The lock file's text through our descriptor (undecodable bytes read as no owner)."""
    try:
        return os.pread(fd, 4 * RECORD_BYTES, 0).decode(errors="replace")
    except OSError:
        return ""
