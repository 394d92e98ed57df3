"""Wall time of `experiments run fig2 --scale smoke` one trial at a time against `--jobs 2`, in one script.

    python scripts/bench_pool.py --data-dir .data/cifar10 --out results/bench/pool-cpu.json

Runs into a scratch folder: --jobs 1 --threads 1 and --jobs 2 (the cores split: one thread each on 2
cores); with --all-threads also --jobs 1 --threads <cores>. The first and the last must write the same records
(deterministic mode; timing fields aside), which the JSON states. The load average before and after
each run is kept, as other work on the machine changes every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from the checkout
from nascore.intact import comparable_records  # noqa: E402

THREADS = frozenset({"torch_threads"})  # --jobs 2 splits the cores: the thread count differs by design
def run(results: Path, jobs: int, threads: str, data: str, seeds: str) -> dict:
    """One timed `experiments run fig2` into `results`."""
    cmd = [sys.executable, "-m", "experiments", "run", "fig2", "--scale", "smoke", "--seeds", seeds, "--device",
           "cpu", "--deterministic", "--results", str(results), "--data-dir", data, "--threads", threads,
           "--jobs", str(jobs)]
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return {"jobs": jobs, "threads": threads, "wall_s": round(wall, 1), "load_before": round(load0, 2),
            "load_after": round(os.getloadavg()[0], 2), "command": " ".join(cmd[1:])}


def machine() -> str:
    """CPU model and core count."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{model}, {len(os.sched_getaffinity(0))} cores, no GPU used"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "pool-cpu.json")
    parser.add_argument("--all-threads", action="store_true", help="also time --jobs 1 on every core")
    parser.add_argument("--jobs2-first", action="store_true",
                        help="time --jobs 2 before --jobs 1 (a second pass with the order swapped brackets load drift)")
    args = parser.parse_args()
    cores = str(len(os.sched_getaffinity(0)))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        order = [(2, "auto", "j2"), (1, "1", "j1t1")] if args.jobs2_first else [(1, "1", "j1t1"), (2, "auto", "j2")]
        timed = {name: run(Path(tmp) / name, jobs, threads, args.data_dir, args.seeds) for jobs, threads, name in order}
        one, two = timed["j1t1"], timed["j2"]
        full = run(Path(tmp) / "j1tn", 1, cores, args.data_dir, args.seeds) if args.all_threads else None
        same = comparable_records(Path(tmp) / "j1t1", THREADS) == comparable_records(Path(tmp) / "j2", THREADS)
    report = {"format": 1, "what": "experiments run fig2 --scale smoke, wall time, --jobs 1 vs --jobs 2",
              "machine": machine(), "commit": commit, "python": platform.python_version(),
              "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seeds": args.seeds, "runs": [r for r in (*timed.values(), full) if r],
              "ratio_jobs2_vs_jobs1_threads1": round(two["wall_s"] / one["wall_s"], 3),
              **({"ratio_jobs2_vs_jobs1_all_threads": round(two["wall_s"] / full["wall_s"], 3)} if full else {}),
              "records_equal_jobs1_threads1_vs_jobs2": same,
              "note": "a shared machine: other sessions' work ran at the same time (see each run's load)"}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
