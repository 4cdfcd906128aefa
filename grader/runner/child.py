"""The untrusted side: run a student's cells, call their functions, send back arrays.

This module runs in a separate, resource-limited process: forked inside the sandbox by
:mod:`grader.runner.forkserver` (:func:`run_with_fds`), or as a script
(``python -I child.py``) when no sandbox is available. It is also imported by the in-notebook
runner, which runs the same call plans on the live functions of the kernel. It therefore imports nothing but the
standard library and NumPy, and it never judges anything: it only returns values.

Wire format (no pickle anywhere): the parent writes one JSON request (to stdin, or into a
memfd for a forked child).
The child answers with one JSON line per event on a private file descriptor. Arrays travel as
``.npy`` bytes (numeric dtypes only, never pickled): base64 text inside the JSON by default, or,
when the request says ``"frames": true`` (the batch grader), as binary frames right after the
event's JSON line, which then lists their lengths and names each array by its frame number::

    {"event": "case", ..., "outputs": {"out": {"kind": "ndarray", ..., "data": 0}},
     "frames": [240128]}\n<240128 bytes of .npy>

(no base64 and no JSON escaping of megabytes of data on either side; the parent bounds the
frames like the line, see :mod:`grader.runner.process` and :mod:`grader.runner.channel`).

Request::

    {"cells": [{"index": 3, "source": "def f(x): ..."}, ...],
     "cases": [{"key": "check/0", "plan": [...], "returns": {...}, "inputs": {name: npy}}, ...],
     "output_limit": 20000, "frames": true}

Events::

    {"event": "ready", "cell_errors": [...], "stdout": "..."}
    {"event": "case", "key": "check/0", "outputs": {...}, "error": null | {...}, ...}
    {"event": "done"}

A plan is a list of steps run in order against the student's namespace:

* ``{"call": "f", "args": [expr, ...], "kwargs": {k: expr}, "out": "name" | ["a", "b"]}``
* ``{"let": "name", "value": expr}``

and an expression is a JSON literal, or one of ``{"in": name}`` (a fresh copy of an input
array), ``{"var": name}``, ``{"rng": seed}`` (a new ``np.random.Generator``),
``{"dict": {k: expr}}``, ``{"list": [expr, ...]}``, ``{"item": [var, key]}``.

Each value named in ``returns`` is encoded (copied) the moment the last step that binds it or is
given it returns (:func:`capture_points`), so later student code cannot rewrite it in place.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import json
import linecache
import math
import os
import re
import sys
import time
import traceback
import warnings

import numpy as np

MAX_SEQUENCE = 64  # a returned list longer than this is cut (and reported as such)
MAX_ELEMENTS = 2**22  # a returned array larger than this is not sent back (no check needs it)
MAX_CELL_ERRORS = 20
NAME_CHARS = 200  # a type name sent back is cut to this (a class name may be megabytes long)
TEXT_CHARS = 500  # an exception message or a warning


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how much was cut.

    The parent cuts everything it receives again (this process is the student's); cutting here
    as well keeps an honest event small."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters cut by the grader]"


class PlanError(Exception):
    """The student's function could not be called as the plan says (missing, wrong arity)."""


# --------------------------------------------------------------------------- arrays on the wire
def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes ``np.save(..., allow_pickle=False)`` writes (format 1.0).

    Plain numeric arrays get their header written here (``np.save`` formats each header through
    several Python calls, which dominated the child's time on many small arrays); anything else
    goes through ``np.save``."""
    dtype = array.dtype
    if dtype.kind in "biuf" and dtype.fields is None and array.ndim <= 32:
        fortran = array.flags.f_contiguous and not array.flags.c_contiguous
        header = (
            f"{{'descr': {dtype.str!r}, 'fortran_order': {fortran}, 'shape': {array.shape!r}, }}"
        )
        if array.ndim:  # np.save leaves room to grow the first axis in place (21 digits)
            header += " " * (21 - len(repr(array.shape[-1 if fortran else 0])))
        padding = 64 - (10 + len(header) + 1) % 64
        size = len(header) + padding + 1
        if size < 2**16:
            head = b"\x93NUMPY\x01\x00" + size.to_bytes(2, "little")
            text = (header + " " * padding + "\n").encode("latin1")
            return head + text + array.tobytes(order="F" if fortran else "C")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def encode_array(array: np.ndarray) -> str:
    """``array`` as base64 text of its ``.npy`` bytes (:func:`npy_bytes`)."""
    return base64.b64encode(npy_bytes(array)).decode("ascii")


_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=][biuf][1-8])', 'fortran_order': (True|False), "
    rb"'shape': \((|\d+,|\d+(?:, \d+)+)\), \}\s*\n"
)


def decode_array(text: str | bytes) -> np.ndarray:
    """Inverse of :func:`encode_array` (base64 text) and of :func:`npy_bytes` (bytes of a
    frame). The headers ``np.save`` writes for plain numeric arrays are parsed directly
    (``np.load`` compiles each header with ``ast``); anything else, or anything inconsistent,
    goes through ``np.load``."""
    data = base64.b64decode(text) if isinstance(text, str) else bytes(text)
    if data[:8] == b"\x93NUMPY\x01\x00" and len(data) >= 10:
        size = int.from_bytes(data[8:10], "little")
        match = _NPY_HEADER.fullmatch(data[10 : 10 + size])
        if match:
            dtype = np.dtype(match[1].decode())
            shape = tuple(int(n) for n in match[3].replace(b" ", b"").split(b",") if n)
            count = math.prod(shape)  # np.prod costs ~50 µs a call: thousands per notebook
            if len(data) - 10 - size == count * dtype.itemsize:
                order = "F" if match[2] == b"True" else "C"
                flat = np.frombuffer(data, dtype=dtype, count=count, offset=10 + size)
                return flat.reshape(shape, order=order).copy(order="K")
    return np.load(io.BytesIO(data), allow_pickle=False)


_DTYPE_NAMES: dict = {}  # str(dtype) runs Python code each time; the numeric dtypes are few


def _dtype_name(dtype: np.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype)
    return name


def encode_value(value, depth: int = 0, array=encode_array) -> dict:
    """Describe a returned Python value as JSON: its kind, type name and numeric content.

    Only plain numeric data leaves the child. An ndarray subclass is reduced to a base ndarray
    first, so whatever comparisons it overrides never reach the parent. ``array`` encodes the
    numbers (:func:`encode_array`: base64 text; :func:`npy_bytes` for binary frames).
    """
    type_name = cut(type(value).__name__, NAME_CHARS)
    if value is None:
        return {"kind": "none", "type": "NoneType"}
    if isinstance(value, np.ndarray):
        if value.size > MAX_ELEMENTS:
            return {"kind": "unsupported", "type": f"ndarray of {value.size} elements (too large)"}
        base = np.array(value, copy=True, subok=False)
        if base.dtype.kind not in "biuf":
            return {"kind": "unsupported", "type": f"ndarray of {base.dtype}"}
        return {
            "kind": "ndarray",
            "type": type_name,
            "dtype": _dtype_name(base.dtype),
            "data": array(base),
        }
    if isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating):
        scalar = np.array(value)
        return {
            "kind": "scalar",
            "type": type_name,
            "dtype": _dtype_name(scalar.dtype),
            "data": array(scalar),
        }
    if isinstance(value, list | tuple) and depth < 2:
        items = [encode_value(v, depth + 1, array) for v in list(value)[:MAX_SEQUENCE]]
        return {"kind": "sequence", "type": type_name, "length": len(value), "items": items}
    if isinstance(value, dict):
        return {"kind": "unsupported", "type": "dict"}
    try:
        numbers = np.array(value, dtype=np.float64, copy=True, subok=False)
    except Exception:
        return {"kind": "unsupported", "type": type_name}
    if numbers.size > MAX_ELEMENTS:
        return {
            "kind": "unsupported",
            "type": f"{type_name} of {numbers.size} elements (too large)",
        }
    return {"kind": "other", "type": type_name, "dtype": "float64", "data": array(numbers)}


# --------------------------------------------------------------------------- plans
def _evaluate(expr, inputs: dict, variables: dict):
    if isinstance(expr, dict):
        if "in" in expr:
            return np.array(inputs[expr["in"]], copy=True)
        if "var" in expr:
            return variables[expr["var"]]
        if "rng" in expr:
            return np.random.default_rng(int(expr["rng"]))
        if "dict" in expr:
            return {k: _evaluate(v, inputs, variables) for k, v in expr["dict"].items()}
        if "list" in expr:
            return [_evaluate(v, inputs, variables) for v in expr["list"]]
        if "item" in expr:
            name, key = expr["item"]
            container = variables[name]
            return container.get(key) if isinstance(container, dict) else None
        raise ValueError(f"unknown expression {expr!r}")
    return expr


def _reads(expr) -> set[str]:
    """The plan variables an expression reads."""
    if not isinstance(expr, dict):
        return set()
    if "var" in expr:
        return {expr["var"]}
    if "item" in expr:
        return {expr["item"][0]}
    parts = expr.get("dict", {}).values() if "dict" in expr else expr.get("list", [])
    return set().union(*(_reads(v) for v in parts))


def capture_points(plan: list, returns: dict) -> dict[str, int]:
    """After which step each returned value is copied (copy-on-return).

    A value is taken right after the last step that binds it or is *given* it (directly or
    inside a ``let`` that contains it), never later: a later call that only holds an alias (a
    backward pass holding the forward's cache) cannot change what is judged.
    """
    contains: dict[str, set[str]] = {}

    def closed(names: set[str]) -> set[str]:
        return set().union(names, *(contains.get(n, set()) for n in names))

    touched = []
    for step in plan:
        if "let" in step:
            contains[step["let"]] = closed(_reads(step["value"]))
            touched.append({step["let"]})
            continue
        arguments = [*step.get("args", []), *step.get("kwargs", {}).values()]
        out = step.get("out")
        bound = set(out) if isinstance(out, list) else {out} if out else set()
        touched.append(closed(set().union(*(_reads(a) for a in arguments))) | bound)
    points = {}
    for key, expr in returns.items():  # no max(): student code may have replaced the builtins
        wanted, points[key] = closed(_reads(expr)), len(plan) - 1
        for index, names in enumerate(touched):
            if names & wanted:
                points[key] = index
    return points


def run_plan(namespace: dict, plan: list, returns: dict, inputs: dict, encode=encode_value) -> dict:
    """Run one case's plan against ``namespace``; return the values named in ``returns``, each
    passed through ``encode`` (a copy of plain numbers) at its :func:`capture_points` step."""
    variables: dict = {}
    points = capture_points(plan, returns)
    taken: dict = {}

    def take(index: int) -> None:
        for key, expr in returns.items():
            if points[key] == index:
                taken[key] = encode(_evaluate(expr, inputs, variables))

    for index, step in enumerate(plan):
        if "let" in step:
            variables[step["let"]] = _evaluate(step["value"], inputs, variables)
            take(index)
            continue
        name = step["call"]
        function = namespace.get(name)
        if function is None:
            raise PlanError(f"`{name}` is not defined in the notebook (did you run its cell?)")
        if not callable(function):
            raise PlanError(f"`{name}` is a {type(function).__name__}, not a function")
        args = [_evaluate(a, inputs, variables) for a in step.get("args", [])]
        kwargs = {k: _evaluate(v, inputs, variables) for k, v in step.get("kwargs", {}).items()}
        result = function(*args, **kwargs)
        out = step.get("out")
        if isinstance(out, list):
            if not isinstance(result, tuple | list) or len(result) != len(out):
                got = (
                    f"{len(result)} values"
                    if isinstance(result, tuple | list)
                    else f"a {type(result).__name__}"
                )
                raise PlanError(
                    f"`{name}` should return {len(out)} values ({', '.join(out)}), but returned {got}"
                )
            variables.update(zip(out, result, strict=True))
        elif out:
            variables[out] = result
        take(index)
    take(-1)  # an empty plan
    return {key: taken[key] for key in returns}


def describe_exception(exc: BaseException, student_files: tuple[str, ...] = ("<cell",)) -> dict:
    """Type, message and the student's part of the traceback (never our frames)."""
    frames = [
        f"  {f.filename}, line {f.lineno}, in {f.name}\n    {(f.line or '').strip()}"
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.startswith(student_files)
    ]
    message = cut(str(exc), TEXT_CHARS)
    trace = cut("\n".join(frames[-5:]), 8 * TEXT_CHARS)
    return {"type": cut(type(exc).__name__, NAME_CHARS), "message": message, "trace": trace}


@contextlib.contextmanager
def captured(limit: int):
    """Capture stdout/stderr text and warnings of student code (warnings never cost points)."""
    out = _CappedText(limit)
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        warnings.simplefilter("always")
        yield out, caught


class _CappedText(io.TextIOBase):
    def __init__(self, limit: int):
        self.limit, self.parts, self.size, self.dropped = limit, [], 0, 0

    def write(self, text):
        text = str(text)
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        tail = f"\n… ({self.dropped} more characters not shown)" if self.dropped else ""
        return "".join(self.parts) + tail


def warning_texts(caught) -> list[str]:
    seen = []
    for w in caught:
        text = cut(f"{cut(w.category.__name__, NAME_CHARS)}: {w.message}", TEXT_CHARS)
        if text not in seen:
            seen.append(text)
    return seen[:10]


def run_case(namespace: dict, case: dict, inputs: dict, limit: int, encode=encode_value) -> dict:
    """Run one case and describe its outputs (or the error) as an event; each returned value
    is described by ``encode`` (see :func:`run_plan`)."""
    start = time.perf_counter()
    event: dict = {"event": "case", "key": case["key"], "outputs": {}, "error": None}
    with captured(limit) as (out, caught), np.errstate(all="warn"):
        try:
            event["outputs"] = run_plan(
                namespace, case["plan"], case["returns"], inputs, encode=encode
            )
        except PlanError as exc:
            event["error"] = {
                "type": "PlanError",
                "message": cut(str(exc), TEXT_CHARS),
                "trace": "",
            }
        except RecursionError as exc:
            event["error"] = describe_exception(exc)
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything, even SystemExit
            event["error"] = describe_exception(exc)
    event["stdout"] = out.getvalue()
    event["warnings"] = warning_texts(caught)
    event["seconds"] = time.perf_counter() - start
    return event


def _statements(source: str, filename: str):
    """Compile a cell statement by statement, so one failing statement (say, an import of a
    package the grader does not provide) does not keep the function definitions after it from
    running. A cell that does not parse is one statement: its SyntaxError is the error."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        yield lambda: compile(source, filename, "exec")
        return
    for node in tree.body:
        yield lambda node=node: compile(ast.Module([node], type_ignores=[]), filename, "exec")


def execute_cells(namespace: dict, cells: list, limit: int) -> dict:
    """Execute the selected cells in order; a failing statement is recorded and the rest still run."""
    errors = []
    with captured(limit) as (out, caught), np.errstate(all="warn"):
        for cell in cells:
            filename = f"<cell {cell['index']}>"
            # so that tracebacks can quote the student's line
            linecache.cache[filename] = (
                len(cell["source"]),
                None,
                cell["source"].splitlines(True),
                filename,
            )
            for compiled in _statements(cell["source"], filename):
                try:
                    exec(compiled(), namespace)  # noqa: S102 - this is the point: run the student's cell
                except BaseException as exc:  # noqa: BLE001
                    errors.append({"cell": cell["index"], **describe_exception(exc)})
                    if len(errors) >= MAX_CELL_ERRORS:
                        break
    return {
        "event": "ready",
        "cell_errors": errors,
        "stdout": out.getvalue(),
        "warnings": warning_texts(caught),
    }


def new_namespace() -> dict:
    return {"__name__": "__main__", "__builtins__": __builtins__, "np": np, "numpy": np}


# --------------------------------------------------------------------------- process entry
def _to_frames(encoded: dict, frames: list) -> None:
    """Move the array bytes of one encoded value into ``frames``, leaving their numbers."""
    if isinstance(encoded.get("data"), bytes):
        frames.append(encoded["data"])
        encoded["data"] = len(frames) - 1
    for item in encoded.get("items", ()):
        _to_frames(item, frames)


def framed(event: dict) -> list[bytes]:
    """An event as its JSON line and, after it, the frames of its arrays (see the wire format)."""
    frames: list[bytes] = []
    for encoded in event.get("outputs", {}).values():
        _to_frames(encoded, frames)
    if not frames:
        return [(json.dumps(event) + "\n").encode()]
    event["frames"] = [len(frame) for frame in frames]
    return [(json.dumps(event) + "\n").encode(), *frames]


def _binary_values(value, depth: int = 0) -> dict:
    return encode_value(value, depth, array=npy_bytes)


def serve(request: dict, channel) -> None:
    """Run a whole request: the cells, then every case, one event each on ``channel`` (binary)."""
    limit = int(request.get("output_limit", 20000))
    binary = request.get("frames") is True
    encode = _binary_values if binary else encode_value

    def send(event: dict) -> None:
        for part in framed(event) if binary else [(json.dumps(event) + "\n").encode()]:
            channel.write(part)
        channel.flush()

    namespace = new_namespace()
    send(execute_cells(namespace, request["cells"], limit))
    for case in request["cases"]:
        inputs = {k: decode_array(v) for k, v in case["inputs"].items()}
        send(run_case(namespace, case, inputs, limit, encode))
    send({"event": "done"})
    channel.close()


def run_with_fds(request_fd: int, event_fd: int) -> None:
    """Entry point of a child forked by the sandbox's fork server: request in a memfd."""
    with os.fdopen(request_fd, "rb") as stream:
        stream.seek(0)
        request = json.loads(stream.read())
    channel = os.fdopen(event_fd, "wb")
    sys.stdin = io.StringIO("")  # input() in student code gets EOF instead of blocking
    serve(request, channel)
    os._exit(0)  # skip interpreter teardown: student atexit hooks and __del__ cannot run


def main() -> int:
    # Keep the protocol channel private: student prints go to the captured buffers, and anything
    # written straight to fd 1/2 goes nowhere instead of corrupting the protocol.
    channel = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    request = json.loads(sys.stdin.buffer.read())
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = io.StringIO("")  # input() in student code gets EOF instead of blocking
    serve(request, channel)
    os._exit(0)  # skip interpreter teardown: student atexit hooks and __del__ cannot run


if __name__ == "__main__":
    sys.exit(main())
