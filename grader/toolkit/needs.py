"""Experiment cells that wait, kindly, until the student's functions exist.

An experiment cell of a lecture notebook runs the student's own functions. In a notebook that is
not finished yet it must neither crash nor train for a minute before crashing, and the cells after
it must not fail with a ``NameError`` on a variable the skipped cell never made. So every such cell
is one block::

    with needs(dropout_forward="section 2", dropout_backward="section 3"):
        ...  # the experiment

* On entry, every named function is looked up in the notebook's globals. A function that is not
  defined, or whose body is still only the stub's ``raise NotImplementedError(...)``, makes the
  block print one line, e.g. "finish `dropout_forward` (section 2) first ...", and **skip its body**.
* A ``NotImplementedError`` raised inside the body (a function that is half written), or a
  ``NameError`` raised by the cell's own code (a variable from an earlier cell that was skipped), ends
  the block the same way: one line, no traceback.
* Any other exception is a bug in the student's code (the given code is tested with the reference
  solutions): the block ends with one line that names the exception, its message and the line of
  the student's function where it was raised, so that Run All still reaches the end of the notebook.
  ``KeyboardInterrupt`` and other non-``Exception`` errors propagate.

The message goes to stdout, never stderr (nbgrader gives 0 to a graded cell with stderr output).
Skipping a ``with`` body uses CPython's line tracing (the technique of ``withhacks``): a trace
function set on the calling frame raises a private exception at the body's first line, which
``__exit__`` swallows. When a tracer is already active (a debugger, coverage) the body runs instead,
and the first call of a stub ends it through the ``NotImplementedError`` rule above.
"""

from __future__ import annotations

import ast
import dis
import inspect
import sys
import textwrap
from types import FrameType, TracebackType
from typing import Any


class _SkipBody(Exception):
    """Raised at the first line of a skipped body; never leaves :class:`needs`."""


def is_stub(function: Any) -> bool:
    """Whether ``function`` is still the notebook's stub.

    A stub's body, after its docstring, is a single ``raise NotImplementedError`` (with or without
    arguments); comments do not count.

    Parameters
    ----------
    function : callable

    Returns
    -------
    bool
        Without readable source, judged from the code object: a stub uses no name but
        ``NotImplementedError`` and no constant but strings.
    """
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        code = getattr(function, "__code__", None)
        return (
            code is not None
            and code.co_names == ("NotImplementedError",)
            and all(c is None or isinstance(c, str) for c in code.co_consts)
            and any(i.opname == "RAISE_VARARGS" for i in dis.get_instructions(code))
        )
    if not tree.body or not isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc
    if isinstance(exc, ast.Call):
        exc = exc.func
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _where(names: dict[str, str], name: str) -> str:
    section = names.get(name)
    return f"`{name}` ({section})" if section else f"`{name}`"


class needs:
    """Run the body of an experiment cell only once the functions it needs are written.

    Parameters
    ----------
    **functions : str
        The student's functions the block calls, each with where it is written, e.g.
        ``needs(dropout_forward="section 2")``.

    Examples
    --------
    >>> with needs(l2_penalty="section 3"):  # doctest: +SKIP
    ...     run_the_experiment()
    """

    def __init__(self, **functions: str):
        self.functions = dict(functions)
        self.skipped = False
        self._caller: FrameType | None = None
        self._tracing = False

    def _missing(self, namespace: dict) -> list[str]:
        return [
            name
            for name in self.functions
            if name not in namespace or not callable(namespace[name]) or is_stub(namespace[name])
        ]

    def _say(self, text: str) -> None:
        self.skipped = True
        print(f"⏭  {text}", file=sys.stdout, flush=True)

    def __enter__(self) -> needs:
        frame = self._caller = sys._getframe(1)
        missing = self._missing(frame.f_globals)
        if not missing:
            return self
        todo = " and ".join(_where(self.functions, name) for name in missing)
        self._say(f"Finish {todo} first; then run this cell again. (Skipped for now.)")
        if sys.gettrace() is None:
            # skip the body: raise at its first line (see the module docstring)
            self._tracing = True
            sys.settrace(lambda *_: None)
            frame.f_trace = self._raise_skip
        return self

    def _raise_skip(self, frame, event, arg):
        raise _SkipBody

    def _stop_tracing(self) -> None:
        if self._tracing:
            sys.settrace(None)
            if self._caller is not None:
                self._caller.f_trace = None
            self._tracing = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._stop_tracing()
        if exc_type is None:
            return False
        if issubclass(exc_type, _SkipBody):
            return True
        if self.skipped:  # the message is out; whatever the stub broke, say nothing more
            return issubclass(exc_type, NotImplementedError | NameError)
        if issubclass(exc_type, NotImplementedError):
            name = _raised_in(tb, self.functions) or str(exc) or "a function this cell calls"
            where = _where(self.functions, name) if name in self.functions else name
            self._say(f"Finish {where} first; then run this cell again. (Skipped for now.)")
            return True
        if issubclass(exc_type, NameError) and _innermost(tb).f_code is self._caller.f_code:
            # raised by the cell itself, not inside a function: a name an earlier cell makes
            name = getattr(exc, "name", None) or str(exc)
            if name in self.functions:
                self._say(
                    f"Run the cell that defines {_where(self.functions, name)} first; "
                    "then run this cell again. (Skipped for now.)"
                )
            else:
                self._say(
                    f"This cell uses `{name}`, which an earlier experiment cell makes: run the "
                    "cells above (top to bottom) first, then this one again. (Skipped for now.)"
                )
            return True
        if issubclass(exc_type, Exception):
            self._say(_bug_report(exc, tb, self.functions))
            return True
        return False


def _bug_report(exc: BaseException, tb: TracebackType | None, names: dict[str, str]) -> str:
    """One line: what was raised, and where in the student's own functions."""
    where, frame_tb = "", tb
    while frame_tb is not None:
        code = frame_tb.tb_frame.f_code
        if code.co_name in names:
            where = f" in `{code.co_name}` (line {frame_tb.tb_lineno} of its cell)"
        frame_tb = frame_tb.tb_next
    message = " ".join(str(exc).split())
    if len(message) > 300:
        message = message[:297] + "..."
    return (
        f"This cell stopped: {type(exc).__name__}{where}: {message}. Fix it, re-run that cell and "
        "then this one. (Skipped for now.)"
    )


def _innermost(tb: TracebackType) -> FrameType:
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame


def _raised_in(tb: TracebackType | None, names: dict[str, str]) -> str | None:
    """The innermost function of the traceback that is one of ``names``."""
    found = None
    while tb is not None:
        if tb.tb_frame.f_code.co_name in names:
            found = tb.tb_frame.f_code.co_name
        tb = tb.tb_next
    return found
