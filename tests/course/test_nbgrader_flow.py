"""The stock nbgrader flow works on our notebooks, and agrees with our grader on honest submissions.

Both runners use the same check definitions: nbgrader runs them in the notebook's kernel (the
grade cells), ours in a separate process. For every sample submission — correct answers and
catalogued mistakes — the per-check scores must be identical.
"""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from kit_testing import ROOT

from grader.checks import NOTEBOOKS, checks_for
from grader.course import autograde_with_nbgrader, nbgrader_environment
from grader.grading import discover, grade_many

pytestmark = pytest.mark.slow
SAMPLE = ROOT / "data" / "sample_class" / "submitted"


def honest_submissions():
    """Every sample notebook that nbgrader can open (the deliberately corrupt one is left out)."""
    paths = []
    for path in sorted(SAMPLE.glob("*/*/*.ipynb")):
        try:
            nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - the cut-short sample is not a notebook at all
            continue
        paths.append(path)
    return paths


def test_nbgrader_autograde_and_our_grader_agree(tmp_path, reference):
    paths = honest_submissions()
    stock = autograde_with_nbgrader(paths, tmp_path / "course")
    ours = grade_many(discover(paths), jobs=2, reference=reference, progress=False)
    assert len(stock) == len(ours) == len(paths)
    ours_by_student = {(r.student, r.assignment): r for r in ours}
    for result in stock:
        assert not result.error, result.error
        mine = ours_by_student[(result.student, result.assignment)]
        assert {
            c.check.id: pytest.approx(c.score, abs=1e-3) for c in mine.checks
        } == result.cells, result.student
        assert result.max_cells == {c.id: c.points for c in checks_for(result.assignment)}
    scores = {r.student: r.score for r in stock}
    assert scores["ada"] == scores["ben"] == sum(c.points for c in checks_for("02_dropout"))
    assert scores["lee"] == 0  # the untouched student notebook


@pytest.mark.parametrize(
    "assignment", [a for a in NOTEBOOKS if (ROOT / "solutions" / a / f"{a}.ipynb").exists()]
)
def test_nbgrader_validate(assignment, tmp_path):
    """Solutions pass `nbgrader validate`; untouched student notebooks pass no test (`--invert`).

    validate exits 0 either way, so its report is read.
    """
    env = nbgrader_environment(ROOT / "solutions" / "reference", None)
    solution = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    student = ROOT / "notebooks" / assignment / f"{assignment}.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", str(solution)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout + done.stderr
    inverted = subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", "--invert", str(student)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "Success! The notebook does not pass any tests." in inverted.stdout, (
        inverted.stdout + inverted.stderr
    )
