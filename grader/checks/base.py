"""Checks as data: cases, judges, misconceptions, and the results they produce.

A :class:`Check` is one nbgrader grade cell. It knows how to *build* its cases from a seed
(public seeds are fixed and the cases are shipped as fixtures; hidden seeds come from a
course-private salt), which student functions it calls (the case's *plan*, run by
:mod:`grader.runner.child` in a separate process or in the notebook's kernel), and how to
*judge* the values that come back. Judging only ever happens in the trusted process.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Misconception:
    """A typical mistake the checks can recognise and name."""

    id: str  # stable, e.g. "dropout.keep_prob_confusion"
    title: str  # what it looks like, in a few words
    hint: str  # one line that teaches, never the answer's code


@dataclass
class Case:
    """One set of inputs, how to call the student's functions on them, and what to expect.

    ``inputs`` are sent to the student's process; ``expected`` and ``params`` never are.
    """

    name: str
    plan: list[dict]
    returns: dict[str, Any]
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)  # arrays or lists of arrays
    params: dict[str, Any] = field(default_factory=dict)  # JSON scalars
    points: float = 1.0  # relative weight of this case within its check
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # judges' trusted cache


@dataclass(frozen=True)
class Returned:
    """A value the student's code returned, as it arrived from the child (numeric data only)."""

    kind: str  # "ndarray", "scalar", "sequence", "none", "other", "unsupported"
    type: str
    dtype: str | None = None
    array: np.ndarray | None = None
    items: tuple[Returned, ...] = ()
    length: int = 0


@dataclass
class CaseResult:
    """One case's verdict. ``passed`` is judged against the reference; ``carried_forward`` says
    the case failed only because of a mistake already charged in the check ``charged_in`` and is
    right for the student's own (catalogued) forward: it earns its points unless the course
    turns errors carried forward off. Both verdicts are stored; the rule is applied when scoring."""

    name: str
    passed: bool
    message: str = ""
    diagnosis: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    carried_forward: bool = False
    charged_in: str = ""
    points: float = 1.0  # the case's weight within its check (from the check library)

    def earned(self, carry_forward: bool = True) -> bool:
        return self.passed or (carry_forward and self.carried_forward)


def carry_forward_default() -> bool:
    """Errors carried forward, on unless ``DNN_KIT_CARRY_FORWARD`` is ``off`` (also read by the
    nbgrader kernels, which score the grade cells)."""
    return os.environ.get("DNN_KIT_CARRY_FORWARD", "on").strip().lower() not in (
        "off",
        "0",
        "no",
        "false",
    )


@dataclass
class CheckResult:
    check: Check
    cases: list[CaseResult]
    error: str = ""  # a reason the check could not run at all (e.g. timeout, missing function)
    carry_forward: bool = field(default_factory=carry_forward_default, compare=False)

    @property
    def fraction(self) -> float:
        total = sum(c.points for c in self.cases)
        if not self.cases or total <= 0:
            return 0.0
        return sum(c.points for c in self.cases if c.earned(self.carry_forward)) / total

    @property
    def score(self) -> float:
        return round(self.check.points * self.fraction, 4)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.earned(self.carry_forward) for c in self.cases)

    @property
    def diagnosis(self) -> list[str]:
        ids: list[str] = []
        for case in self.cases:
            ids.extend(d for d in case.diagnosis if d not in ids)
        return ids


class Mismatch(Exception):
    """Raised by judge helpers: the case failed, with a message for the student."""

    def __init__(self, message: str, diagnosis: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.diagnosis = diagnosis


Judge = Callable[[Case, dict[str, Returned]], CaseResult]
Builder = Callable[[int, Any], list[Case]]


@dataclass(frozen=True)
class Check:
    """One grade cell: id, points, visibility, case builder and judge."""

    id: str
    notebook: str
    title: str
    points: float
    hidden: bool
    functions: tuple[str, ...]
    build: Builder  # (seed, reference or None) -> cases
    judge: Judge
    needs_reference: bool = False  # expected values come from the reference solution


# --------------------------------------------------------------------------- seeds
DEFAULT_SALT = "dnn-discussion-2-default-salt: set your own with --salt or DNN_KIT_SALT"


def public_seed(check_id: str) -> int:
    """Seed of a public check: fixed, so public fixtures are reproducible from the code."""
    return derive_seed("public", check_id)


def hidden_seed(salt: str, check_id: str) -> int:
    """Seed of a hidden check: derived from a course-private salt, unknown to students."""
    return derive_seed(f"hidden:{salt}", check_id)


def salted_public_seed(salt: str, check_id: str) -> int:
    """Seed of a public check in the batch grade: from the salt, so the shipped fixtures (which
    every student has) cannot be looked up there. Distinct from :func:`hidden_seed`."""
    return derive_seed(f"public:{salt}", check_id)


def derive_seed(salt: str, check_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}\0{check_id}".encode()).digest()[:8], "little")


# --------------------------------------------------------------------------- judging helpers
def as_array(
    value: Returned | None,
    what: str,
    shape: tuple[int, ...] | None = None,
    notes: list | None = None,
) -> np.ndarray:
    """The numeric array behind a returned value, or a :class:`Mismatch` saying what is wrong.

    Non-float64 results are accepted (converted) with a note; NaN, inf, wrong shapes, lists
    where an array is expected and ``None`` are failures with a precise message.
    """
    if value is None:
        raise Mismatch(f"{what} is missing")
    if value.kind == "none":
        raise Mismatch(f"{what} is None (did you forget a `return`?)")
    if value.kind == "sequence":
        raise Mismatch(f"{what} is a {value.type} of {value.length} items; expected a NumPy array")
    if value.kind == "unsupported" or value.array is None:
        raise Mismatch(f"{what} is a {value.type}; expected a NumPy array of numbers")
    array = value.array
    if value.kind == "other" and notes is not None:
        notes.append(f"{what} is a {value.type}; it was converted to a NumPy array")
    if array.dtype != np.float64:
        if notes is not None and array.dtype.kind == "f":
            notes.append(
                f"{what} has dtype {array.dtype}; the kit works in float64 (accepted within tolerance)"
            )
        array = array.astype(np.float64)
    if shape is not None and array.shape != tuple(shape):
        raise Mismatch(f"{what} has shape {array.shape}; expected {tuple(shape)}")
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise Mismatch(f"{what} contains {bad} NaN or infinite value(s)")
    return array


def as_scalar(value: Returned | None, what: str, notes: list | None = None) -> float:
    """A returned number (Python float, NumPy scalar or 0-d/size-1 array)."""
    if (
        value is not None
        and value.kind in ("ndarray", "other")
        and value.array is not None
        and value.array.size == 1
    ):
        if value.array.ndim and notes is not None:
            notes.append(
                f"{what} is an array of shape {value.array.shape}; expected a plain number"
            )
        return float(as_array(value, what, None, notes).reshape(()))
    if value is not None and value.kind == "scalar":
        return float(as_array(value, what, (), notes))
    if value is not None and value.kind in ("ndarray", "other") and value.array is not None:
        raise Mismatch(f"{what} is an array of shape {value.array.shape}; expected a single number")
    return float(as_array(value, what, (), notes))


def describe_error(measured: float, tolerance: float, metric: str = "relative error") -> str:
    return f"{metric} {measured:.2e} > tolerance {tolerance:.0e}"


def run_judge(judge: Judge, case: Case, outputs: dict[str, Returned]) -> CaseResult:
    """Call a judge; a :class:`Mismatch` becomes a failed case with its message and diagnosis."""
    try:
        result = judge(case, outputs)
    except Mismatch as exc:
        result = CaseResult(case.name, False, exc.message, exc.diagnosis)
    result.points = case.points
    return result


# --------------------------------------------------------------------------- plan building
def call(function: str, *args, out: str | list[str] | None = None, **kwargs) -> dict:
    """A plan step that calls a student function (arguments are plan expressions)."""
    step: dict = {"call": function, "args": list(args), "kwargs": kwargs}
    if out is not None:
        step["out"] = out
    return step


def let(name: str, value) -> dict:
    return {"let": name, "value": value}


def given(name: str) -> dict:
    """A fresh copy of the input array ``name``."""
    return {"in": name}


def var(name: str) -> dict:
    return {"var": name}


def generator(seed: int) -> dict:
    """A new ``np.random.Generator`` made in the student's process from ``seed``."""
    return {"rng": int(seed)}


def hoeffding_bound(n: int, false_fail: float) -> float:
    r"""Half-width ``t`` with :math:`P(|\hat p - p| \ge t) \le 2 e^{-2 n t^2} = \text{false\_fail}`."""
    return float(np.sqrt(np.log(2.0 / false_fail) / (2.0 * n)))
