"""The Ray launcher: every trial a Ray task with its own CPU/GPU share, on one machine or a cluster.

Several trials share a GPU with fractional `--gpus-per-trial`; retrains wait for their
source's task; a worker that dies is retried and resumes from the trial's checkpoint;
Ctrl-C cancels every task, which keeps its last checkpoint.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import click

from experiments.launchers import FAILED, Launcher, Outcome, TrialFn, progress_line, start_line
from experiments.runner import TrialPlan

KIT_ROOT = Path(__file__).resolve().parents[1]
CANCEL_WAIT_S = 60.0  # after Ctrl-C, how long cancelled trials get to finish writing their checkpoint


def import_ray():
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError("--launcher ray needs Ray: pip install 'nasib-kit[ray]' (or pip install 'ray[default]')"
                         ) from None
    return ray


def _run_in(cwd: str, fn: TrialFn, plan: TrialPlan, *_sources: object) -> Outcome:
    """One trial inside a Ray worker, from the driver's folder so relative results paths agree."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return fn(plan)


class RayLauncher(Launcher):
    """Every plan a Ray task with its own CPU/GPU share; retrains wait for their source's task."""

    def __init__(self, address: str | None = None, gpus_per_trial: float | None = None,
                 cpus_per_trial: float = 1.0, num_cpus: int | None = None, retries: int = 2):
        self.address = address  # an existing cluster ("auto", "host:6379"); None starts a local Ray
        self.gpus_per_trial = gpus_per_trial  # None: 1 when the cluster has GPUs, else 0
        self.cpus_per_trial = cpus_per_trial  # CPUs each trial reserves (and its torch threads)
        self.num_cpus = num_cpus  # CPUs a local Ray may use (None: all)
        self.retries = retries  # re-runs of a trial whose worker died; each resumes from the checkpoint
        if gpus_per_trial is not None and (gpus_per_trial < 0 or (gpus_per_trial > 1 and gpus_per_trial % 1)):
            raise ValueError(f"--gpus-per-trial {gpus_per_trial:g}: give a fraction up to 1 or a whole number of GPUs")
        if cpus_per_trial <= 0:
            raise ValueError(f"--cpus-per-trial {cpus_per_trial:g}: must be above 0")

    def _start(self):
        """Connect to (or start) Ray; returns (ray, whether this call started it)."""
        ray = import_ray()
        if ray.is_initialized():
            return ray, False
        if self.address:
            ray.init(address=self.address, log_to_driver=True)
        else:
            # Local workers import the kit from this checkout even when it is not installed.
            path = os.pathsep.join(p for p in (str(KIT_ROOT), os.environ.get("PYTHONPATH")) if p)
            ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=True,
                     runtime_env={"env_vars": {"PYTHONPATH": path}})
        return ray, True

    def _gpus(self, ray) -> float:
        """GPUs per trial: as asked, else a whole one when the cluster has any."""
        if self.gpus_per_trial is not None:
            return self.gpus_per_trial
        return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def run(self, plans: Sequence[TrialPlan], fn: TrialFn) -> list[Outcome]:
        """Submit every plan, report each as it finishes, and return the outcomes in plan order."""
        ray, started = self._start()
        try:
            return self._run(ray, plans, fn)
        finally:
            if started:
                ray.shutdown()

    def _submit(self, ray, plans: Sequence[TrialPlan], fn: TrialFn) -> dict:
        """One task per plan (retrains depend on their source's task); returns {ref: index}."""
        gpus = self._gpus(ray)
        task = ray.remote(_run_in).options(num_cpus=self.cpus_per_trial, num_gpus=gpus,
                                           max_retries=self.retries, retry_exceptions=False)
        click.echo(f"ray: {len(plans)} trial(s), {self.cpus_per_trial:g} CPU and {gpus:g} GPU each, on "
                   f"{ray.cluster_resources().get('CPU', 0):g} CPU / {ray.cluster_resources().get('GPU', 0):g} GPU",
                   err=True)
        by_folder, refs, cwd = {}, {}, os.getcwd()
        for n, plan in enumerate(plans):
            deps = [by_folder[plan.source.parent]] if plan.source and plan.source.parent in by_folder else []
            ref = task.remote(cwd, fn, plan, *deps)
            by_folder[plan.folder], refs[ref] = ref, n
            click.echo(start_line(n, plans), err=True)
        return refs

    def _run(self, ray, plans: Sequence[TrialPlan], fn: TrialFn) -> list[Outcome]:
        """Wait for the tasks, turning a task Ray could not finish into a failed outcome."""
        refs = self._submit(ray, plans, fn)
        outcomes: list[Outcome | None] = [None] * len(plans)
        pending, t0 = list(refs), time.perf_counter()
        try:
            while pending:
                # A timeout returns to Python now and then, so Ctrl-C is seen even while Ray waits.
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in done:
                    n = refs[ref]
                    outcomes[n] = self._outcome(ray, ref, plans[n], time.perf_counter() - t0)
                    click.echo(progress_line(n, plans, outcomes[n]), err=True)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)  # a KeyboardInterrupt in each running trial: it keeps its last checkpoint
            if pending:  # let them stop (their last checkpoint lands) before Ray is shut down
                ray.wait(pending, num_returns=len(pending), timeout=CANCEL_WAIT_S)
            raise
        return [o for o in outcomes if o is not None]

    @staticmethod
    def _outcome(ray, ref, plan: TrialPlan, seconds: float) -> Outcome:
        """The task's outcome, or FAILED naming why Ray gave up on it."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            return Outcome(plan, FAILED, f"{type(e).__name__}: {first}", seconds)
