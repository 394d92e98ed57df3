"""How many CPU threads torch gets: the one rule and the one parser every command and the runner use.

Torch-free, so a bad --threads is refused before torch loads (3-6 s), in the same line on every
command line; applying the count to torch is `nascore.runtime.apply_threads`.
"""
from __future__ import annotations

import os

_AUTO = "a number, or auto = the cores not already busy"
THREADS_HELP = (f"CPU threads for torch: {_AUTO} (cores this process may use minus the 1-minute load average, "
                "at least 1), the same rule for make, the runner and commands typed by hand.")
# The experiment runner's --threads: the same rule, said from the runner's side.
RUNNER_THREADS_HELP = (f"CPU threads for torch in this runner: {_AUTO} (the rule every command uses); "
                       "recorded in each trial's config.json.")


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads() -> int:
    """Cores this process may use minus those already busy (1-minute load average), at least 1.

    On a 2-core machine (smoke search epoch, measured): idle, 2 threads beat 1 (1.6 s vs 2.2 s); with
    one other busy process, 2 threads ran 3.5-5.8 s against 1 thread's 2.2 s."""
    n = cores()
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(n, n - int(round(busy))))


def parse_threads(value: str | int | None) -> int | None:
    """'auto' or None -> None (the default rule); 1..cores -> itself; else one clear error.

    More threads than cores only slow torch down (they take turns on the same cores), so a count
    above the cores is refused rather than run many times slower."""
    if value is None or str(value).strip().lower() == "auto":
        return None
    try:
        n = int(str(value))
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"--threads {value!r}: use a positive number of threads or auto")
    if n > cores():
        raise ValueError(f"--threads {value!r}: this process may use {cores()} core(s); "
                         f"use at most {cores()} or auto")
    return n
