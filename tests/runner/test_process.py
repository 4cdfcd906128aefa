"""The parent side of a run: reading events, reasons for a child's death, restarts."""

from __future__ import annotations

import json
import os
import signal
import time

from grader.runner import process
from grader.runner.process import (
    EOF,
    GARBAGE,
    OVERSIZED,
    TIMEOUT,
    Limits,
    _EventReader,
    _request,
    death_reason,
    run_in_child,
)


def reader_with(*chunks: bytes, close: bool = True) -> _EventReader:
    read_end, write_end = os.pipe()
    for chunk in chunks:
        os.write(write_end, chunk)
    if close:
        os.close(write_end)
    return _EventReader(read_end)


def test_events_split_across_reads_and_several_per_read():
    reader = reader_with(
        b'{"event": "re', b'ady"}\n{"event": "case", "key": "a"}\n{"ev', b'ent": "done"}\n'
    )
    deadline = time.monotonic() + 1
    assert reader.next(deadline) == {"event": "ready"}
    assert reader.next(deadline) == {"event": "case", "key": "a"}
    assert reader.next(deadline) == {"event": "done"}
    assert reader.next(deadline) == EOF


def test_garbage_and_timeouts():
    assert reader_with(b"not json\n").next(time.monotonic() + 1) == GARBAGE
    assert reader_with(b"[1, 2]\n").next(time.monotonic() + 1) == GARBAGE
    assert reader_with(b'{"unfinished": ', close=False).next(time.monotonic() + 0.1) == TIMEOUT


def test_an_oversized_event_is_refused(monkeypatch):
    monkeypatch.setattr(process, "MAX_EVENT_BYTES", 1000)
    assert reader_with(b"x" * 5000).next(time.monotonic() + 1) == OVERSIZED


def test_all_events_of_a_submission_together_are_capped(monkeypatch):
    """Each event under the cap, but together (over every restart) more than a submission may
    send: the reader refuses, and keeps refusing."""
    monkeypatch.setattr(process, "MAX_RUN_BYTES", 1000)
    line = b'{"event": "case", "pad": "' + b"x" * 500 + b'"}\n'
    read_end, write_end = os.pipe()
    reader = _EventReader(read_end)
    os.write(write_end, line)
    assert reader.next(time.monotonic() + 1)["event"] == "case"
    os.write(write_end, line)
    assert reader.next(time.monotonic() + 1) == OVERSIZED
    os.write(write_end, b'{"event": "done"}\n')
    assert reader.next(time.monotonic() + 1) == OVERSIZED
    assert reader.outcome.received > 1000
    os.close(write_end)


def test_death_reasons():
    limits = Limits(total_seconds=10, file_bytes=2**20)
    assert death_reason(-signal.SIGSEGV, limits) == (
        "the process crashed with a segmentation fault (SIGSEGV)"
    )
    assert death_reason(-signal.SIGKILL, limits).startswith("the process was killed (SIGKILL")
    assert death_reason(-signal.SIGXCPU, limits) == (
        "the process used up its CPU time of 15 s (SIGXCPU)"
    )
    assert death_reason(-signal.SIGUSR1, limits) == "the process was ended by SIGUSR1"
    assert death_reason(-200, limits) == "the process was ended by signal 200"
    assert death_reason(3, limits).startswith("the process exited with code 3")
    assert death_reason(None, limits) == "the process stopped answering"


def test_request_reuses_a_cases_encoded_text():
    class Wire(dict):
        parts = (
            b'{"key": "k/0", ',
            memoryview(b'{"plan": [], "returns": {}, "inputs": {}, "marker": 1}')[1:],
        )

    request = json.loads(_request([{"index": 1, "source": "x = 1"}], [Wire(key="k/0")], Limits()))
    assert request == {
        "cells": [{"index": 1, "source": "x = 1"}],
        "output_limit": 20000,
        "frames": True,  # the child sends arrays as binary frames
        "cases": [{"key": "k/0", "plan": [], "returns": {}, "inputs": {}, "marker": 1}],
    }


def test_cases_after_a_crash_run_in_a_new_child():
    cells = [
        {
            "index": 0,
            "source": "import os\ndef f(n):\n    if n == 1:\n        os._exit(9)\n    return n * 2",
        }
    ]
    cases = [
        {
            "key": f"c/{n}",
            "plan": [{"call": "f", "args": [n], "out": "y"}],
            "returns": {"y": {"var": "y"}},
            "inputs": {},
        }
        for n in range(3)
    ]
    outcome = run_in_child(cells, cases, Limits(case_seconds=5))
    assert set(outcome.events) == {"c/0", "c/2"}
    assert outcome.failures == {
        "c/1": "the process exited with code 9 before it finished (os._exit or sys.exit?)"
    }
    assert outcome.restarts == 1


def test_the_budget_for_a_whole_submission():
    cells = [{"index": 0, "source": "import time\ndef f():\n    time.sleep(5)\n    return 1"}]
    cases = [
        {
            "key": f"c/{n}",
            "plan": [{"call": "f", "out": "y"}],
            "returns": {"y": {"var": "y"}},
            "inputs": {},
        }
        for n in range(4)
    ]
    start = time.monotonic()
    outcome = run_in_child(cells, cases, Limits(case_seconds=1, total_seconds=2.5))
    assert time.monotonic() - start < 5
    assert outcome.events == {}
    assert set(outcome.failures.values()) <= {
        "timed out after 1 s (an endless loop?)",
        "not run: the submission used its 2 s",
    }
    assert outcome.failures["c/0"] == "timed out after 1 s (an endless loop?)"
    assert outcome.failures["c/3"] == "not run: the submission used its 2 s"


def framed_event(*frames: bytes, extra: dict | None = None) -> bytes:
    line = {"event": "case", "key": "a", "frames": [len(f) for f in frames], **(extra or {})}
    return json.dumps(line).encode() + b"\n" + b"".join(frames)


def test_frames_after_an_event_are_read_whole_and_split_across_reads():
    first, second = b"\x93NUMPY\n\n" * 3, bytes(range(256)) * 4
    data = framed_event(first, second) + framed_event(b"") + b'{"event": "done"}\n'
    read_end, write_end = os.pipe()
    reader = _EventReader(read_end)
    deadline = time.monotonic() + 1
    for start in range(0, len(data), 7):  # 7-byte pieces: lines and frames split anywhere
        os.write(write_end, data[start : start + 7])
    os.close(write_end)
    assert reader.next(deadline) == {"event": "case", "key": "a", "frames": [first, second]}
    assert reader.next(deadline) == {"event": "case", "key": "a", "frames": [b""]}
    assert reader.next(deadline) == {"event": "done"}
    assert reader.next(deadline) == EOF
    assert reader.outcome.received == len(data)


def test_frames_the_child_never_sends(monkeypatch):
    deadline = time.monotonic() + 1
    for lengths in ("3", [-1], [1.5], ["1"], [True]):
        line = json.dumps({"event": "case", "frames": lengths}).encode() + b"\n"
        assert reader_with(line + b"xxx").next(deadline) == GARBAGE
    monkeypatch.setattr(process, "MAX_FRAMES", 3)
    assert reader_with(framed_event(*[b"x"] * 4)).next(deadline) == GARBAGE
    # frames that never come: a deadline; frames larger than an event may be: refused unread
    soon = time.monotonic() + 0.1
    assert reader_with(framed_event(b"x" * 10)[:-4], close=False).next(soon) == TIMEOUT
    deadline = time.monotonic() + 1
    assert reader_with(framed_event(b"x" * 10)[:-4]).next(deadline) == EOF
    monkeypatch.setattr(process, "MAX_EVENT_BYTES", 1000)
    claimed = json.dumps({"event": "case", "frames": [10**9]}).encode() + b"\n"
    reader = reader_with(claimed, close=False)
    assert reader.next(deadline) == OVERSIZED
    assert reader.outcome.received == len(claimed)
    assert reader_with(framed_event(b"x" * 990)).next(deadline) == OVERSIZED
