"""The exceptions a trial can raise that a runner above it must tell apart, by type (torch-free).

A runner (`experiments.launchers.run_one`, the pool's workers, Ray tasks) sorts what a method
raised into an outcome; it may not import the method's modules, and must not guess from a
class name or a message, which drift. So the types live here, on the floor every layer stands on.
Each carries its one-line message as its only argument, so it survives pickling unchanged
(a trial in a pool worker or a Ray task raises it in another process than the one reporting it).
"""
from __future__ import annotations


class NotAvailable(NotImplementedError):
    """A method that does not implement this strategy or space yet: a known gap, not a failed trial.

    A plain NotImplementedError (a missing torch kernel, say) stays a failure: only this type is a gap."""


class OutOfMemory(RuntimeError):
    """The device ran out of memory in a trial; the message is the hint (what to lower, or free the GPU)."""

    @property
    def hint(self) -> str:
        """The one line to show the user."""
        return str(self)


class RecordError(RuntimeError):
    """A record that cannot be written or read as the contract says; the message names the file."""


class Interrupted(RuntimeError):
    """The user stopped the run (SIGINT); the message says what the trial folder keeps.

    Defined on the floor, so the runner and the CLIs recognise it by type without importing the loop."""
