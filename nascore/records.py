"""The trial folder: config, per-epoch JSON lines, results, checkpoints, provenance (its lock: nascore.lock).

Every write that must survive a crash is atomic (temp file, fsync, rename) or an fsynced
append of one whole line; on resume, lines past the checkpoint are dropped (a torn line
alone, wherever it is) and every epoch the checkpoint covers must still be there, so
`epochs.jsonl` never holds a partial, missing or duplicated epoch. The rules: docs/records.md.
"""
from __future__ import annotations

import copy
import datetime as dt
import errno
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from contract.errors import RecordError  # noqa: F401 (re-exported)
from contract.format import FORMAT, READABLE_TEXT, aside_suffix, readable, upgrade
from contract.names import (  # noqa: F401 (re-exported)
    CHECKPOINT,
    CONFIG,
    EPOCHS,
    LOCK,
    RESULT,
    data_copy,
)
from nascore.intact import RERUN, data_digest, finished_problem, missing_epochs, parse_epochs, spans

# Temp files a writer leaves when killed mid-write: `.<record>.tmp<pid>` (atomic writes), `.probe<pid>`.
TEMP_NAME = re.compile(r"\.(?:.+\.tmp|probe)(\d+)")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a crash leaves either the old file or the new one."""
    _atomic(path, lambda f: f.write(data), len(data))


def atomic_save(path: Path, obj: Any) -> None:
    """torch.save `obj` straight into a temp file, fsync, rename: no second in-memory copy."""
    _atomic(path, lambda f: torch.save(obj, f))


def _atomic(path: Path, write: Callable[[BinaryIO], object], need: int | None = None) -> None:
    """Run `write` on a temp file beside `path`, fsync, rename: a crash leaves the old file or the new.

    Whatever goes wrong, the temp file goes: a leftover would hold the disk space a retry needs.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        written = _size(tmp)
        tmp.unlink(missing_ok=True)
        # torch.save reports a full disk as RuntimeError ("PytorchStreamWriter failed writing file").
        if isinstance(e, (OSError, RuntimeError)):
            raise write_error(path, e, need or max(written, _size(path))) from None
        raise


def _size(path: Path) -> int:
    """A file's size in bytes, 0 when it is not there."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mb(n: int) -> str:
    """Bytes as a short human figure."""
    if n < 1e6:
        return f"{n} bytes"
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def write_error(path: Path, err: BaseException, need: int | None = None, lead: str | None = None) -> RecordError:
    """One line for a failed write: the path (or `lead`), why, and for a full disk the space free and needed."""
    code = getattr(err, "errno", None)
    reason = getattr(err, "strerror", None) or (str(err).strip().splitlines() or [type(err).__name__])[-1]
    msg = f"{lead or f'cannot write {path}'}: {reason}"
    if code == errno.EROFS:
        return RecordError(f"{msg}; the file system is read-only: choose a writable folder (--out, or the "
                           f"runner's --results)")
    if code in (errno.ENOSPC, errno.EDQUOT) or isinstance(err, RuntimeError):
        try:
            free = f"{_mb(shutil.disk_usage(path.parent).free)} free there"
        except OSError:
            free = "free space unknown"
        needs = f", it needs about {_mb(need)}" if need else ""
        return RecordError(f"{msg} (disk full? {free}{needs}); free some space and run the same command "
                           f"again to resume")
    return RecordError(msg)


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


class RecordFormatError(RecordError):
    """A record in a format this kit does not read; its message already names the next step (--force)."""


def read_json(path: Path, need_format: bool = False) -> Any:
    """Read a JSON record (with need_format: one of a readable format, upgraded to this one); errors name the file."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise RecordError(f"{path}: unreadable record ({e})") from None
    if need_format and not readable(obj):
        got = obj.get("format") if isinstance(obj, dict) else None
        raise RecordFormatError(f"{path}: record format {got!r}, this kit reads formats "
                                f"{READABLE_TEXT}; re-run the trial with --force or use the "
                                f"kit version that wrote it")
    return upgrade(obj) if need_format else obj


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
        "data_digest": data_digest(data_source),
    }


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a temp file's writer)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Trial:
    """One trial folder and the records in it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        """Path of a record inside the folder."""
        return self.path / name

    @property
    def finished(self) -> bool:
        """Finished: result.json exists and its records are whole (a damaged one is `damage()`)."""
        return self.file(RESULT).is_file() and self.damage() is None

    def damage(self) -> str | None:
        """Why a trial that claims to be finished (result.json) cannot be trusted, or None."""
        return finished_problem(self.path)

    def prepare(self) -> None:
        """Create the folder and prove it is writable, with a one-line reason if not."""
        probe = self.file(f".probe{os.getpid()}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"x")
        except OSError as e:
            raise write_error(self.path, e, lead=f"cannot write to {self.path}") from None
        finally:
            try:
                probe.unlink(missing_ok=True)
            except OSError:
                pass  # the folder itself is not there or not writable: the error above says so

    def remove_stale_temps(self) -> list[Path]:
        """Delete the temp files of dead processes (killed mid-write); returns what was removed."""
        removed = []
        for path in self.path.iterdir():
            match = TEMP_NAME.fullmatch(path.name)
            if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
                continue
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass  # not ours to remove (or read-only): the next write names the real problem
        return removed

    def archive(self) -> Path:
        """Move an existing folder aside (for --force) so nothing already written is lost."""
        stamp = aside_suffix()
        for n in range(100):
            suffix = stamp + (f"-{n}" if n else "")
            # A folder name near the file system's limit (255 bytes) is cut, not refused.
            base = self.path.name.encode()[:255 - len(suffix)].decode(errors="ignore")
            dest = self.path.with_name(base + suffix)
            if not dest.exists():
                break
        try:
            self.path.rename(dest)
        except OSError as e:
            raise write_error(self.path, e, lead=f"cannot move {self.path} aside to {dest.name}") from None
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
            raise write_error(self.file(EPOCHS), e, len(line)) from None

    def read_epochs(self) -> list[dict]:
        """Whole epoch lines in order; a torn line is dropped alone, a line of another kind is an error."""
        path = self.file(EPOCHS)
        if not path.is_file():
            return []
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise RecordError(f"{path}: cannot read the epoch log ({e}); move the trial folder aside or "
                              f"re-run it with --force") from None
        return parse_epochs(text, path)

    def truncate_epochs(self, keep: int) -> None:
        """Keep exactly the epochs 0..keep-1 (those the checkpoint covers); refuse if any is missing."""
        kept: dict[int, dict] = {}
        for rec in self.read_epochs():
            if rec["epoch"] < keep:
                kept.setdefault(rec["epoch"], rec)
        missing = missing_epochs(list(kept.values()), keep)
        if missing:
            raise RecordError(f"{self.file(EPOCHS)} lacks epoch(s) {spans(missing)} that {self.file(CHECKPOINT)} "
                              f"covers (deleted, replaced or damaged); restore the file, or {RERUN}")
        text = "".join(json.dumps(kept[e], allow_nan=False) + "\n" for e in range(keep))
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
            raise RecordError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e}); restore it from a "
                              f"backup, or {RERUN}") from None


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
