"""Running student code in a separate, resource-limited process and collecting what it returns.

The parent (this module) sends cells and call plans to :mod:`grader.runner.child`, reads one
JSON event per case under a deadline, and survives anything the child does: a case that hangs
or kills the process is marked, the child is restarted for the remaining cases, and everything
the child started is killed afterwards (it runs in its own session / process group).
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.runner import child

CHILD_SCRIPT = Path(child.__file__).resolve()
MAX_EVENT_BYTES = 256 * 2**20
ISOLATION = "process+rlimits"


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission's process."""

    cells_seconds: float = 20.0  # to run all of the student's cells
    case_seconds: float = 10.0  # per case
    total_seconds: float = 90.0  # per submission, restarts included
    memory_bytes: int = 2 * 2**30
    output_chars: int = 20_000  # captured stdout per cell batch / case
    open_files: int = 64
    file_bytes: int = 16 * 2**20
    max_restarts: int = 8


DEFAULT_LIMITS = Limits()


@dataclass
class RunOutcome:
    ready: dict | None = None  # the child's "ready" event: cell errors, stdout, warnings
    events: dict[str, dict] = field(default_factory=dict)  # case key -> "case" event
    failures: dict[str, str] = field(default_factory=dict)  # case key -> why it has no event
    isolation: str = ISOLATION
    seconds: float = 0.0


def _set_limits(limits: Limits):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        cpu = int(limits.total_seconds) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))

    return apply


def _child_environment(home: str) -> dict[str, str]:
    """A minimal environment: nothing of ours reveals the grader or the course."""
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"}
    env |= {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # needed on some CPUs for a correct BLAS
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _death_reason(process: subprocess.Popen, limits: Limits) -> str:
    code = process.poll()
    if code is None:
        return "the process stopped answering"
    if code < 0:
        name = signal.Signals(-code).name
        extra = {
            "SIGKILL": " (killed: out of memory or CPU time?)",
            "SIGSEGV": " (segmentation fault)",
            "SIGXCPU": " (CPU time limit)",
            "SIGXFSZ": " (file size limit)",
        }.get(name, "")
        return f"the process died with {name}{extra}"
    return f"the process exited with code {code} (sys.exit, os._exit, or memory limit of {limits.memory_bytes // 2**20} MiB?)"


class _EventReader:
    """Reads newline-delimited JSON events from a pipe with deadlines and a size cap."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)

    def next(self, deadline: float) -> dict | None | str:
        """An event, None at end of stream, or "timeout"."""
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(remaining):
                return "timeout"
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk
            if len(self.buffer) > MAX_EVENT_BYTES:
                return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return None
        return event if isinstance(event, dict) else None


def run_in_child(
    cells: list[dict], cases: list[dict], limits: Limits = DEFAULT_LIMITS
) -> RunOutcome:
    """Run ``cells`` then each case's plan in a fresh child process; restart after a case kills it.

    ``cases`` are wire-ready dicts: ``{"key", "plan", "returns", "inputs": {name: npy base64}}``.
    """
    outcome = RunOutcome()
    start = time.monotonic()
    pending = list(cases)
    restarts = 0
    while True:
        if time.monotonic() - start > limits.total_seconds:
            for case in pending:
                outcome.failures[case["key"]] = (
                    f"not run: the submission used its {limits.total_seconds:.0f} s"
                )
            break
        status, ready = _one_child(cells, pending, limits, outcome, start)
        if outcome.ready is None:
            outcome.ready = ready
        pending = [
            c
            for c in pending
            if c["key"] not in outcome.events and c["key"] not in outcome.failures
        ]
        if status == "cells-failed":
            for case in pending:
                outcome.failures[case["key"]] = outcome.ready["fatal"]
            break
        if not pending:
            break
        restarts += 1
        if restarts > limits.max_restarts:
            for case in pending:
                outcome.failures[case["key"]] = "not run: too many crashes or time-outs before it"
            break
    outcome.seconds = time.monotonic() - start
    return outcome


def _one_child(cells, cases, limits: Limits, outcome: RunOutcome, start: float):
    request = json.dumps(
        {"cells": cells, "cases": cases, "output_limit": limits.output_chars}
    ).encode()
    with tempfile.TemporaryDirectory(prefix="grader-child-") as home:
        process = subprocess.Popen(
            [sys.executable, "-I", str(CHILD_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=home,
            env=_child_environment(home),
            preexec_fn=_set_limits(limits),  # noqa: PLW1509 - rlimits must be set in the child
            start_new_session=True,
        )
        try:
            try:
                process.stdin.write(request)
                process.stdin.close()
            except BrokenPipeError:
                pass
            reader = _EventReader(process.stdout)
            end_of_budget = start + limits.total_seconds
            event = reader.next(min(time.monotonic() + limits.cells_seconds, end_of_budget))
            if not isinstance(event, dict) or event.get("event") != "ready":
                if event == "timeout":
                    why = f"your cells did not finish within {limits.cells_seconds:.0f} s (an endless loop?)"
                else:
                    _kill(process)
                    why = f"{_death_reason(process, limits)} while your cells ran"
                return "cells-failed", {
                    "fatal": why,
                    "cell_errors": [],
                    "stdout": "",
                    "warnings": [],
                }
            ready = event
            for case in cases:
                event = reader.next(min(time.monotonic() + limits.case_seconds, end_of_budget))
                if (
                    isinstance(event, dict)
                    and event.get("event") == "case"
                    and event.get("key") == case["key"]
                ):
                    outcome.events[case["key"]] = event
                    continue
                if event == "timeout":
                    outcome.failures[case["key"]] = (
                        f"timed out after {limits.case_seconds:.0f} s (an endless loop?)"
                    )
                else:
                    _kill(process)
                    outcome.failures[case["key"]] = _death_reason(process, limits)
                return "restart", ready
            return "done", ready
        finally:
            _kill(process)
            process.stdout.close()
