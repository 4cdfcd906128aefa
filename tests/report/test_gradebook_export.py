"""Our scores in nbgrader's gradebook, checked with nbgrader's own commands (slow).

``python -m grader export`` writes the gradebook, autograded/ copies and feedback/; then the real
``nbgrader export`` must produce a CSV with our scores, formgrader's queries must show the written
answers waiting for a human, and ``nbgrader release_feedback`` must release our feedback files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kit_testing import ANSWERS, ROOT, answer_functions, write_submission

from grader.checks import checks_for
from grader.course import nbgrader_environment

pytestmark = pytest.mark.slow
SAMPLE = ROOT / "data" / "sample_class" / "submitted"
STUDENTS = ("ada", "carl", "gus", "lee", "mo")
STAMPS = {  # what `nbgrader collect` leaves beside each notebook (ada's is missing: mtime then)
    "carl": "2025-03-08 09:15:00.000000 UTC",
    "gus": "2025-03-07 18:00:00.000000 UTC",
    "lee": "2025-03-07 12:00:00.000000 UTC",
    "mo": "2025-03-07 23:00:00.000000 UTC",
}
DUE = "2025-03-07 23:59:00 UTC"


def collected_class(tmp_path: Path, folder: str = "collected") -> Path:
    root = tmp_path / folder / "submitted"
    for student in STUDENTS:
        folder = root / student / "02_dropout"
        shutil.copytree(SAMPLE / student / "02_dropout", folder)
        (folder / "submission_secret.txt").write_text(hashlib.sha256(student.encode()).hexdigest())
        if student in STAMPS:
            (folder / "timestamp.txt").write_text(STAMPS[student])
    return root


def export(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "grader", "export", *args, "--no-progress", "--jobs", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = nbgrader_environment(ROOT / "solutions" / "reference", None)
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def nbgrader_csv(course: Path) -> dict[str, dict]:
    nbgrader(course, "export", "--to", str(course / "nbgrader_grades.csv"))
    rows = csv.DictReader(io.StringIO((course / "nbgrader_grades.csv").read_text()))
    return {r["student_id"]: r for r in rows if r["assignment"] == "02_dropout"}


def our_results(course: Path) -> dict[str, dict]:
    return {
        r["extra_data"]["student"]: r
        for r in json.loads((course / "exports" / "results.json").read_text())
    }


def files(folder: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    """The collected class exported once: (submitted folder, course directory)."""
    tmp_path = tmp_path_factory.mktemp("exported")
    submitted = collected_class(tmp_path)
    before = files(submitted)
    course = tmp_path / "course"
    export(str(submitted), "--course", str(course), "--due", DUE)
    assert files(submitted) == before  # submissions are never touched
    return submitted, course


def test_gradebook_autograded_copies_and_nbgrader_export(exported):
    submitted, course = exported

    ours = our_results(course)
    theirs = nbgrader_csv(course)
    manual_points = 3.0  # the three written answers of 02_dropout, graded by hand
    assert set(theirs) == set(STUDENTS)
    for student in STUDENTS:
        assert float(theirs[student]["raw_score"]) == pytest.approx(
            ours[student]["score"], abs=1e-4
        )
        assert float(theirs[student]["max_score"]) == ours[student]["max_score"] + manual_points
        assert theirs[student]["duedate"].startswith("2025-03-07 23:59:00")
    assert theirs["carl"]["timestamp"].startswith("2025-03-08 09:15:00")  # late, and it shows
    assert theirs["ada"]["timestamp"]  # from the file's time

    for student in STUDENTS:
        copy = course / "autograded" / student / "02_dropout" / "02_dropout.ipynb"
        assert (
            copy.read_bytes()
            == (submitted / student / "02_dropout" / "02_dropout.ipynb").read_bytes()
        )
        if student in STAMPS:
            assert (copy.parent / "timestamp.txt").read_text() == STAMPS[student]

    from grader.report.nbgrader_export import _gradebook

    with _gradebook(course) as gb:
        rows = {r["student"]: r for r in gb.notebook_submission_dicts("02_dropout", "02_dropout")}
        assert all(r["needs_manual_grade"] for r in rows.values())  # the written answers wait
        assert rows["mo"]["flagged"] and not rows["ada"]["flagged"]
        carl = gb.find_submission_notebook("02_dropout", "02_dropout", "carl")
        auto = {g.name: g.auto_score for g in carl.grades if g.cell_type == "code"}
        written = {g.name: g.auto_score for g in carl.grades if g.cell_type == "markdown"}
        assert auto == {t["extra_data"]["check"]: t["score"] for t in ours["carl"]["tests"]}
        assert written and all(v is None for v in written.values())


def test_release_feedback_releases_our_feedback(exported, tmp_path):
    _, course = exported
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    nbgrader(
        course,
        "release_feedback",
        "02_dropout",
        f"--Exchange.root={exchange}",
        "--CourseDirectory.course_id=dnn",
    )
    released = exchange / "dnn" / "feedback"
    for student in STUDENTS:
        secret = hashlib.sha256(student.encode()).hexdigest()
        name = hashlib.md5((secret + "02_dropout").encode()).hexdigest()  # nbgrader's notebook_hash
        ours = course / "feedback" / student / "02_dropout" / "02_dropout.html"
        assert (released / f"{name}.html").read_bytes() == ours.read_bytes()
    assert (
        "hidden"
        in (
            released
            / f"{hashlib.md5((hashlib.sha256(b'carl').hexdigest() + '02_dropout').encode()).hexdigest()}.html"
        ).read_text()
    )


def test_regrading_one_student_and_new_points_update_the_gradebook(tmp_path):
    # the course's own submitted/ folder (where `nbgrader collect` puts resubmissions)
    submitted = collected_class(tmp_path, "course")
    course = tmp_path / "course"
    export(str(submitted), "--course", str(course))
    first = nbgrader_csv(course)
    # carl hands in a corrected notebook; only he is regraded
    write_submission(
        submitted,
        "02_dropout",
        answer_functions(ANSWERS / "02_dropout" / "ben_correct_float32.py"),
        name="carl",
    )
    done = export(str(submitted), "--course", str(course), "--student", "carl")
    assert f"{len(STUDENTS) - 1} from the store, 1 graded" in done.stderr
    second = nbgrader_csv(course)
    total = sum(c.points for c in checks_for("02_dropout"))
    assert float(second["carl"]["raw_score"]) == total > float(first["carl"]["raw_score"])
    assert {s: r["raw_score"] for s, r in second.items() if s != "carl"} == {
        s: r["raw_score"] for s, r in first.items() if s != "carl"
    }

    points = tmp_path / "points.toml"
    points.write_text("[points]\ndropout_train_forward = 6\n")
    done = export(str(submitted), "--course", str(course), "--points", str(points))
    assert f"{len(STUDENTS)} from the store, 0 graded" in done.stderr
    third = nbgrader_csv(course)
    ours = our_results(course)
    for student in STUDENTS:
        assert float(third[student]["raw_score"]) == pytest.approx(ours[student]["score"], abs=1e-4)
        assert float(third[student]["max_score"]) == total + 3 + 3.0
    assert float(third["ada"]["raw_score"]) == total + 3
