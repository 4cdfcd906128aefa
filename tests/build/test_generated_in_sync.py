"""Generated files are rebuilt and compared with what is committed (nobody edits them by hand)."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from kit_testing import ROOT

from grader.checks import NOTEBOOKS, checks_for


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_notebooks_match_their_sources():
    done = script("build_notebooks.py", "--check")
    assert done.returncode == 0, done.stderr


def test_public_fixtures_match_the_reference():
    done = script("make_fixtures.py", "--check")
    assert done.returncode == 0, done.stderr


def test_sample_class_matches_the_answers():
    done = script("make_sample_class.py", "--check")
    assert done.returncode == 0, done.stderr


def test_bundled_digits_match_scikit_learn():
    pytest.importorskip("sklearn", reason="scikit-learn (a dev dependency) exports the data set")
    done = script("export_digits.py", "--check")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "assignment", [a for a in NOTEBOOKS if (ROOT / "notebooks" / a / f"{a}.ipynb").exists()]
)
def test_notebooks_know_what_they_are(assignment):
    for folder in ("solutions", "notebooks"):
        notebook = nbformat.read(ROOT / folder / assignment / f"{assignment}.ipynb", as_version=4)
        assert notebook.metadata["dnn_kit"]["assignment"] == assignment
        grade_ids = [
            c.metadata["nbgrader"]["grade_id"]
            for c in notebook.cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
        ]
        assert grade_ids == [c.id for c in checks_for(assignment)] or sorted(grade_ids) == sorted(
            c.id for c in checks_for(assignment)
        )
        ids = [c.id for c in notebook.cells]
        assert len(set(ids)) == len(ids)
        assert all(
            c.id == c.metadata["nbgrader"]["grade_id"]
            for c in notebook.cells
            if "nbgrader" in c.metadata
        )


@pytest.mark.parametrize(
    "assignment", [a for a in NOTEBOOKS if (ROOT / "notebooks" / a / f"{a}.ipynb").exists()]
)
def test_student_notebooks_hold_no_answers(assignment):
    text = (ROOT / "notebooks" / assignment / f"{assignment}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError(" in text and "is not written yet" in text  # named stubs
