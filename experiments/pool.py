"""The pool launcher: N trials at once, each in a worker process of its own, on one machine (`--jobs N`).

Slot k is one spawned worker (spawned, not forked: no torch or CUDA state is copied). It sets its
torch threads once (the cores split between the slots unless --threads is given) and, on a CUDA
machine, sees one GPU, the k-th visible one round-robin (CUDA_VISIBLE_DEVICES), so N slots over G
GPUs put about N/G trials on each card. A retrain starts only after its source search has ended.
A trial that fails, or a worker that dies, is that trial's outcome; the other slots go on. Ctrl-C
reaches the runner alone (workers leave its process group), and so does `kill <runner pid>` (SIGTERM,
which the runner takes as Ctrl-C while the pool runs): the runner hands one SIGINT to each running
trial, which stops at its last checkpoint, then ends every worker (SIGKILL to one that would not stop)
so no trial outlives the run or keeps its lock; then the run ends as an interrupted sequential one does.
Ray stays the launcher for clusters; this one needs only the standard library.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import click

from contract.threads import cores, parse_threads
from experiments.launchers import FAILED, Launcher, Outcome, TrialFn, is_interrupt, progress_line, start_line
from experiments.runner import TrialPlan

CANCEL_WAIT_S = 60.0  # after Ctrl-C, how long running trials get to stop at their checkpoint


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the runner: stop the run as Ctrl-C does (a KeyboardInterrupt, so every caller agrees)."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated("terminated (SIGTERM)")


@dataclass(frozen=True)
class Slot:
    """One worker process's share of the machine."""

    index: int  # slot number, from 0
    threads: int  # torch intra-op threads of its trials
    env: dict = field(default_factory=dict)  # set before torch loads: CUDA_VISIBLE_DEVICES when GPUs are shared


def visible_gpus(device: str) -> list[str]:
    """The GPUs to share round-robin: none for cpu or a named cuda:N (every slot uses that one)."""
    if device.startswith("cpu") or ":" in device:
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:  # already narrowed by the user: share exactly those
        return [g.strip() for g in listed.split(",") if g.strip()]
    import torch  # only to count GPUs; the runner has imported it already to check the device

    return [str(i) for i in range(torch.cuda.device_count())]


def plan_slots(jobs: int, threads: str, gpus: Sequence[str]) -> list[Slot]:
    """`jobs` slots: threads as given, else the cores split evenly (at least 1); GPUs dealt round-robin."""
    given = parse_threads(threads)  # the one parser; "auto" here splits the cores between the slots
    each = given if given is not None else max(1, cores() // jobs)
    return [Slot(k, each, {"CUDA_VISIBLE_DEVICES": gpus[k % len(gpus)]} if gpus else {}) for k in range(jobs)]


def _start_worker(env: dict, threads: int) -> None:
    """Worker start: own process group (Ctrl-C goes to the runner, which forwards it once), GPU, threads."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _on_sigterm)  # a worker sent SIGTERM stops its trial at the checkpoint too
    os.environ.update(env)
    from nascore.runtime import apply_threads  # torch loads here, in the worker, after CUDA_VISIBLE_DEVICES

    apply_threads(threads)


def _ready(n: int, plans: Sequence[TrialPlan], outcomes: list, index: dict) -> bool:
    """A plan may start: it retrains nothing, or its source search (when planned here) has ended."""
    source = plans[n].source
    return source is None or source.parent not in index or outcomes[index[source.parent]] is not None


class PoolLauncher(Launcher):
    """N worker processes on this machine; outcomes come back in plan order."""

    def __init__(self, jobs: int, threads: str = "auto", device: str = "auto"):
        if jobs < 1:
            raise ValueError(f"--jobs {jobs}: use 1 or more")
        self.jobs = jobs  # trials at once
        self.threads = threads  # per trial: a number, or auto (the cores split between the slots)
        self.device = device  # the run's --device: decides whether GPUs are dealt to slots

    def run(self, plans: Sequence[TrialPlan], fn: TrialFn) -> list[Outcome]:
        """Run every plan in a slot as slots free up; a retrain waits for its source."""
        if not plans:
            return []
        slots = plan_slots(min(self.jobs, len(plans)), self.threads, visible_gpus(self.device))
        gpus = ", ".join(s.env["CUDA_VISIBLE_DEVICES"] for s in slots if s.env) or "none"
        click.echo(f"pool: {len(slots)} trial(s) at once, {slots[0].threads} torch thread(s) each, "
                   f"GPU per slot: {gpus}", err=True)
        ours = threading.current_thread() is threading.main_thread()  # only there can a handler be set
        before = signal.signal(signal.SIGTERM, _on_sigterm) if ours else None
        workers, ended = _Workers(), False
        try:
            workers.start(slots)
            outcomes = self._run(plans, fn, workers)
            ended = True
            return outcomes
        finally:
            workers.close(wait=ended)  # after Ctrl-C, a trial that would not stop is not waited for
            if ours:
                signal.signal(signal.SIGTERM, before)

    def _run(self, plans: Sequence[TrialPlan], fn: TrialFn, workers: _Workers) -> list[Outcome]:
        """The scheduling loop: fill free slots with ready plans, collect what ends."""
        outcomes: list[Outcome | None] = [None] * len(plans)
        index = {p.folder: n for n, p in enumerate(plans)}
        waiting, running = list(range(len(plans))), {}
        try:
            while waiting or running:
                for n in [n for n in waiting if _ready(n, plans, outcomes, index)]:
                    if not workers.free:
                        break
                    running[workers.submit(fn, plans[n])] = n
                    waiting.remove(n)
                    click.echo(start_line(n, plans), err=True)
                # A timeout returns to Python now and then, so Ctrl-C is seen while trials run.
                done, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in done:
                    n = running.pop(fut)
                    outcomes[n] = workers.outcome(fut, plans[n])
                    click.echo(progress_line(n, plans, outcomes[n]), err=True)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt) or is_interrupt(e):
                workers.interrupt(list(running))
            raise
        return [o for o in outcomes if o is not None]


class _Workers:
    """One single-process executor per slot, so each trial's slot (GPU, threads) is known."""

    def __init__(self):
        self.slots: list[Slot] = []
        self.pools: list[ProcessPoolExecutor] = []
        self.pids: list[int] = []  # worker pids, for Ctrl-C
        self.free: list[int] = []
        self.busy: dict[Future, int] = {}

    def start(self, slots: Sequence[Slot]) -> None:
        """Start every worker now (torch loads in parallel) and learn its pid, for Ctrl-C."""
        self.slots = list(slots)
        for s in self.slots:  # one by one: a signal during start-up leaves close() every pool made so far
            self.pools.append(self._pool(s))
        self.pids = [f.result() for f in [p.submit(os.getpid) for p in self.pools]]
        self.free = list(range(len(self.slots)))

    @staticmethod
    def _pool(slot: Slot) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(slot.env, slot.threads))

    def submit(self, fn: Callable, plan: TrialPlan) -> Future:
        """Start a trial in the first free slot."""
        k = self.free.pop(0)
        fut = self.pools[k].submit(fn, plan)
        self.busy[fut] = k
        return fut

    def outcome(self, fut: Future, plan: TrialPlan) -> Outcome:
        """The trial's outcome; a worker that died is this trial's failure and its slot gets a new one."""
        k = self.busy.pop(fut)
        self.free.append(k)
        try:
            return fut.result()
        except BrokenProcessPool:
            self.pools[k].shutdown(wait=False)
            self.pools[k] = self._pool(self.slots[k])
            self.pids[k] = self.pools[k].submit(os.getpid).result()
            return Outcome(plan, FAILED, f"its worker process died (slot {k}); run the same command to resume it")
        except Exception as e:  # e.g. a result that cannot travel back: this trial's failure, not the run's
            if is_interrupt(e):
                raise
            return Outcome(plan, FAILED, f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}")

    def interrupt(self, running: list[Future]) -> None:
        """One SIGINT to each running trial's worker, then wait for them to keep their checkpoints."""
        for fut in running:
            try:
                os.kill(self.pids[self.busy[fut]], signal.SIGINT)
            except ProcessLookupError:
                pass
        end = time.monotonic() + CANCEL_WAIT_S
        while any(not f.done() for f in running) and time.monotonic() < end:
            wait(running, timeout=1.0)

    def close(self, wait: bool) -> None:
        """Shut every worker down (nothing is queued beyond the running trials); after a stop, end any left."""
        # The executor's own process handles (private, but a stable CPython attribute): the public API
        # cannot end a worker whose trial outlives shutdown(), and the runner's exit would wait for it.
        procs = [q for pool in self.pools for q in (getattr(pool, "_processes", None) or {}).values()]
        for pool in self.pools:
            pool.shutdown(wait=wait, cancel_futures=True)
        if wait:
            return
        end = time.monotonic() + 5.0  # an idle worker leaves on the shutdown message; a stuck trial does not
        for proc in procs:
            proc.join(max(0.0, end - time.monotonic()))
            if proc.is_alive():  # it resumes from its last checkpoint; its lock is a dead holder's, taken over
                click.echo(f"pool: worker {proc.pid} did not stop; killed (it resumes from its last checkpoint)",
                           err=True)
                proc.kill()
                proc.join(5.0)
