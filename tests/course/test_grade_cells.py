"""What grade cells output, read back by nbgrader's own scoring rule (fast; no nbgrader CLI).

nbgrader 0.9.6's ``determine_grade``: error or stderr -> 0, a parseable number >= 0 -> that score,
anything else -> full marks. Both the in-notebook checks and the kit's nbgrader steps must produce
outputs that this rule turns into exactly the kit's scores.
"""

from __future__ import annotations

import contextlib
import io

import nbformat
import pytest
from kit_testing import ROOT
from nbgrader.utils import determine_grade

from grader import notebook as in_notebook
from grader.checks import checks_for
from grader.checks.base import CaseResult, CheckResult
from grader.grading import SubmissionResult
from grader.nbgrader_steps import fill_grade_cells, fill_validation, kit_grade_cells, kit_notebook

ASSIGNMENT = "02_dropout"


def released() -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def made_up_result(pattern: list[bool]) -> SubmissionResult:
    """Every check of the notebook with the cases passing in ``pattern`` (cycled)."""
    result = SubmissionResult(ROOT / "x.ipynb", ASSIGNMENT, "s")
    k = 0
    for check in checks_for(ASSIGNMENT):
        cases = []
        for i in range(3):
            passed = pattern[k % len(pattern)]
            k += 1
            cases.append(
                CaseResult(
                    f"case {i}", passed, "" if passed else "wrong", ("dropout.keep_prob_confusion",)
                )
            )
        result.checks.append(CheckResult(check, cases))
    return result


@pytest.mark.parametrize("pattern", [[True], [False], [True, False], [True, True, False]])
def test_autograde_outputs_score_as_the_kit_does(pattern):
    nb = released()
    result = made_up_result(pattern)
    fill_grade_cells(nb, result)
    cells = kit_grade_cells(nb)
    assert kit_notebook([c.metadata.nbgrader.grade_id for c in cells]) == ASSIGNMENT
    expected = {c.check.id: c.score for c in result.checks}
    scored = {c.metadata.nbgrader.grade_id: determine_grade(c)[0] for c in cells}
    assert scored == pytest.approx(expected)
    for cell in cells:  # the message is on stdout, never stderr
        assert [o.output_type for o in cell.outputs] == ["stream", "execute_result"]
        assert cell.outputs[0].name == "stdout"
        nbformat.validate(nb)


def test_an_ungradable_notebook_scores_zero_with_its_reason():
    nb = released()
    result = made_up_result([True])
    result.error = "not a valid notebook (JSON error)"
    fill_grade_cells(nb, result)
    for cell in kit_grade_cells(nb):
        assert determine_grade(cell)[0] == 0
        assert "not a valid notebook" in cell.outputs[0].evalue


def test_validation_fails_exactly_the_failing_checks():
    nb = released()
    result = made_up_result([True, False])
    public = SubmissionResult(
        result.path, ASSIGNMENT, checks=[c for c in result.checks if not c.check.hidden]
    )
    fill_validation(nb, public, missing={"dropout_backward"})
    for cell in kit_grade_cells(nb):
        check_id = cell.metadata.nbgrader.grade_id
        score, points = determine_grade(cell)
        checked = next((c for c in public.checks if c.check.id == check_id), None)
        if checked is not None:
            assert (score == points) == checked.passed, check_id
            if not checked.passed:  # the report prints the traceback lines: they name the check
                text = "\n".join(cell.outputs[0].traceback)
                assert check_id in text and "dropout.keep_prob_confusion" in text
        else:  # hidden: fails only when a function it needs is missing
            needs_backward = "backward" in check_id
            assert (score == 0) == needs_backward, check_id


def run_cell(source: str, namespace: dict):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        value = eval(source, namespace)  # noqa: S307 - our own check call
    return value, out.getvalue()


def test_check_cells_return_plain_floats_and_never_raise(reference):
    empty: dict = {}
    answered = {n: getattr(reference, n) for n in ("dropout_forward", "dropout_backward")}
    for check in checks_for(ASSIGNMENT, include_hidden=False):
        value, _ = run_cell(f"check({check.id!r})", {"check": in_notebook.check, **empty})
        assert type(value) is float and value == 0.0
        value, _ = run_cell(f"check({check.id!r})", {"check": in_notebook.check, **answered})
        assert type(value) is float and value == float(check.points)
    hidden = next(c for c in checks_for(ASSIGNMENT) if c.hidden)
    value, printed = run_cell(
        f"check_implemented({hidden.id!r})", {"check_implemented": in_notebook.check_implemented}
    )
    assert value == 0.0 and "write `" in printed
    value, printed = run_cell(
        f"check_implemented({hidden.id!r})",
        {"check_implemented": in_notebook.check_implemented, **answered},
    )
    assert value is None and printed == ""
