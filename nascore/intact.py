"""Torch-free checks that a trial folder's records are whole: epoch lines, a finished trial, the data.

The trial loop (`nascore.records`, `nascore.loop`) and the experiment runner (torch-free)
both ask these questions, so they answer them the same way: whether a folder that claims
to be finished really holds its records, and which data set a trial read.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from contract.errors import RecordError
from contract.format import READABLE_TEXT, readable
from contract.names import EPOCHS, RESULT, STATUSES

RERUN = "re-run the trial with --force (the folder is moved aside)"  # the next step after damaged records
# The standard layout's batch files: together they are the data set a trial read.
DATA_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def parse_epochs(text: str, path: Path) -> list[dict]:
    """Epoch records in file order; a line that does not parse (torn by a crash) is dropped alone.

    A torn line starts with `{` and is cut short, so it never parses; a line that does parse but
    is no epoch record (a list, a number, no integer "epoch") was written by something else and
    is an error naming the line, not a guess.
    """
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        epoch = rec.get("epoch") if isinstance(rec, dict) else None
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            what = type(rec).__name__ if not isinstance(rec, dict) else "an object without an integer 'epoch'"
            raise RecordError(f"{path} line {n}: not an epoch record (a JSON {what}); remove that line, "
                              f"or {RERUN}")
        out.append(rec)
    return out


def missing_epochs(epochs: list[dict], count: int) -> list[int]:
    """The epochs among 0..count-1 that have no record."""
    return sorted(set(range(count)) - {r["epoch"] for r in epochs})


def spans(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> '1-3, 6' (epochs counted from 1, as the progress lines show them)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0] + 1}" if len(r) == 1 else f"{r[0] + 1}-{r[-1] + 1}" for r in runs)


def flat(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}, after a JSON round trip so tuples compare equal to lists."""
    out = {}
    for key, val in json.loads(json.dumps(d, default=str)).items():
        if isinstance(val, dict):
            out.update(flat(val, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = val
    return out


def _read_result(path: Path) -> tuple[dict | None, str | None]:
    """(result.json as a dict, None) or (None, why it is no finished-trial record)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return None, f"{path} is unreadable ({type(e).__name__}: {e})"
    if not isinstance(result, dict):
        return None, f"{path} holds a JSON {type(result).__name__}, not a result record"
    if not readable(result) or result.get("status") not in STATUSES:
        return None, (f"{path} is no result record of this kit (format {result.get('format')!r}, "
                      f"status {result.get('status')!r}; expected format {READABLE_TEXT} "
                      f"and one of {', '.join(STATUSES)})")
    return result, None


def finished_problem(folder: Path) -> str | None:
    """Why a folder whose result.json exists cannot count as finished, or None (also when not finished)."""
    path = Path(folder) / RESULT
    if not path.exists():
        return None
    result, why = _read_result(path)
    if why:
        return f"{why}; the trial claims to be finished but cannot be trusted: {RERUN}"
    count, log = result.get("epochs"), Path(folder) / EPOCHS
    if not isinstance(count, int) or count <= 0:
        return None
    if not log.is_file():
        return f"{path} counts {count} epoch(s) but {log} is missing: {RERUN}"
    try:
        missing = missing_epochs(parse_epochs(log.read_text(), log), count)
    except (OSError, UnicodeDecodeError) as e:
        return f"{log} is unreadable ({e}): {RERUN}"
    except RecordError as e:
        return str(e)
    if missing:
        return f"{log} lacks epoch(s) {spans(missing)} of the {count} that {path} counts: {RERUN}"
    return None


def data_digest(source: str | None) -> str | None:
    """md5 over the data set's batch files (a trial's data `source` folder), or None when unreadable."""
    if not source:
        return None
    try:
        stamp = tuple((s.st_size, s.st_mtime_ns) for s in (Path(source, n).stat() for n in DATA_FILES))
    except OSError:
        return None
    return _digest(str(source), stamp)


@functools.lru_cache(maxsize=8)
def _digest(source: str, stamp: tuple) -> str | None:
    """The md5 itself, read once per process for files of the same size and time (`stamp`)."""
    digest = hashlib.md5()  # noqa: S324 (a checksum, not security)
    try:
        for name in DATA_FILES:
            with open(Path(source) / name, "rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


# Record fields that differ between two faithful runs of the same trials: timings and the command line.
TIMING_FIELDS = frozenset({"search_s", "checkpoint_s_per_epoch", "epoch_s", "wall_s", "train_s", "argv",
                           "started_at"})


def _comparable(value, root: str, drop: frozenset):
    """A record value without the `drop` fields, its results root replaced by a placeholder."""
    if isinstance(value, dict):
        return {k: _comparable(v, root, drop) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_comparable(v, root, drop) for v in value]
    return value.replace(root, "<results>") if isinstance(value, str) else value


def comparable_records(results: Path, also_drop: frozenset = frozenset()) -> dict[str, list]:
    """Every JSON record under a results root (tracebacks in _logs/ skipped), timing fields left out,
    so two launchers' runs of the same trials compare equal when their numbers are."""
    drop, out = TIMING_FIELDS | also_drop, {}
    for path in sorted(Path(results).rglob("*.json*")):
        rel = str(path.relative_to(results))
        if rel.startswith("_logs"):
            continue
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        out[rel] = [_comparable(json.loads(line), str(results), drop) for line in lines if line.strip()]
    return out
