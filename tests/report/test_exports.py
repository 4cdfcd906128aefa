"""Exports of a graded batch: feedback (HTML, Markdown), Gradescope JSON, CSV, points files.

The gradebook half (nbgrader commands) is in test_gradebook_export.py (slow); here everything is
written with ``gradebook=False`` or through ``--no-gradebook``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kit_testing import ROOT, write_submission

from grader.checks import MISCONCEPTIONS, checks_for
from grader.checks.cases import salt_from_environment
from grader.grading import discover, grade_notebook
from grader.report.exports import export_all, graded_csv
from grader.report.feedback import feedback_html, feedback_markdown
from grader.report.gradescope import results_json, upload_results
from grader.report.points import PointsError, apply_points, load_points
from grader.store import Context, grade_with_store

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
STUDENTS = ("ada", "carl", "gus", "lee", "mo")


def copy_class(tmp_path: Path, students=STUDENTS) -> Path:
    root = tmp_path / "in" / "submitted"
    for student in students:
        shutil.copytree(SAMPLE / student / "02_dropout", root / student / "02_dropout")
    return root


def graded_class(tmp_path, reference, students=STUDENTS):
    root = copy_class(tmp_path, students)
    return grade_with_store(
        discover([root]),
        store=None,
        context=Context(salt_from_environment(), reference),
        progress=False,
    )


def validate_gradescope(result: dict) -> None:
    """Gradescope's results.json fields and types, and the kit's extra_data contract."""
    assert set(result) >= {
        "score",
        "max_score",
        "execution_time",
        "output",
        "visibility",
        "tests",
        "extra_data",
    }
    assert set(result["extra_data"]) >= {
        "submission",
        "student",
        "assignment",
        "notebook",
        "isolation",
    }
    assert abs(sum(t["score"] for t in result["tests"]) - result["score"]) < 1e-9
    for test in result["tests"]:
        assert set(test) >= {
            "name",
            "score",
            "max_score",
            "status",
            "output",
            "visibility",
            "extra_data",
        }
        assert test["status"] in ("passed", "failed") and test["visibility"] in (
            "visible",
            "after_published",
        )
        assert 0 <= test["score"] <= test["max_score"]


def reference_code_lines() -> list[str]:
    """Distinctive lines of the reference solutions: none may reach a student."""
    lines = []
    for path in (ROOT / "solutions" / "reference").glob("*.py"):
        for line in path.read_text().splitlines():
            text = line.strip()
            if (
                len(text) >= 20
                and not text.startswith(("#", '"', 'r"', "def ", "from ", "import "))
                and ("=" in text or text.startswith("return"))
            ):
                lines.append(text)
    assert len(lines) > 20
    return lines


# --------------------------------------------------------------------------- feedback
def test_feedback_shows_checks_points_messages_and_hints(tmp_path, reference):
    carl = {g.student: g for g in graded_class(tmp_path, reference, ("carl",))}["carl"]
    html_text = feedback_html(carl.result, submitted_at=carl.timestamp)
    markdown = feedback_markdown(carl.result, submitted_at=carl.timestamp)
    hint = MISCONCEPTIONS["dropout.keep_prob_confusion"]
    for text in (html_text, markdown):
        for check in checks_for("02_dropout"):
            assert check.id in text
        assert f"{carl.result.score:g} / {carl.result.max_score:g}" in text
        assert "expected x/(1-p_drop)" in text  # the case message
        assert hint.title in text
    assert hint.hint in markdown and __import__("html").escape(hint.hint) in html_text
    assert "hidden check" in markdown and "(hidden)" in markdown
    assert "<script" not in html_text and "http" not in html_text  # self-contained, no scripts


def test_feedback_never_shows_reference_source_or_hidden_test_code(tmp_path, reference):
    graded = graded_class(tmp_path, reference)
    report = export_all(graded, tmp_path / "course", gradebook=False)
    texts = [
        p.read_text()
        for p in (tmp_path / "course" / "feedback").rglob("*.*")
        if p.suffix in (".html", ".md")
    ]
    texts.append((tmp_path / "course" / "exports" / "results.json").read_text())
    assert len(texts) == 2 * len(STUDENTS) + 1 and report.feedback == len(STUDENTS)
    forbidden = reference_code_lines() + ["# Hidden tests", "hidden_seed", "### BEGIN SOLUTION"]
    for text in texts:
        for line in forbidden:
            assert line not in text


def test_feedback_escapes_what_the_student_wrote(tmp_path):
    evil = "def dropout_forward(x, p_drop, mode='train', rng=None):\n    raise ValueError('<script>alert(1)</script> | `x`')"
    path = write_submission(tmp_path, "02_dropout", {"dropout_forward": evil})
    result = grade_notebook(discover([path])[0], include_hidden=False)
    page = feedback_html(result)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    markdown = feedback_markdown(result)
    assert (
        "<script>alert(1)</script>" in markdown
    )  # inside a code block, where Markdown shows it as text
    block = markdown.split("<script>alert(1)</script>")[0].rsplit("```", 1)[1]
    assert block.startswith("text\n")


def test_an_unrunnable_notebook_gets_feedback_with_the_reason(tmp_path, reference):
    mo = {g.student: g for g in graded_class(tmp_path, reference, ("mo",))}["mo"]
    page = feedback_markdown(mo.result)
    assert "We could not run your notebook" in page and "not a valid notebook" in page
    assert f"0 / {mo.result.max_score:g}" in page


# --------------------------------------------------------------------------- the export folder
def test_export_writes_every_file_in_nbgraders_layout(tmp_path, reference):
    graded = graded_class(tmp_path, reference)
    course = tmp_path / "course"
    export_all(graded, course, gradebook=False)
    for student in STUDENTS:
        folder = course / "feedback" / student / "02_dropout"
        assert (folder / "02_dropout.html").is_file() and (folder / "02_dropout.md").is_file()
        assert (folder / "timestamp.txt").is_file()  # release_feedback reads it
        data = json.loads(
            (
                course / "exports" / "gradescope" / student / "02_dropout" / "02_dropout.json"
            ).read_text()
        )
        validate_gradescope(data)
        assert data["extra_data"]["student"] == student and data["extra_data"]["timestamp"]
    everything = json.loads((course / "exports" / "results.json").read_text())
    assert [r["extra_data"]["student"] for r in everything] == list(STUDENTS)
    rows = list(csv.DictReader(io.StringIO((course / "exports" / "grades.csv").read_text())))
    assert [r["student"] for r in rows] == list(STUDENTS)
    for row, g in zip(rows, graded, strict=True):
        assert float(row["score"]) == g.result.score
        assert row["submitted_at"] == g.timestamp and row["timestamp_source"] == "mtime"
    assert (course / "exports" / "class_report.html").is_file()
    assert not (course / "gradebook.db").exists()


def test_a_flat_folder_gets_student_ids_from_file_names(tmp_path, reference):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("ada", "carl"):
        shutil.copyfile(
            SAMPLE / name / "02_dropout" / "02_dropout.ipynb", flat / f"{name}_dropout.ipynb"
        )
    graded = grade_with_store(
        discover([flat]),
        store=None,
        context=Context(salt_from_environment(), reference),
        progress=False,
    )
    export_all(graded, tmp_path / "course", gradebook=False)
    assert (
        tmp_path / "course" / "feedback" / "ada_dropout" / "02_dropout" / "ada_dropout.html"
    ).is_file()
    everything = json.loads((tmp_path / "course" / "exports" / "results.json").read_text())
    assert [r["extra_data"]["student"] for r in everything] == ["ada_dropout", "carl_dropout"]


def test_csv_has_submission_times_and_lateness(tmp_path, reference):
    root = copy_class(tmp_path, ("ada", "carl"))
    (root / "carl" / "02_dropout" / "timestamp.txt").write_text("2025-03-08 09:15:00.000000 UTC")
    (root / "ada" / "02_dropout" / "timestamp.txt").write_text("2025-03-06 20:00:00.000000 UTC")
    graded = grade_with_store(
        discover([root]),
        store=None,
        context=Context(salt_from_environment(), reference),
        progress=False,
    )
    rows = {
        r["student"]: r
        for r in csv.DictReader(io.StringIO(graded_csv(graded, due="2025-03-07 23:59:00 UTC")))
    }
    assert rows["carl"]["submitted_at"] == "2025-03-08T09:15:00+00:00"
    assert float(rows["carl"]["seconds_late"]) == 9 * 3600 + 16 * 60
    assert float(rows["ada"]["seconds_late"]) == 0
    assert rows["ada"]["timestamp_source"] == "timestamp.txt"


# --------------------------------------------------------------------------- points
def test_points_file_applies_everywhere(tmp_path, reference):
    points_file = tmp_path / "points.toml"
    points_file.write_text("[points]\ndropout_train_forward = 5\ndropout_backward = 4.5\n")
    points = load_points(points_file)
    graded = graded_class(tmp_path, reference, ("ada", "carl"))
    export_all(graded, tmp_path / "course", points=points, gradebook=False)
    base = {c.id: c.points for c in checks_for("02_dropout")}
    expected_max = (
        sum(base.values()) - base["dropout_train_forward"] - base["dropout_backward"] + 9.5
    )
    data = json.loads((tmp_path / "course" / "exports" / "results.json").read_text())
    assert all(r["max_score"] == expected_max for r in data)
    ada, carl = data
    assert ada["score"] == expected_max
    carl_result = apply_points(graded[1].result, points)
    assert carl["score"] == carl_result.score
    # carl fails train_forward (now 0 / 5) and passes backward (now 4.5 points)
    assert carl_result.score == graded[1].result.score + 4.5 - base["dropout_backward"]
    rows = list(
        csv.DictReader(io.StringIO((tmp_path / "course" / "exports" / "grades.csv").read_text()))
    )
    assert (
        float(rows[0]["dropout_train_forward"]) == 5 and float(rows[0]["max_score"]) == expected_max
    )
    feedback = (
        tmp_path / "course" / "feedback" / "carl" / "02_dropout" / "02_dropout.md"
    ).read_text()
    assert f"{carl_result.score:g} / {expected_max:g}" in feedback and "| 0 / 5 |" in feedback
    assert (
        f"{expected_max:g}" in (tmp_path / "course" / "exports" / "class_report.html").read_text()
    )


def test_points_files_in_json_and_their_errors(tmp_path):
    good = tmp_path / "p.json"
    good.write_text('{"dropout_backward": 4}')
    assert load_points(good) == {"dropout_backward": 4.0}
    for text, message in (
        ("[points]\nno_such_check = 1\n", "no check called"),
        ("[points]\ndropout_backward = -1\n", "must be a number"),
        ("[points]\ndropout_backward = 'two'\n", "must be a number"),
        ("[points\n", "not valid TOML"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(PointsError, match=message):
            load_points(bad)
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(SAMPLE / "ada"), "--points", str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2 and "not valid TOML" in done.stderr


# --------------------------------------------------------------------------- Gradescope
def test_upload_results_for_gradescope(tmp_path, reference):
    """One upload gives one notebook's results.json (never a sum); the others are listed."""
    results = [g.result for g in graded_class(tmp_path, reference, ("ada", "carl"))]
    assert upload_results(results[0], []) == results_json(results[0]) | {
        "extra_data": results_json(results[0])["extra_data"] | {"not_graded": []}
    }
    one = upload_results(results[0], [(results[1].path, "only one notebook per upload")])
    validate_gradescope(one)
    assert (one["score"], one["max_score"]) == (results[0].score, results[0].max_score)
    assert f"Not graded: {results[1].path.name}" in one["output"]
    none = upload_results(None, [])
    assert none["score"] == 0 and none["tests"] == [] and ".ipynb" in none["output"]


# --------------------------------------------------------------------------- the command
def test_export_command_on_the_sample_class(tmp_path):
    """The documented command, without the gradebook (that half is in the slow tests)."""
    course = tmp_path / "course"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "export",
            str(SAMPLE),
            "--course",
            str(course),
            "--no-gradebook",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    notebooks = sorted(SAMPLE.glob("*/*/*.ipynb"))
    assert f"{len(notebooks)} notebooks, {len(notebooks)} feedback files" in done.stderr
    assert len(json.loads((course / "exports" / "results.json").read_text())) == len(notebooks)
    assert len(list((course / "feedback").glob("*/*/*.html"))) == len(notebooks)
    assert (
        len(list((course / ".grader-cache").glob("*/*.json")))
        >= len({p.read_bytes() for p in notebooks}) - 1
    )
    page = (course / "exports" / "class_report.html").read_text()
    assert re.search(r"dropout\.keep_prob_confusion", page)
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "export",
            str(SAMPLE),
            "--course",
            str(course),
            "--no-gradebook",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert again.returncode == 0 and f"{len(notebooks)} from the store, 0 graded" in again.stderr


def test_export_refuses_the_kit_repository_as_course(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "grader", "export", str(SAMPLE / "ada"), "--course", str(ROOT)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "folder of its own" in done.stderr
    assert not (ROOT / "exports").exists() and not (ROOT / ".grader-cache").exists()
