"""The student's self-check runner: one plain child process, on Linux, macOS and Windows.

``python -m grader check NOTEBOOK`` runs the student's own code on the student's own machine,
so it needs no sandbox (that is the instructor's batch grader, :mod:`grader.runner.process`,
Linux only). It must start fast and run everywhere, hence:

* one plain ``subprocess`` — ``python -I grader/runner/child.py``, which imports only the
  standard library and NumPy — with the request on its stdin and one JSON event per line on its
  stdout; no ``fork``, no ``preexec_fn``, no rlimits, no process groups, no bubblewrap;
* a reader thread feeding a queue, so every wait has a timeout on every OS (``selectors`` only
  works on sockets on Windows); a case that hangs or kills the child is marked, and a new child
  runs the remaining cases;
* the child is started *before* the parent builds the cases, so its start-up (Python and
  NumPy, ≈ 0.15 s) overlaps the parent's; this module therefore imports only the standard
  library at the top, and the check library inside :func:`self_check`.

The judging is the batch grader's: the same public cases (shipped fixtures), the same
:func:`~grader.runner.judging.judge_event`, the same :class:`~grader.results.SubmissionResult`.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CHILD_SCRIPT = Path(__file__).resolve().with_name("child.py")
ISOLATION = "self-check: one plain process (no sandbox)"
MAX_EVENT_BYTES = 128 * 2**20  # one event line; anything longer is not an event
TIMEOUT, EOF, GARBAGE = "timeout", "eof", "garbage"


@dataclass(frozen=True)
class Budget:
    """How long the student's code may take (seconds), and how often the child may be restarted."""

    cells: float = 20.0  # to run all of the student's cells
    case: float = 10.0  # per case
    total: float = 90.0  # the whole self-check, restarts included
    restarts: int = 8
    output_chars: int = 20_000  # captured stdout per cell batch / case


@dataclass
class ChildRun:
    """What the child sent: the "ready" event, one "case" event per key, or why there is none."""

    ready: dict | None = None
    events: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    restarts: int = 0


class PlainChild:
    """``python -I child.py`` with a reader thread; :meth:`send` the request, :meth:`next` events."""

    def __init__(self) -> None:
        self.home = tempfile.TemporaryDirectory(
            prefix="grader-selfcheck-", ignore_cleanup_errors=True
        )
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(CHILD_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.home.name,
        )
        self.events: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def send(self, request: bytes) -> None:
        """Write the request from a thread: a large request must not block the deadlines."""

        def write() -> None:
            try:
                self.process.stdin.write(request)
                self.process.stdin.close()
            except OSError:  # the child is already gone: the reader reports EOF
                pass

        threading.Thread(target=write, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        try:
            while True:
                line = stream.readline(MAX_EVENT_BYTES + 1)
                if not line:
                    self.events.put(EOF)
                    return
                if len(line) > MAX_EVENT_BYTES or not line.endswith(b"\n"):
                    self.events.put(GARBAGE)
                    return
                try:
                    event = json.loads(line)
                except (ValueError, RecursionError):
                    event = GARBAGE
                self.events.put(event if isinstance(event, dict) else GARBAGE)
        except (OSError, ValueError):  # the pipe was closed under us by finish()
            self.events.put(EOF)

    def next(self, deadline: float) -> dict | str:
        """The next event, or TIMEOUT, EOF (the child is gone), GARBAGE (not an event)."""
        try:
            return self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return TIMEOUT

    def finish(self) -> int | None:
        """End the child (it has sent "done", or it is killed) and return its exit code."""
        try:
            code = self.process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            self.process.kill()  # TerminateProcess on Windows, SIGKILL elsewhere
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        self.process.stdout.close()
        self.home.cleanup()
        return code

    def kill(self) -> None:
        self.process.kill()


def why_it_ended(code: int | None) -> str:
    """Why a child ended, from its exit code, in words that hold on every OS."""
    if code is None:
        return "the process stopped answering"
    if code < 0:  # POSIX: ended by a signal
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if name == "SIGKILL":
            return "the process was killed (SIGKILL: out of memory?)"
        return f"the process was ended by {name} (a crash?)"
    if code in (0xC0000005, -1073741819):  # Windows access violation
        return "the process crashed (access violation)"
    return f"the process exited with code {code} before it finished (os._exit or sys.exit?)"


def request_bytes(cells: list[dict], cases: list[dict], output_chars: int) -> bytes:
    return json.dumps({"cells": cells, "cases": cases, "output_limit": output_chars}).encode()


def run_plain(
    cells: list[dict],
    cases: list[dict],
    budget: Budget = Budget(),  # noqa: B008 - frozen dataclass: an immutable default
    first: PlainChild | None = None,
) -> ChildRun:
    """Run ``cells`` then every case in a plain child; a new child after a case kills or hangs it.

    ``cases`` are wire-ready dicts (``{"key", "plan", "returns", "inputs"}``, see
    :mod:`grader.runner.child`); ``first`` is a child already started (its Python and NumPy
    start-up overlapped with the caller's work).
    """
    run = ChildRun()
    start = time.monotonic()
    end = start + budget.total
    pending = list(cases)
    child = first
    while pending or run.ready is None:
        if time.monotonic() > end:
            for case in pending:
                run.failures[case["key"]] = f"not run: the self-check used its {budget.total:.0f} s"
            break
        if run.restarts > budget.restarts:
            for case in pending:
                run.failures[case["key"]] = "not run: too many crashes or time-outs before it"
            break
        child = child or PlainChild()
        try:
            fatal = _one_child(child, cells, pending, budget, run, end)
        finally:
            child.kill()
            child.finish()
            child = None
        if fatal:
            for case in pending:
                run.failures.setdefault(case["key"], fatal)
            break
        pending = [
            c for c in pending if c["key"] not in run.events and c["key"] not in run.failures
        ]
        if pending:
            run.restarts += 1
    return run


def _one_child(child: PlainChild, cells, cases, budget: Budget, run: ChildRun, end: float) -> str:
    """Feed one child; returns a reason when the cells themselves failed (nothing can run)."""
    child.send(request_bytes(cells, cases, budget.output_chars))
    event = child.next(min(time.monotonic() + budget.cells, end))
    if not isinstance(event, dict) or event.get("event") != "ready":
        if event == TIMEOUT:
            why = f"your cells did not finish within {budget.cells:.0f} s (an endless loop?)"
        elif event == EOF:
            why = f"{why_it_ended(child.finish())} while your cells ran"
        else:
            why = "while your cells ran, the process sent something that is not a result"
        run.ready = run.ready or {"fatal": why, "cell_errors": [], "stdout": "", "warnings": []}
        return why
    run.ready = run.ready or event
    for case in cases:
        event = child.next(min(time.monotonic() + budget.case, end))
        if (
            isinstance(event, dict)
            and event.get("event") == "case"
            and event.get("key") == case["key"]
        ):
            run.events[case["key"]] = event
            continue
        if event == TIMEOUT:
            run.failures[case["key"]] = f"timed out after {budget.case:.0f} s (an endless loop?)"
        elif event == EOF:
            run.failures[case["key"]] = why_it_ended(child.finish())
        else:
            run.failures[case["key"]] = (
                "the process sent something that is not this case's result "
                "(did the code write to the grader's channel?)"
            )
        return ""
    return ""


def self_check(path: Path, budget: Budget = Budget()):  # noqa: B008 - immutable default
    """Run the public checks of one notebook, as ``python -m grader check`` does.

    Parameters
    ----------
    path : Path
        The student's notebook (read, never written).
    budget : Budget, optional
        Time limits for the student's code.

    Returns
    -------
    grader.results.SubmissionResult
        One :class:`~grader.checks.base.CheckResult` per public check of the notebook's
        assignment; ``error`` says why nothing could be run (an unreadable notebook, say).
    """
    started = time.perf_counter()
    child = PlainChild()  # starts Python and NumPy while we read the notebook and build cases
    try:
        from grader.checks import NOTEBOOKS, checks_for
        from grader.checks.base import CaseResult, CheckResult
        from grader.checks.cases import cases_for
        from grader.results import SubmissionResult
        from grader.runner.judging import judge_event, wire_case
        from grader.runner.submission import SubmissionError, assignment_from_path, load_submission

        try:
            submission = load_submission(path)
        except SubmissionError as exc:
            assignment = assignment_from_path(path) or "unknown"
            result = SubmissionResult(path, assignment, error=str(exc))
            for check in checks_for(assignment, False) if assignment in NOTEBOOKS else []:
                result.checks.append(CheckResult(check, [CaseResult("all cases", False, str(exc))]))
            result.seconds = time.perf_counter() - started
            return result
        planned = []
        for check in checks_for(submission.assignment, include_hidden=False):
            planned.append(
                (check, [(f"{check.id}/{i}", case) for i, case in enumerate(cases_for(check))])
            )
        wire = [wire_case(key, case) for _, keyed in planned for key, case in keyed]
        run = run_plain(submission.cells, wire, budget, first=child)
        child = None
    finally:
        if child is not None:
            child.kill()
            child.finish()
    result = SubmissionResult(
        submission.path, submission.assignment, sha256=submission.sha256, isolation=ISOLATION
    )
    result.notes = list(submission.notes)
    if submission.identified_by != "metadata":
        result.notes.append(
            f"assignment {submission.assignment} recognised by its {submission.identified_by}"
        )
    ready = run.ready or {}
    for error in ready.get("cell_errors", []):
        result.notes.append(f"cell {error['cell']} raised {error['type']}: {error['message']}")
    for warning in ready.get("warnings", []):
        result.notes.append(f"your cells warned (no points lost): {warning}")
    for check, keyed in planned:
        cases = []
        for key, case in keyed:
            try:
                cases.append(
                    judge_event(check, case, run.events.get(key), run.failures.get(key, ""))
                )
            except Exception as exc:  # noqa: BLE001 - whatever came back could not be judged
                cases.append(
                    CaseResult(
                        case.name, False, f"could not be judged ({exc!r})", points=case.points
                    )
                )
        result.checks.append(CheckResult(check, cases))
    result.seconds = time.perf_counter() - started
    return result
