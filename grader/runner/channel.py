"""The child's event channel is untrusted: every event is schema-checked and size-capped here.

Student code runs in the same process as :mod:`grader.runner.child`, so it can write anything
to the channel the child writes to: no framing, key or descriptor the child holds can prove an
event genuine. The trusted side therefore treats each event as data from the submission:

* it must have exactly the shape the child sends (:func:`ready_event`, :func:`case_event`);
  anything else is a :class:`Interference`, which costs that submission only (its remaining
  cases fail with "the submission interfered with the grader: ...") and is stored like any
  other result;
* every string in it is cut to a fixed length with a visible marker, every list to a fixed
  number of items, so what the grader keeps of one notebook is bounded whatever the student's
  code returns (a class whose name is 40 MiB long keeps 200 characters of it);
* events that only the trusted side may send (a sandbox that could not start a run) never
  travel on this channel: the fork server reports them on its own control socket, which the
  child never holds (see :mod:`grader.runner.forkserver`).
"""

from __future__ import annotations

from collections.abc import Iterable

from grader.runner.child import MAX_CELL_ERRORS, MAX_SEQUENCE, cut

INTERFERED = "the submission interfered with the grader"

NAME_CHARS = 200  # a type, exception, dtype or output name
MESSAGE_CHARS = 2_000  # an exception message
TRACE_CHARS = 4_000  # the student's part of a traceback
WARNING_CHARS = 500  # one warning
MAX_WARNINGS = 10
DATA_CHARS = 48 * 2**20  # one encoded array or frame (the child sends at most 2**22 elements)
MAX_DEPTH = 2  # sequences inside sequences (the child stops at 2)
KINDS = {"ndarray", "scalar", "sequence", "none", "other", "unsupported"}


class Interference(ValueError):
    """An event that the genuine child never sends: the submission wrote to the channel."""


def _text(value, limit: int, what: str) -> str:
    if not isinstance(value, str):
        raise Interference(f"{what} is not text")
    return cut(value, limit)


def _keys(event: dict, required: Iterable[str], optional: Iterable[str] = (), what: str = ""):
    required, allowed = set(required), set(required) | set(optional)
    if not required <= set(event) or not set(event) <= allowed:
        raise Interference(f"{what or 'an event'} with unexpected fields")


def _warnings(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise Interference("warnings that are not a list of text")
    kept = [cut(w, WARNING_CHARS) for w in value[:MAX_WARNINGS]]
    if len(value) > MAX_WARNINGS:
        kept.append(f"… [{len(value) - MAX_WARNINGS} more warnings cut by the grader]")
    return kept


def _error(value) -> dict:
    if not isinstance(value, dict):
        raise Interference("an error that is not an object")
    _keys(value, ("type", "message", "trace"), ("cell",), what="an error")
    error = {
        "type": _text(value["type"], NAME_CHARS, "an error's type"),
        "message": _text(value["message"], MESSAGE_CHARS, "an error's message"),
        "trace": _text(value["trace"], TRACE_CHARS, "an error's trace"),
    }
    if "cell" in value:
        if type(value["cell"]) is not int:
            raise Interference("a cell number that is not a number")
        error["cell"] = value["cell"]
    return error


def ready_event(event: dict, output_chars: int) -> dict:
    """The checked, capped form of a ``ready`` event (after the student's cells ran)."""
    _keys(event, ("event", "cell_errors", "stdout", "warnings"), what="a ready event")
    errors = event["cell_errors"]
    if not isinstance(errors, list):
        raise Interference("cell errors that are not a list")
    kept = [_error(e) for e in errors[:MAX_CELL_ERRORS]]
    if any("cell" not in e for e in kept):
        raise Interference("a cell error without its cell")
    return {
        "event": "ready",
        "cell_errors": kept,
        "stdout": _text(event["stdout"], output_chars + NAME_CHARS, "stdout"),
        "warnings": _warnings(event["warnings"]),
    }


def value(encoded, depth: int = 0, frames: list | None = None, used: set | None = None) -> dict:
    """The checked, capped form of one returned value (see ``child.encode_value``).

    Its numbers are base64 text, or the number of one of the event's binary ``frames`` (each
    frame may be named once: a frame named a thousand times would be decoded a thousand times).
    """
    frames = [] if frames is None else frames
    used = set() if used is None else used
    if not isinstance(encoded, dict):
        raise Interference("a returned value that is not an object")
    kind = encoded.get("kind")
    if kind not in KINDS:
        raise Interference("a returned value of an unknown kind")
    checked = {"kind": kind, "type": _text(encoded.get("type"), NAME_CHARS, "a type name")}
    if kind in ("none", "unsupported"):
        _keys(encoded, ("kind", "type"), what="a returned value")
    elif kind == "sequence":
        _keys(encoded, ("kind", "type", "length", "items"), what="a returned sequence")
        items, length = encoded["items"], encoded["length"]
        if depth >= MAX_DEPTH or not isinstance(items, list) or type(length) is not int:
            raise Interference("a malformed returned sequence")
        if len(items) > MAX_SEQUENCE or not len(items) <= length:
            raise Interference("a returned sequence longer than the child sends")
        checked["length"] = length
        checked["items"] = [value(item, depth + 1, frames, used) for item in items]
    else:
        _keys(encoded, ("kind", "type", "dtype", "data"), what="a returned value")
        checked["dtype"] = _text(encoded["dtype"], NAME_CHARS, "a dtype")
        data = encoded["data"]
        if type(data) is int:
            if not 0 <= data < len(frames) or data in used:
                raise Interference("returned data naming a frame that is not there, or again")
            used.add(data)
            data = frames[data]
        if not isinstance(data, str | bytes) or len(data) > DATA_CHARS:
            raise Interference("returned data that is not an encoded array")
        checked["data"] = data
    return checked


def case_event(event: dict, key: str, returns: Iterable[str], output_chars: int) -> dict:
    """The checked, capped form of the ``case`` event for the case ``key``."""
    _keys(
        event,
        ("event", "key", "outputs", "error"),
        ("stdout", "warnings", "seconds", "frames"),
        what="a case event",
    )
    frames = event.get("frames", [])
    if not isinstance(frames, list) or not all(isinstance(f, bytes) for f in frames):
        raise Interference("frames that are not binary")  # the reader puts them there
    if event["key"] != key:
        raise Interference("a result for another case than the one running")
    outputs, error = event["outputs"], event["error"]
    if not isinstance(outputs, dict):
        raise Interference("outputs that are not an object")
    if error is None and set(outputs) != set(returns):
        raise Interference("outputs other than the ones asked for")
    if error is not None and outputs:
        raise Interference("both outputs and an error")
    seconds = event.get("seconds", 0.0)
    if type(seconds) not in (int, float):
        raise Interference("a duration that is not a number")
    used: set = set()
    return {
        "event": "case",
        "key": key,
        "outputs": {name: value(v, 0, frames, used) for name, v in outputs.items()},
        "error": None if error is None else _error(error),
        "stdout": _text(event.get("stdout", ""), output_chars + NAME_CHARS, "stdout"),
        "warnings": _warnings(event.get("warnings", [])),
        "seconds": float(seconds),
    }
