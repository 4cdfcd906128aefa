"""Grading submissions: find them, run each in its own process, judge, and collect results.

The flow for one notebook: read it (never write it) → pick the student's cells → build the
cases (public fixtures; hidden ones from the salt and the reference) → run the cells and the
call plans in a child process → judge every returned value here, in the trusted process.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from grader.checks import NOTEBOOKS, checks_for
from grader.checks.base import CaseResult, CheckResult
from grader.checks.cases import cases_for, salt_from_environment
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


@dataclass(frozen=True)
class Target:
    """A notebook to grade and who submitted it (from the nbgrader layout when there is one)."""

    path: Path
    student: str = ""
    assignment: str | None = None


def discover(paths: list[Path]) -> list[Target]:
    """Notebooks under ``paths``. ``submitted/<student>/<assignment>/<nb>.ipynb`` is recognised."""
    targets: list[Target] = []
    for path in paths:
        if path.is_file():
            targets.append(_target(path))
            continue
        for notebook in sorted(path.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in notebook.parts:
                targets.append(_target(notebook))
    return targets


def _target(path: Path) -> Target:
    parts = path.resolve().parts
    if "submitted" in parts:
        i = len(parts) - 1 - parts[::-1].index("submitted")
        rest = parts[i + 1 :]
        if len(rest) == 3:  # student / assignment / notebook
            return Target(path, student=rest[0], assignment=None)
    return Target(path, student="")


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

    ``case_source(check)`` gives a check's ``(key, case, wire case)`` list instead of building them
    from ``salt`` and ``reference`` (a Dask worker gets them from the client, see
    :mod:`grader.runner.cluster`).
    """
    start = time.perf_counter()
    try:
        submission = load_submission(target.path, target.assignment)
    except SubmissionError as exc:
        result = _ungradable(target, str(exc))
        result.seconds = time.perf_counter() - start
        return result
    submission.student = target.student
    result = _grade_loaded(
        submission, include_hidden, salt or salt_from_environment(), reference, limits, case_source
    )
    result.seconds = time.perf_counter() - start
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
    """A case as the child receives it, with its JSON text made once (see ``process``)."""

    json: str


_built: dict[tuple, list[tuple[str, object, _WireCase]]] = {}
_built_lock = threading.Lock()


def _cases(check, salt: str, reference) -> list[tuple[str, object, _WireCase]]:
    """``(key, case, wire case)`` of a check, built once per salt and reference: hidden cases
    and their encoded inputs are the same for every submission of a batch."""
    token = (check.id, check.build, salt, id(reference) if check.needs_reference else None)
    with _built_lock:
        if token in _built:
            return _built[token]
    cases = cases_for(check, salt=salt, reference=reference)
    keyed = []
    for i, case in enumerate(cases):
        key = f"{check.id}/{i}"
        wire = _WireCase(wire_case(key, case))
        wire.json = json.dumps(wire)
        keyed.append((key, case, wire))
    with _built_lock:
        if len(_built) > 512:
            _built.clear()
        _built[token] = keyed
    return keyed


def _judge(check, case, event: dict | None, failure: str) -> CaseResult:
    """Judge one case; a malformed event is the submission's failure, never the grader's."""
    if event is not None and not event.get("error"):
        outputs = event.get("outputs")
        if not isinstance(outputs, dict) or set(outputs) != set(case.returns):
            return CaseResult(case.name, False, "the process sent a malformed result")
    try:
        return judge_event(check, case, event, failure)
    except Exception as exc:  # noqa: BLE001 - whatever came back could not be judged
        return CaseResult(case.name, False, f"the returned values could not be judged ({exc!r})")


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
    if submission.identified_by != "metadata":
        result.notes.append(
            f"assignment {submission.assignment} recognised by its {submission.identified_by}"
        )
    checks = checks_for(submission.assignment, include_hidden)
    planned = []  # (check, [(key, case)]) or (check, error)
    wire = []
    for check in checks:
        try:
            built = (
                case_source(check) if case_source is not None else _cases(check, salt, reference)
            )
        except Exception as exc:  # noqa: BLE001 - a grader-side problem; reported, never fatal
            planned.append((check, f"grader problem: could not build cases ({exc})"))
            continue
        planned.append((check, [(key, case) for key, case, _ in built]))
        wire += [w for _, _, w in built]
    # a self-check (public checks only) runs sandboxed when it can, without warnings or errors
    outcome = run_in_child(submission.cells, wire, limits, strict=include_hidden)
    result.isolation = outcome.isolation
    ready = outcome.ready or {}
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
    Raises :class:`~grader.runner.sandbox.SandboxUnavailable` at once when ``CI=true`` and the
    bubblewrap sandbox cannot be used; elsewhere that is a loud warning.
    """
    from tqdm.auto import tqdm

    if include_hidden:  # grading for real: fail now (CI) or warn once, before any work
        sandbox.require()

    def one(indexed: tuple[int, Target]) -> SubmissionResult:
        index, target = indexed
        try:
            result = grade_notebook(
                target, include_hidden=include_hidden, salt=salt, reference=reference, limits=limits
            )
        except Exception as exc:  # noqa: BLE001 - the grader's own bug: still a result, flagged
            result = SubmissionResult(
                target.path,
                target.assignment or "unknown",
                target.student,
                error=f"grader failure: {exc!r}",
                grader_failure=True,
            )
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
