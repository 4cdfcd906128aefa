"""Hostile: one Gradescope upload, one notebook graded — never a sum, never above max_score.

Issue 9, hole 2: one correct dropout notebook uploaded three times scored 30 on a 10-point
assignment, and a correct batch-norm notebook renamed ``02_dropout.ipynb`` was graded as batch
norm (its metadata won) and scored 18 on the dropout assignment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from hostile_helpers import ROOT, filled, real_sandbox, released, write  # noqa: F401

from grader.checks import checks_for
from grader.report.bundle import SETUP_SH

ASSIGNMENT = "02_dropout"
FULL = sum(c.points for c in checks_for(ASSIGNMENT))
CORRECT_BN = (
    ROOT / "data" / "sample_class" / "submitted" / "bashir" / "03_batchnorm" / "03_batchnorm.ipynb"
)


def gradescope(upload: Path, results: Path, *extra: str) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "gradescope",
            str(upload),
            "--results",
            str(results),
            "--reference",
            str(ROOT / "solutions"),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(results.read_text())


def test_the_same_notebook_three_times_scores_once(tmp_path):
    """The attack: three copies. Now: the one named 02_dropout.ipynb is graded, the two others
    are listed as not graded; the score is the assignment's points, not three times them."""
    upload = tmp_path / "submission"
    for name in (f"{ASSIGNMENT}.ipynb", "copy.ipynb", f"again/{ASSIGNMENT}.ipynb"):
        write(upload / name, filled())
    data = gradescope(upload, tmp_path / "results.json", "--assignment", ASSIGNMENT)
    assert (data["score"], data["max_score"]) == (FULL, FULL)
    assert len(data["tests"]) == len(checks_for(ASSIGNMENT))
    assert data["output"].count("Not graded:") == 2
    assert data["extra_data"]["notebook"] == str(upload / f"{ASSIGNMENT}.ipynb")


def test_a_batch_norm_notebook_renamed_is_graded_as_the_assignment(tmp_path):
    """The attack: a correct batch-norm notebook named 02_dropout.ipynb. Now graded as
    02_dropout (its metadata only noted): 0 of the dropout points, max_score the dropout's."""
    upload = tmp_path / "submission"
    upload.mkdir()
    shutil.copyfile(CORRECT_BN, upload / f"{ASSIGNMENT}.ipynb")
    data = gradescope(upload, tmp_path / "results.json", "--assignment", ASSIGNMENT)
    assert (data["score"], data["max_score"]) == (0.0, FULL)
    assert data["extra_data"]["assignment"] == ASSIGNMENT
    assert "metadata names 03_batchnorm" in data["output"]


def test_without_the_expected_name_the_content_decides(tmp_path):
    """Variant: a stub and a finished notebook, neither named 02_dropout.ipynb, plus a correct
    batch-norm notebook: the first one whose content is the assignment's is graded, alone."""
    upload = tmp_path / "submission"
    upload.mkdir()
    shutil.copyfile(CORRECT_BN, upload / "a_batchnorm.ipynb")
    write(upload / "b_mine.ipynb", filled())
    write(upload / "c_stub.ipynb", released())
    data = gradescope(upload, tmp_path / "results.json", "--assignment", ASSIGNMENT)
    assert (data["score"], data["max_score"]) == (FULL, FULL)
    assert Path(data["extra_data"]["notebook"]).name == "b_mine.ipynb"
    from grader.report.gradescope import choose_upload

    target, unused = choose_upload(upload, ASSIGNMENT)
    assert (target.path.name, target.assignment) == ("b_mine.ipynb", ASSIGNMENT)
    assert sorted(p.name for p, _ in unused) == ["a_batchnorm.ipynb", "c_stub.ipynb"]


def test_several_notebooks_and_no_assignment_grade_nothing(tmp_path):
    """Variant: without --assignment an upload of two notebooks is refused, never summed."""
    upload = tmp_path / "submission"
    for name in ("one.ipynb", "two.ipynb"):
        write(upload / name, filled())
    data = gradescope(upload, tmp_path / "results.json")
    assert (data["score"], data["tests"]) == (0.0, [])
    assert data["output"].count("Not graded:") == 2


def test_the_bundle_needs_an_assignment_and_probes_the_sandbox(tmp_path):
    """``gradescope-bundle`` without --assignment is bad usage; setup.sh fails the image build
    when the sandbox does not work there (it runs the grader's own probe, required)."""
    done = subprocess.run(
        [sys.executable, "-m", "grader", "gradescope-bundle", "--out", str(tmp_path / "a.zip")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "--assignment" in done.stderr
    assert not (tmp_path / "a.zip").exists()
    probe = SETUP_SH[SETUP_SH.index("if ! DNN_KIT_SANDBOX=required") :]
    assert "sandbox.require()" in probe and "exit 1" in probe
    works = probe.replace("/autograder/venv/bin/python", sys.executable)
    assert subprocess.run(["bash", "-c", works], capture_output=True).returncode == 0
    broken = works.replace(sys.executable, f"{sys.executable} -S", 1)  # no site: no grader
    failed = subprocess.run(["bash", "-c", broken], capture_output=True, text=True)
    assert failed.returncode == 1 and "does not work" in failed.stderr
