"""Running student code in a separate, resource-limited process and collecting what it returns.

The parent (this module) sends cells and call plans to :mod:`grader.runner.child`, reads one
JSON event per case under a deadline, and survives anything the child does: a case that hangs,
floods, or kills the process is marked with the reason, the child is restarted for the remaining
cases, and everything the child started is killed afterwards.

Where the child runs is :mod:`grader.runner.sandbox`'s business: forked from a fork server
inside bubblewrap (the normal case), or, when bubblewrap is unavailable, a fresh interpreter with
rlimits only. Either way only JSON and ``.npy`` bytes come back; judging happens here.
"""

from __future__ import annotations

import fcntl
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

from grader.runner import channel, child, sandbox
from grader.runner.channel import INTERFERED, Interference
from grader.runner.sandbox import FALLBACK, SandboxError

CHILD_SCRIPT = Path(child.__file__).resolve()
MAX_EVENT_BYTES = 64 * 2**20  # one event (an encoded array of the child's largest, and more)
MAX_RUN_BYTES = 256 * 2**20  # everything one submission's processes may send, restarts included
MAX_FRAMES = 2**15  # binary frames after one event (arrays of its returned values and sequences)
ISOLATION = "none (nothing was run)"  # until a run says which isolation it had
TIMEOUT, EOF, GARBAGE, OVERSIZED = "timeout", "eof", "garbage", "oversized"


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission's process."""

    cells_seconds: float = 20.0  # to run all of the student's cells
    case_seconds: float = 10.0  # per case
    total_seconds: float = 90.0  # per submission, restarts included
    memory_bytes: int = 2 * 2**30  # address space of each process
    output_chars: int = 20_000  # captured stdout per cell batch / case
    open_files: int = 64
    file_bytes: int = 16 * 2**20  # largest file a run may write
    max_restarts: int = 8
    processes: int = 32  # processes and threads of one run (sandbox only)
    tmp_bytes: int = 64 * 2**20  # its private /tmp and /dev/shm (sandbox only)
    student_seconds: float = 300.0  # all of one student's notebooks in a batch (grader.budget)
    batch_seconds: float = 3600.0  # no notebook of a batch starts after this (grader.budget)

    def for_child(self, run_mode: str) -> dict:
        """What the fork server applies to a run."""
        # in user-namespace mode the count also holds the sandbox's own few processes
        extra = 0 if run_mode == "uid" else 4
        return {
            "memory_bytes": self.memory_bytes,
            "open_files": self.open_files,
            "file_bytes": self.file_bytes,
            "processes": self.processes + extra,
            "tmp_bytes": self.tmp_bytes,
            "cpu_seconds": int(self.total_seconds) + 5,
        }


DEFAULT_LIMITS = Limits()


@dataclass
class RunOutcome:
    ready: dict | None = None  # the child's "ready" event: cell errors, stdout, warnings
    events: dict[str, dict] = field(default_factory=dict)  # case key -> "case" event
    failures: dict[str, str] = field(default_factory=dict)  # case key -> why it has no event
    isolation: str = ISOLATION
    seconds: float = 0.0
    restarts: int = 0
    received: int = 0  # bytes read from the child's channel, all attempts together
    interference: str = ""  # why the run was ended for interfering with the grader, if it was


def death_reason(code: int | None, limits: Limits) -> str:
    """Why a child ended, from its exit code (negative: the signal that ended it)."""
    if code is None:
        return "the process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return {
            "SIGKILL": "the process was killed (SIGKILL: out of memory or CPU time)",
            "SIGSEGV": "the process crashed with a segmentation fault (SIGSEGV)",
            "SIGBUS": "the process crashed with a bus error (SIGBUS)",
            "SIGABRT": "the process aborted (SIGABRT)",
            "SIGFPE": "the process crashed with a floating-point exception (SIGFPE)",
            "SIGILL": "the process crashed with an illegal instruction (SIGILL)",
            "SIGXCPU": f"the process used up its CPU time of {int(limits.total_seconds) + 5} s (SIGXCPU)",
            "SIGXFSZ": f"the process wrote a file larger than {limits.file_bytes // 2**20} MiB (SIGXFSZ)",
        }.get(name, f"the process was ended by {name}")
    return f"the process exited with code {code} before it finished (os._exit or sys.exit?)"


class _EventReader:
    """Reads newline-delimited JSON events from a pipe with deadlines and size caps.

    An event whose line lists ``"frames": [n, ...]`` is followed by that many bytes of binary
    frames (see :mod:`grader.runner.child`); the event is returned with ``"frames"`` holding
    them as ``bytes``, for :mod:`grader.runner.channel` to check. ``outcome.received`` counts
    every byte read for the submission; past ``MAX_RUN_BYTES`` (or one event, line and frames,
    past ``MAX_EVENT_BYTES``) the reader answers OVERSIZED and reads no more.
    """

    def __init__(self, fd: int, outcome: RunOutcome | None = None):
        self.fd = fd
        self.outcome = outcome if outcome is not None else RunOutcome()
        self.chunks: list[bytes] = []  # the unfinished line, in pieces (no quadratic copying)
        self.size = 0
        self.framed: tuple[dict, list[int], int] | None = None  # an event awaiting its frames
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)
        try:  # fewer, larger reads for the multi-megabyte events of big arrays
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        except (OSError, AttributeError):
            pass

    def next(self, deadline: float) -> dict | str:
        """An event, or TIMEOUT, EOF (the child is gone), GARBAGE (not an event), OVERSIZED."""
        if self.framed is None:
            while not self.chunks or b"\n" not in self.chunks[-1]:
                status = self._read(deadline)
                if status:
                    return status
            buffer = b"".join(self.chunks)
            line, rest = buffer.split(b"\n", 1)
            self.chunks, self.size = ([rest], len(rest)) if rest else ([], 0)
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                return GARBAGE
            if not isinstance(event, dict):
                return GARBAGE
            if "frames" not in event:
                return event
            lengths = event["frames"]
            if (
                not isinstance(lengths, list)
                or len(lengths) > MAX_FRAMES
                or not all(type(n) is int and n >= 0 for n in lengths)
            ):
                return GARBAGE
            if len(line) + sum(lengths) > MAX_EVENT_BYTES:
                self.chunks, self.size = [], 0
                return OVERSIZED
            self.framed = (event, lengths, len(line))
        event, lengths, line_size = self.framed
        needed = sum(lengths)
        while self.size < needed:
            # the line is read and counted; read no further than the frames (the cap holds)
            status = self._read(deadline, line_size, needed - self.size)
            if status:
                return status
        buffer = memoryview(b"".join(self.chunks))
        frames, offset = [], 0
        for n in lengths:
            frames.append(bytes(buffer[offset : offset + n]))
            offset += n
        rest = bytes(buffer[needed:])
        self.chunks, self.size = ([rest], len(rest)) if rest else ([], 0)
        self.framed = None
        event["frames"] = frames
        return event

    def _read(self, deadline: float, already: int = 0, most: int = 1 << 20) -> str | None:
        """One read (of at most ``most`` bytes) into the buffer; TIMEOUT, EOF or OVERSIZED when
        it cannot be done."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self.selector.select(remaining):
            return TIMEOUT
        chunk = os.read(self.fd, min(most, 1 << 20))
        if not chunk:
            return EOF
        self.chunks.append(chunk)
        self.size += len(chunk)
        self.outcome.received += len(chunk)
        if already + self.size > MAX_EVENT_BYTES or self.outcome.received > MAX_RUN_BYTES:
            self.chunks, self.size, self.framed = [], 0, None
            return OVERSIZED
        return None

    def close(self) -> None:
        self.selector.close()


# --------------------------------------------------------------------------- where a run happens
class _Attempt:
    """One child process: events on ``fd``; :meth:`finish` ends it and returns its exit code."""

    fd: int

    def __init__(self) -> None:
        self.done = False
        self.code: int | None = None
        self.setup_error: str | None = None  # the sandbox could not prepare the run (trusted)

    def finish(self, kill: bool) -> int | None:
        if not self.done:
            self.done = True
            self.code = self._finish(kill)
        return self.code

    def _finish(self, kill: bool) -> int | None:
        raise NotImplementedError


class _ForkedAttempt(_Attempt):
    def __init__(self, runner: _Runner, handle: sandbox.RunHandle):
        super().__init__()
        self.runner, self.handle, self.fd = runner, handle, handle.fd

    def _finish(self, kill: bool) -> int | None:
        server = self.runner.server
        if server is None:
            return None
        try:
            code = server.end(self.handle, kill=kill)
        except SandboxError:
            self.runner.discard()
            return None
        self.setup_error = self.handle.setup_error
        return code


class _SubprocessAttempt(_Attempt):
    """The fallback: a fresh interpreter with rlimits (no namespaces, no uid change)."""

    def __init__(self, request: bytes, limits: Limits):
        super().__init__()
        self.home = tempfile.TemporaryDirectory(prefix="grader-child-")
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(CHILD_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.home.name,
            env=_child_environment(self.home.name),
            preexec_fn=_set_limits(limits),  # noqa: PLW1509 - rlimits must be set in the child
            start_new_session=True,
        )
        self.fd = self.process.stdout.fileno()
        try:
            self.process.stdin.write(request)
            self.process.stdin.close()
        except BrokenPipeError:
            pass

    def _finish(self, kill: bool) -> int | None:
        if not kill:
            try:
                self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        code = self.process.poll()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.process.stdout.close()
        self.home.cleanup()
        return code if code is not None else None


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
    env = dict(sandbox.ENVIRONMENT) | {"HOME": home, "TMPDIR": home}
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # needed on some CPUs for a correct BLAS
        if key in os.environ:
            env[key] = os.environ[key]
    return env


class _Runner:
    """Starts the attempts of one submission: on one fork server, or as fresh interpreters."""

    def __init__(self, limits: Limits, strict: bool = True):
        self.limits = limits
        self.pool = sandbox.pool(strict)
        self.server: sandbox.ForkServer | None = None
        self.isolation = FALLBACK

    def start(self, request: bytes) -> _Attempt:
        if self.pool is None:
            self.isolation = FALLBACK
            return _SubprocessAttempt(request, self.limits)
        for attempt in range(2):  # a broken server is replaced once
            try:
                if self.server is None:
                    self.server = self.pool.acquire()
                handle = self.server.start(request, self.limits.for_child(self.server.mode))
            except (SandboxError, sandbox.SandboxUnavailable) as exc:
                self.discard()
                if attempt == 1:
                    raise SandboxError(str(exc)) from None
                continue
            self.isolation = self.server.isolation
            return _ForkedAttempt(self, handle)
        raise AssertionError("unreachable")

    def discard(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def close(self) -> None:
        if self.server is not None and self.pool is not None:
            self.pool.release(self.server)
            self.server = None


# --------------------------------------------------------------------------- one submission
def run_in_child(
    cells: list[dict], cases: list[dict], limits: Limits = DEFAULT_LIMITS, *, strict: bool = True
) -> RunOutcome:
    """Run ``cells`` then each case's plan in a fresh child; restart after a case kills it.

    ``cases`` are wire-ready dicts: ``{"key", "plan", "returns", "inputs": {name: npy base64}}``.
    ``strict=False`` (a student's self-check) uses the sandbox when it can, silently.
    Everything the child sends is checked and capped by :mod:`grader.runner.channel`; a child
    that sends what the genuine child never does has interfered: its remaining cases fail with
    that reason and it is not restarted. Raises :class:`SandboxError` only when the sandbox
    itself fails (reported by the fork server, never by the child), and
    :class:`~grader.runner.sandbox.SandboxUnavailable` when ``strict`` and the sandbox is
    required but unavailable.
    """
    outcome = RunOutcome()
    start = time.monotonic()
    pending = list(cases)
    runner = _Runner(limits, strict)
    try:
        while True:
            if time.monotonic() - start > limits.total_seconds:
                for case in pending:
                    outcome.failures[case["key"]] = (
                        f"not run: the submission used its {limits.total_seconds:.0f} s"
                    )
                break
            status, ready = _one_child(runner, cells, pending, limits, outcome, start)
            outcome.isolation = runner.isolation
            if outcome.ready is None or (outcome.ready.get("fatal") and not ready.get("fatal")):
                outcome.ready = ready
            pending = [
                c
                for c in pending
                if c["key"] not in outcome.events and c["key"] not in outcome.failures
            ]
            if status == "interfered":
                outcome.interference = ready["fatal"]
            if outcome.received > MAX_RUN_BYTES:  # every further read would be refused
                status, ready = "cells-failed", _fatal(f"not run: {_oversized()}")
            if status in ("cells-failed", "interfered"):
                # this attempt's reason: an earlier attempt's cells may have run fine
                why = ready.get("fatal") or "not run: the cells failed"
                for case in pending:
                    outcome.failures[case["key"]] = why
                break
            if not pending:
                break
            outcome.restarts += 1
            if outcome.restarts > limits.max_restarts:
                for case in pending:
                    outcome.failures[case["key"]] = (
                        "not run: too many crashes or time-outs before it"
                    )
                break
    finally:
        runner.close()
    outcome.seconds = time.monotonic() - start
    return outcome


def _request(cells: list[dict], cases: list[dict], limits: Limits) -> bytes:
    """The child's request; a case that carries its JSON text (``case.parts``, bytes that
    joined give it) is not re-encoded, and the request is joined once."""
    head = json.dumps({"cells": cells, "output_limit": limits.output_chars, "frames": True})
    parts = [head[:-1].encode(), b', "cases": [']
    for i, case in enumerate(cases):
        if i:
            parts.append(b",")
        parts += getattr(case, "parts", None) or [json.dumps(case).encode()]
    parts.append(b"]}")
    return b"".join(parts)


def _fatal(why: str) -> dict:
    return {"fatal": why, "cell_errors": [], "stdout": "", "warnings": []}


def _oversized() -> str:
    return (
        f"the process sent more than {MAX_EVENT_BYTES // 2**20} MiB in one result, or "
        f"{MAX_RUN_BYTES // 2**20} MiB in all (results are capped)"
    )


def _one_child(runner: _Runner, cells, cases, limits: Limits, outcome: RunOutcome, start: float):
    """One attempt: ``("done"|"restart"|"cells-failed"|"interfered", ready or fatal)``."""
    attempt = runner.start(_request(cells, cases, limits))
    reader = _EventReader(attempt.fd, outcome)
    end_of_budget = start + limits.total_seconds
    try:
        event = reader.next(min(time.monotonic() + limits.cells_seconds, end_of_budget))
        if isinstance(event, dict) or event == GARBAGE:
            try:
                if event == GARBAGE or event.get("event") != "ready":
                    raise Interference(
                        "while the cells ran, it sent something that is not a result"
                    )
                ready = channel.ready_event(event, limits.output_chars)
            except Interference as exc:
                attempt.finish(kill=True)
                return "interfered", _fatal(f"{INTERFERED}: {exc}")
        else:
            if event == TIMEOUT:
                attempt.finish(kill=True)
                if time.monotonic() >= end_of_budget:
                    why = f"not run: the submission used its {limits.total_seconds:.0f} s"
                else:
                    why = f"your cells did not finish within {limits.cells_seconds:.0f} s (an endless loop?)"
            elif event == EOF:
                why = f"{death_reason(attempt.finish(kill=False), limits)} while your cells ran"
                if attempt.setup_error is not None:  # the fork server says so, never the child
                    runner.discard()
                    raise SandboxError(f"the sandbox could not start a run: {attempt.setup_error}")
            else:
                attempt.finish(kill=True)
                why = f"while your cells ran, {_oversized()}"
            return "cells-failed", _fatal(why)
        for case in cases:
            key = case["key"]
            event = reader.next(min(time.monotonic() + limits.case_seconds, end_of_budget))
            if isinstance(event, dict) or event == GARBAGE:
                try:
                    if event == GARBAGE or event.get("event") != "case":
                        raise Interference("it sent something that is not a case's result")
                    outcome.events[key] = channel.case_event(
                        event, key, case["returns"], limits.output_chars
                    )
                    continue
                except Interference as exc:
                    attempt.finish(kill=True)
                    return "interfered", {**ready, "fatal": f"{INTERFERED}: {exc}"}
            if event == TIMEOUT:
                attempt.finish(kill=True)
                outcome.failures[key] = (
                    f"timed out after {limits.case_seconds:.0f} s (an endless loop?)"
                )
            elif event == EOF:
                outcome.failures[key] = death_reason(attempt.finish(kill=False), limits)
            else:
                attempt.finish(kill=True)
                outcome.failures[key] = _oversized()
            return "restart", ready
        return "done", ready
    finally:
        reader.close()
        attempt.finish(kill=True)
