"""The trial folder: config, per-epoch JSON lines, results, checkpoints, provenance (its lock: nascore.lock).

Every write that must survive a crash is atomic (temp file, fsync, rename) or an fsynced
append of one whole line; on resume, lines past the checkpoint are dropped, so
`epochs.jsonl` never holds a partial or duplicated epoch.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from nascore.names import (  # noqa: F401 (re-exported)
    CHECKPOINT,
    CONFIG,
    EPOCHS,
    FORMAT,
    LOCK,
    RESULT,
    RecordError,
    data_copy,
)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a crash leaves either the old file or the new one."""
    _atomic(path, lambda f: f.write(data))


def atomic_save(path: Path, obj: Any) -> None:
    """torch.save `obj` straight into a temp file, fsync, rename: no second in-memory copy."""
    _atomic(path, lambda f: torch.save(obj, f))


def _atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Run `write` on a temp file beside `path`, fsync, rename: a crash leaves the old file or the new."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise RecordError(f"cannot write {path}: {e.strerror or e}") from None


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write `obj` as indented JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, default=_jsonable) + "\n").encode())


def _jsonable(o: Any) -> Any:
    """JSON fallback for tensors, numpy scalars and paths."""
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: Path, need_format: bool = False) -> Any:
    """Read a JSON record; errors name the file."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise RecordError(f"{path}: unreadable record ({e})") from None
    if need_format and (not isinstance(obj, dict) or obj.get("format") != FORMAT):
        got = obj.get("format") if isinstance(obj, dict) else None
        raise RecordError(f"{path}: record format {got!r}, this kit reads format {FORMAT}; "
                          f"re-run the trial with --force or use the kit version that wrote it")
    return obj


def _git(*args: str) -> str | None:
    """Output of a git command in the kit's folder, or None outside a checkout."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_name() -> str:
    """The CPU's model name (platform.processor() is empty on most Linux machines)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _code_state() -> dict:
    """Commit and dirty flag of the kit's checkout, read now."""
    # Records under results/ are what runs write, not code that runs: they never make a tree dirty.
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


# Taken once, when the process imports the kit: a runner keeps the code it imported for every
# trial, so a commit read at each trial's start could name code that never ran.
CODE_STATE = _code_state()


def provenance(device: torch.device | str, deterministic: bool, data_source: str | None) -> dict:
    """Where, when and with what a trial ran (the code as it was when this process started)."""
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_name()
    return {
        **CODE_STATE, "code_state_at": "process start",
        "torch": torch.__version__, "python": platform.python_version(), "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "device_name": name, "hostname": socket.gethostname(), "argv": sys.argv,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "deterministic": deterministic, "data_source": data_source, "data_copy": data_copy(data_source),
    }


class Trial:
    """One trial folder and the records in it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        """Path of a record inside the folder."""
        return self.path / name

    @property
    def finished(self) -> bool:
        """A trial whose result.json exists is finished."""
        return self.file(RESULT).is_file()

    def prepare(self) -> None:
        """Create the folder and prove it is writable, with a one-line reason if not."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.file(f".probe{os.getpid()}")
            probe.write_bytes(b"x")
            probe.unlink()
        except OSError as e:
            raise RecordError(f"cannot write to {self.path}: {e.strerror or e}") from None

    def archive(self) -> Path:
        """Move an existing folder aside (for --force) so nothing already written is lost."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        dest = self.path.with_name(f"{self.path.name}.old-{stamp}")
        self.path.rename(dest)
        return dest

    def write_config(self, config: dict) -> None:
        """Write config.json (resolved config and provenance)."""
        atomic_write_json(self.file(CONFIG), {"format": FORMAT, **config})

    def write_json(self, name: str, obj: Any) -> None:
        """Atomically write an auxiliary JSON record (samples, arch, alphas)."""
        atomic_write_json(self.file(name), obj)

    def write_result(self, result: dict) -> None:
        """Write result.json, last and atomically."""
        atomic_write_json(self.file(RESULT), {"format": FORMAT, **result})

    def append_epoch(self, record: dict) -> None:
        """Append one epoch line, flushed and fsynced before returning."""
        line = json.dumps(record, default=_jsonable, allow_nan=False) + "\n"
        try:
            with open(self.file(EPOCHS), "a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise RecordError(f"cannot append to {self.file(EPOCHS)}: {e.strerror or e}") from None

    def read_epochs(self) -> list[dict]:
        """Whole epoch lines in order; a torn last line is ignored."""
        path = self.file(EPOCHS)
        if not path.is_file():
            return []
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise RecordError(f"{path}: cannot read the epoch log ({e}); move the trial folder aside or "
                              f"re-run it with --force") from None
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                break  # a torn line can only be the last one written before a crash
        return out

    def truncate_epochs(self, keep: int) -> None:
        """Keep exactly the epochs 0..keep-1 (those covered by the checkpoint)."""
        kept = [r for r in self.read_epochs() if r.get("epoch", -1) < keep][:keep]
        text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept)
        atomic_write_bytes(self.file(EPOCHS), text.encode())

    def save_checkpoint(self, state: dict) -> None:
        """Atomically save the resumable state (and wait for it: see CheckpointWriter for the cheap way)."""
        atomic_save(self.file(CHECKPOINT), state)

    def load_checkpoint(self) -> dict | None:
        """The saved state, or None when there is none."""
        path = self.file(CHECKPOINT)
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint must be named, not traced
            raise RecordError(f"{path}: unreadable checkpoint ({e}); delete it to start over") from None


def snapshot(obj: Any) -> Any:
    """A copy of a state that later training cannot change: tensors copied to host memory."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [snapshot(v) for v in obj]
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):  # named tuples go through deepcopy
        return tuple(snapshot(v) for v in obj)
    return copy.deepcopy(obj)


class CheckpointWriter:
    """Writes a trial's checkpoints on a background thread, one at a time, in order.

    `save` costs the caller only a copy of the state into host memory; serialising, writing
    and fsyncing (seconds for a paper-size supernet) overlap the next epoch. The file on
    disk is always a whole earlier checkpoint, so a crash mid-write resumes from the one
    before, and the epoch lines past it are dropped as usual. A write error surfaces at the
    next `save` or at `wait`.
    """

    def __init__(self, trial: Trial):
        self.trial = trial
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, state: dict) -> None:
        """Wait for the previous write, snapshot `state`, and write it in the background."""
        self.wait()
        frozen = snapshot(state)
        self._thread = threading.Thread(target=self._write, args=(frozen,), name="checkpoint", daemon=True)
        self._thread.start()

    def _write(self, state: dict) -> None:
        """The background part; keeps the error for the main thread."""
        try:
            self.trial.save_checkpoint(state)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread by wait()
            self._error = e

    def wait(self) -> None:
        """Block until the last checkpoint is on disk; raise its write error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err
