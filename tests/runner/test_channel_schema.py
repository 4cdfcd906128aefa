"""The child's channel is untrusted: the schema and caps of :mod:`grader.runner.channel`, and
the fork server's own report of a run it could not prepare."""

from __future__ import annotations

import os
import select

import numpy as np
import pytest

from grader.runner import channel, sandbox
from grader.runner.channel import Interference, case_event, cut, ready_event
from grader.runner.child import encode_value
from grader.runner.process import DEFAULT_LIMITS

CUT = "more characters cut by the grader"


def test_cut_keeps_short_text_and_marks_what_it_cuts():
    assert cut("abc", 3) == "abc"
    assert cut("abcdef", 2) == "ab… [4 more characters cut by the grader]"


def genuine_case(outputs: dict, **extra) -> dict:
    return {"event": "case", "key": "k/0", "outputs": outputs, "error": None, **extra}


def test_a_genuine_case_event_passes_unchanged_in_substance():
    outputs = {
        "out": encode_value(np.arange(6.0).reshape(2, 3)),
        "cache": encode_value((np.ones(2), [1.0, None])),
    }
    event = genuine_case(outputs, stdout="hi", warnings=["UserWarning: w"], seconds=0.1)
    checked = case_event(event, "k/0", ["out", "cache"], 100)
    assert checked == {**event, "seconds": 0.1}


def test_every_string_is_cut_and_every_list_is_bounded():
    huge = "N" * (2**20)
    value = {"kind": "unsupported", "type": huge}
    event = genuine_case({"out": value}, stdout=huge, warnings=[huge] * 1000, seconds=1)
    checked = case_event(event, "k/0", ["out"], 100)
    assert len(checked["outputs"]["out"]["type"]) < channel.NAME_CHARS + 60
    assert CUT in checked["outputs"]["out"]["type"] and CUT in checked["stdout"]
    assert len(checked["warnings"]) == channel.MAX_WARNINGS + 1
    error = {"type": huge, "message": huge, "trace": huge}
    checked = case_event({**genuine_case({}), "error": error}, "k/0", ["out"], 100)
    assert max(map(len, checked["error"].values())) < channel.TRACE_CHARS + 60
    ready = {"event": "ready", "cell_errors": [{"cell": 1, **error}] * 500}
    checked = ready_event({**ready, "stdout": "", "warnings": []}, 100)
    assert len(checked["cell_errors"]) == channel.MAX_CELL_ERRORS


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"event": "ready", "cell_errors": ["x"], "stdout": "", "warnings": []}, "not an object"),
        ({"event": "ready", "cell_errors": [], "stdout": 3, "warnings": []}, "stdout is not"),
        ({"event": "ready", "cell_errors": [], "stdout": "", "warnings": [1]}, "warnings"),
        (
            {"event": "ready", "cell_errors": [], "stdout": "", "warnings": [], "fatal": "x"},
            "unexpected fields",
        ),
        (
            {
                "event": "ready",
                "cell_errors": [{"type": "E", "message": "", "trace": ""}],
                "stdout": "",
                "warnings": [],
            },
            "without its cell",
        ),
    ],
)
def test_ready_events_the_child_never_sends(event, why):
    with pytest.raises(Interference, match=why):
        ready_event(event, 100)


def deeper(sequence: dict) -> dict:
    """A sequence one level deeper than the child ever nests."""
    return {"kind": "sequence", "type": "list", "length": 1, "items": [sequence]}


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (genuine_case({"out": {"kind": "none", "type": "NoneType"}}, score=10), "unexpected"),
        ({**genuine_case({}), "key": "k/1"}, "another case"),
        (genuine_case({}), "other than the ones asked for"),
        (genuine_case({"out": {"kind": "pickle", "type": "x"}}), "unknown kind"),
        (genuine_case({"out": {"kind": "ndarray", "type": "x", "dtype": "f8"}}), "unexpected"),
        (genuine_case({"out": deeper(encode_value([[1.0]]))}), "malformed returned sequence"),
        (
            genuine_case(
                {"out": {"kind": "sequence", "type": "list", "length": 1, "items": [None] * 2}}
            ),
            "longer than",
        ),
        (
            {**genuine_case({}), "error": {"type": "E"}},
            "unexpected fields",
        ),
        (genuine_case({"out": encode_value(1.0)}, seconds="1"), "duration"),
    ],
)
def test_case_events_the_child_never_sends(event, why):
    with pytest.raises(Interference, match=why):
        case_event(event, "k/0", ["out"], 100)


def test_a_run_the_sandbox_cannot_prepare_is_reported_by_the_server_not_the_child():
    """A trusted event (the run could not be prepared) comes on the control socket; the child's
    pipe stays empty, so nothing on it can ever be taken for the sandbox speaking."""
    shared = sandbox.pool()
    if shared is None:
        pytest.skip("the sandbox is unavailable here")
    server = shared.acquire()
    try:
        limits = {**DEFAULT_LIMITS.for_child(server.mode), "tmp_bytes": "not a size"}
        handle = server.start(b'{"cells": [], "cases": []}', limits)
        assert select.select([handle.fd], [], [], 10)[0]
        assert os.read(handle.fd, 1 << 16) == b""  # nothing on the child's channel
        assert server.end(handle, kill=False) == 126
        assert handle.setup_error.startswith("ValueError: invalid literal for int()")
        # and the server goes on: a normal run after it
        handle = server.start(b'{"cells": [], "cases": []}', DEFAULT_LIMITS.for_child(server.mode))
        assert b'"event": "ready"' in os.read(handle.fd, 1 << 16)
        server.end(handle, kill=True)
        assert handle.setup_error is None
    finally:
        shared.release(server)


def test_frames_are_named_once_each_and_must_exist():
    """A frame named twice would be decoded twice (a thousand names, a thousand copies): refused,
    like a number naming no frame, or frames that are not bytes."""
    frame = bytes(64)
    value = {"kind": "ndarray", "type": "ndarray", "dtype": "float64", "data": 0}
    twice = {"kind": "sequence", "type": "list", "length": 2, "items": [value, value]}
    base = {"event": "case", "key": "k", "error": None}
    good = case_event({**base, "outputs": {"y": value}, "frames": [frame]}, "k", ["y"], 100)
    assert good["outputs"]["y"]["data"] == frame
    for outputs, frames in [
        ({"y": twice}, [frame]),
        ({"y": value}, []),
        ({"y": {**value, "data": 1}}, [frame]),
        ({"y": {**value, "data": -1}}, [frame]),
        ({"y": value}, ["text"]),
    ]:
        with pytest.raises(Interference):
            case_event({**base, "outputs": outputs, "frames": frames}, "k", ["y"], 100)
