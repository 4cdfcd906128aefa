"""Grading submissions: find them, run each in its own process, judge, and collect results.

The flow for one notebook: read it (never write it) → pick the student's cells → build the
cases (in the batch grade all from the salt and the reference; in a self-check the public
fixtures) → run the cells and the call plans in a child process, in a secret order under random
keys → judge every returned value here, in the trusted process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader.budget import Budget, Refusal
from grader.checks import NOTEBOOKS, checks_for
from grader.checks.base import CaseResult, CheckResult
from grader.checks.cases import batch_cases, cases_for, salt_from_environment
from grader.layout import Target, find_submissions
from grader.results import SubmissionResult
from grader.runner import sandbox
from grader.runner.judging import judge_event, wire_case
from grader.runner.process import DEFAULT_LIMITS, ISOLATION, Limits, run_in_child
from grader.runner.submission import (
    Submission,
    SubmissionError,
    assignment_from_path,
    load_submission,
)


def discover(paths: list[Path]) -> list[Target]:
    """The notebooks to grade under ``paths``, identity from the layout (see :mod:`grader.layout`);
    what is found but not graded is in :func:`grader.layout.find_submissions`'s report."""
    return find_submissions(paths).targets


def grade_notebook(
    target: Target,
    *,
    include_hidden: bool = True,
    salt: str | None = None,
    reference=None,
    limits: Limits = DEFAULT_LIMITS,
    case_source: Callable | None = None,
) -> SubmissionResult:
    """Grade one notebook. Never raises for anything the submission does; never writes to it.

    ``case_source(check)`` gives a check's ``(case, wire JSON)`` list instead of building them
    from ``salt`` and ``reference`` (a Dask worker gets them from the client, see
    :mod:`grader.runner.cluster`).
    """
    start = time.perf_counter()
    try:
        submission = load_submission(target.path, target.assignment)
    except SubmissionError as exc:
        result = _ungradable(target, str(exc))
        result.seconds = time.perf_counter() - start
        result.limits = dataclasses.asdict(limits)
        return result
    submission.student = target.student
    result = _grade_loaded(
        submission, include_hidden, salt or salt_from_environment(), reference, limits, case_source
    )
    result.seconds = time.perf_counter() - start
    result.limits = dataclasses.asdict(limits)
    return result


def _ungradable(target: Target, reason: str) -> SubmissionResult:
    """A result for a notebook that cannot be run at all: every check of its assignment scores 0."""
    assignment = target.assignment or assignment_from_path(target.path) or "unknown"
    result = SubmissionResult(target.path, assignment, target.student, error=reason)
    for check in checks_for(assignment) if assignment in NOTEBOOKS else []:
        result.checks.append(
            CheckResult(check, [CaseResult("all cases", False, reason)], error=reason)
        )
    result.isolation = NOT_RUN
    try:
        with open(target.path, "rb") as stream:  # streamed: the file may be huge
            result.sha256 = hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError:
        pass
    return result


NOT_RUN = ISOLATION


class _WireCase(dict):
    """A case as the child receives it, with its JSON text made once (see ``process``): the
    ``parts`` that joined give it (a fresh key, then the body every submission shares)."""

    parts: tuple[bytes, ...]


_built: dict[tuple, list[tuple[object, bytes]]] = {}
_built_lock = threading.Lock()


def _cases(check, salt: str, reference, batch: bool) -> list[tuple[object, bytes]]:
    """``(case, wire JSON without its key)`` of a check, built once per salt and reference: the
    cases and their encoded inputs are the same for every submission of a batch.

    ``batch``: every case from the salt (:func:`~grader.checks.cases.batch_cases`); otherwise the
    self-check's (public fixtures, hidden cases from the salt)."""
    token = (check.id, check.build, salt, batch, id(reference) if check.needs_reference else None)
    with _built_lock:
        if token in _built:
            return _built[token]
    if batch:
        cases = batch_cases(check, salt=salt, reference=reference)
    else:
        cases = cases_for(check, salt=salt, reference=reference)
    built = []
    for case in cases:
        body = json.dumps({k: v for k, v in wire_case("", case).items() if k != "key"})
        built.append((case, body.encode()))
    with _built_lock:
        if len(_built) > 512:
            _built.clear()
        _built[token] = built
    return built


def _opaque(body: bytes, returns: dict) -> _WireCase:
    """A wire case under a fresh random key: the key says nothing about the check or the case.
    ``returns`` stays readable for the parent (the channel checks events against it). The body
    (megabytes of inputs, for some checks) is not copied here: the request joins it once."""
    key = secrets.token_hex(8)
    wire = _WireCase(key=key, returns=returns)
    wire.parts = (f'{{"key": "{key}", '.encode(), memoryview(body)[1:])
    return wire


def _judge(check, case, event: dict | None, failure: str) -> CaseResult:
    """Judge one case; a malformed event is the submission's failure, never the grader's."""
    if event is not None and not event.get("error"):
        outputs = event.get("outputs")
        if not isinstance(outputs, dict) or set(outputs) != set(case.returns):
            return CaseResult(
                case.name, False, "the process sent a malformed result", points=case.points
            )
    try:
        return judge_event(check, case, event, failure)
    except Exception as exc:  # noqa: BLE001 - whatever came back could not be judged
        message = f"the returned values could not be judged ({exc!r})"
        return CaseResult(case.name, False, message, points=case.points)


def _grade_loaded(
    submission: Submission,
    include_hidden: bool,
    salt: str,
    reference,
    limits: Limits,
    case_source: Callable | None = None,
) -> SubmissionResult:
    result = SubmissionResult(
        submission.path,
        submission.assignment,
        submission.student,
        submission.sha256,
        notes=list(submission.notes),
    )
    if submission.identified_by not in ("metadata", "layout"):
        result.notes.append(
            f"assignment {submission.assignment} recognised by its {submission.identified_by}"
        )
    checks = checks_for(submission.assignment, include_hidden)
    planned = []  # (check, [(key, case)]) or (check, error)
    wire = []
    for check in checks:
        try:
            built = (
                case_source(check)
                if case_source is not None
                else _cases(check, salt, reference, batch=include_hidden)
            )
        except Exception as exc:  # noqa: BLE001 - a grader-side problem; reported, never fatal
            planned.append((check, f"grader problem: could not build cases ({exc})"))
            continue
        opaque = [(case, _opaque(body, case.returns)) for case, body in built]
        planned.append((check, [(w["key"], case) for case, w in opaque]))
        wire += [w for _, w in opaque]
    # the order is secret too: counting calls does not tell which case is running
    secrets.SystemRandom().shuffle(wire)
    # a self-check (public checks only) runs sandboxed when it can, without warnings or errors
    outcome = run_in_child(submission.cells, wire, limits, strict=include_hidden)
    result.isolation = outcome.isolation
    ready = outcome.ready or {}
    if outcome.interference:
        result.notes.append(outcome.interference)
    for error in ready.get("cell_errors", []):
        result.notes.append(f"cell {error['cell']} raised {error['type']}: {error['message']}")
    for warning in ready.get("warnings", []):
        result.notes.append(f"your cells warned (no points lost): {warning}")
    for check, keyed in planned:
        if isinstance(keyed, str):
            result.checks.append(
                CheckResult(check, [CaseResult("all cases", False, keyed)], error=keyed)
            )
            continue
        cases = [
            _judge(check, case, outcome.events.get(key), outcome.failures.get(key, ""))
            for key, case in keyed
        ]
        result.checks.append(CheckResult(check, cases))
    return result


def budget_holder(target: Target) -> str:
    """Whose time budget a notebook spends: its student's; a loose notebook is its own student."""
    return target.student or str(target.path)


def refused(target: Target, refusal: Refusal, limits: Limits) -> SubmissionResult:
    """The result of a notebook the budget does not start (final or not, as ``refusal`` says),
    stating the batch's limits."""
    result = _ungradable(target, refusal.reason)
    result.final = refusal.final
    result.limits = dataclasses.asdict(limits)
    return result


def grade_many(
    targets: list[Target],
    *,
    jobs: int,
    include_hidden: bool = True,
    salt: str | None = None,
    reference=None,
    limits: Limits = DEFAULT_LIMITS,
    progress: bool = True,
    on_result: Callable[[int, SubmissionResult], None] | None = None,
) -> list[SubmissionResult]:
    """Grade notebooks in parallel (each in its own sandboxed child); results keep input order.

    ``on_result(index, result)`` is called (from a worker thread) as soon as each result exists.
    The batch keeps to ``limits.student_seconds`` per student and ``limits.batch_seconds`` in
    all (:mod:`grader.budget`): notebooks the batch budget leaves unstarted get a non-final
    result (``final=False``, never stored) that a re-run grades.
    Raises :class:`~grader.runner.sandbox.SandboxUnavailable` at once when the bubblewrap
    sandbox cannot be used, unless ``DNN_KIT_SANDBOX=off`` (``--no-sandbox``) allows the
    rlimits-only fallback (then a loud warning): grading fails closed.
    """
    from tqdm.auto import tqdm

    if include_hidden:  # grading for real: refuse now without the sandbox, before any work
        sandbox.require()
    budget = Budget(limits)

    def one(indexed: tuple[int, Target]) -> SubmissionResult:
        index, target = indexed
        student = budget_holder(target)
        granted = budget.grant(student)
        if isinstance(granted, Refusal):
            result = refused(target, granted, limits)
        else:
            start = time.monotonic()
            try:
                result = grade_notebook(
                    target,
                    include_hidden=include_hidden,
                    salt=salt,
                    reference=reference,
                    limits=granted,
                )
            except Exception as exc:  # noqa: BLE001 - the grader's own bug: a result, flagged
                result = SubmissionResult(
                    target.path,
                    target.assignment or "unknown",
                    target.student,
                    error=f"grader failure: {exc!r}",
                    grader_failure=True,
                )
            budget.settle(student, granted, time.monotonic() - start)
        # the batch's limits, with the time this notebook was given
        if not isinstance(granted, Refusal):
            result.limits = dataclasses.asdict(limits) | {"total_seconds": granted.total_seconds}
        if on_result is not None:
            on_result(index, result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        iterator = pool.map(one, enumerate(targets))
        return list(
            tqdm(
                iterator, total=len(targets), disable=not progress, unit="notebook", desc="grading"
            )
        )
