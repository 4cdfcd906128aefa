"""Time budgets of a batch: no student, and no batch, runs longer than the instructor allows.

Each notebook is already bounded by its :class:`~grader.runner.process.Limits` (cells, each
case, ``total_seconds`` for the whole run). A student with many notebooks, each idling just under
those limits, would still stall the class; so would a large class on a slow machine. Two more
bounds close that:

* **per student** (``Limits.student_seconds``): a notebook gets at most what its student has
  left, reserved when it starts (so notebooks of one student graded in parallel cannot overrun
  together) and settled when it ends. A student whose budget is spent gets a final result for
  each further notebook: not graded, 0 points, the reason stated;
* **per batch** (``Limits.batch_seconds``): once spent, no further notebook starts; those get a
  **non-final** result (never stored), so the same command run again grades them, with the
  store supplying everything already graded. Notebooks running when it is spent finish within
  their own ``total_seconds``.

The same budget is kept by the client of a Dask cluster (:mod:`grader.runner.cluster`): it grants
before it submits a notebook's task, sends the granted limits with it, and settles when the
result arrives. With the defaults (300 s per student, 3600 s per batch) a 300-student class is bounded by an
hour plus one notebook's limit per worker, whatever the submissions do; honest notebooks take
about a second each.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict

from grader.runner.process import Limits

MIN_GRANT = 1.0  # a notebook gets at least this long, or is not started


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a notebook is not started; ``final`` is False when a re-run will grade it."""

    reason: str
    final: bool


class Budget:
    """The time left to each student and to the batch; safe to use from worker threads."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.start = time.monotonic()
        self.used: dict[str, float] = defaultdict(float)
        self.reserved: dict[str, float] = defaultdict(float)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def grant(self, student: str, wait: bool = True) -> Limits | Refusal | None:
        """The limits to run ``student``'s next notebook with, or why it does not start.

        Time another of the student's notebooks has reserved but not used yet is not spent:
        while it runs, this call waits for it to settle instead of refusing (otherwise a
        student's notebooks graded at once would refuse each other for good); with
        ``wait=False`` it returns None instead of waiting (the cluster's client asks again
        after the next result)."""
        limits = self.limits
        with self.changed:
            while True:
                if time.monotonic() - self.start >= limits.batch_seconds:
                    return Refusal(
                        f"not graded yet: the batch used its budget of {limits.batch_seconds:.0f} s "
                        "before this notebook started; run the same command again to grade it",
                        final=False,
                    )
                unused = limits.student_seconds - self.used[student]
                if unused < MIN_GRANT:
                    return Refusal(
                        f"not graded: this student's notebooks used the budget of "
                        f"{limits.student_seconds:.0f} s per student",
                        final=True,
                    )
                left = unused - self.reserved[student]
                if left >= MIN_GRANT:
                    break
                # the student's running notebooks hold the rest: wait until one settles
                if not wait:
                    return None
                self.changed.wait(timeout=1.0)
            seconds = min(limits.total_seconds, left)
            self.reserved[student] += seconds
        return dataclasses.replace(limits, total_seconds=seconds)

    def settle(self, student: str, granted: Limits, seconds: float) -> None:
        """The notebook that was granted ``granted`` is done after ``seconds``."""
        with self.lock:
            self.reserved[student] -= granted.total_seconds
            self.used[student] += seconds
            self.changed.notify_all()
