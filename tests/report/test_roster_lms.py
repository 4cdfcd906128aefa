"""The roster, missing and not-attempted submissions, and the Canvas and Moodle grade files.

The LMS files are read back the way each LMS documents its import: Canvas's required identity
columns and its "Points Possible" row, students matched by their Canvas ``ID``; Moodle's
mapping of one identifier column ("Email address" to the user's email, case-sensitive, a row
whose user is unknown stops the whole import) and grade values that are numbers, blank or "-".
"""

from __future__ import annotations

import csv
import html
import io
import shutil
from pathlib import Path

import nbformat
import pytest
from kit_testing import ROOT

from grader.checks import checks_for
from grader.checks.cases import salt_from_environment
from grader.grading import discover
from grader.report.display import for_people
from grader.report.exports import export_all
from grader.report.roster import RosterError, load_roster
from grader.store import Context, grade_with_store

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
ROSTER = ROOT / "data" / "sample_class" / "roster.csv"


def graded_batch(tmp_path: Path, reference, pairs: list[tuple[str, str]]):
    root = tmp_path / "in" / "submitted"
    for student, assignment in pairs:
        shutil.copytree(SAMPLE / student / assignment, root / student / assignment)
    return grade_with_store(
        discover([root]),
        store=None,
        context=Context(salt_from_environment(), reference),
        progress=False,
    )


def untouched(student: str, assignment: str) -> bool:
    """Independent evidence: the submission's code cells are the released notebook's."""

    def code(path):
        return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]

    try:
        mine = code(SAMPLE / student / assignment / f"{assignment}.ipynb")
    except Exception:  # noqa: BLE001 - a corrupt notebook is not an untouched one
        return False
    return mine == code(ROOT / "notebooks" / assignment / f"{assignment}.ipynb")


def rows_of(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


# --------------------------------------------------------------------------- the roster
def test_roster_schema_and_its_errors(tmp_path):
    roster = load_roster(ROSTER)
    folders = {p.name for p in SAMPLE.iterdir()}
    assert folders < set(roster) and len(set(roster) - folders) == 1  # one never handed in
    ada = roster["ada"]
    assert ada.email == "ada@example.edu" and ada.lms_id and ada.names() == ("Ada", "Example")
    path = tmp_path / "students.csv"
    path.write_text(
        "\ufeffID,Name,Email,LMS_ID,First_Name,Last_Name\nx1,Zhang Wei,z@x.edu,7,Wei,Zhang\n"
    )
    [student] = load_roster(path).values()
    assert student.names() == ("Wei", "Zhang") and student.lms_id == "7"
    for text, message in (
        ("name,email\nAda,a@x\n", "needs an 'id' column"),
        ("id,name\nada,Ada\nada,Ada again\n", "appears twice"),
        ("id,name\n,Nobody\n", "without an id"),
    ):
        path.write_text(text)
        with pytest.raises(RosterError, match=message):
            load_roster(path)


# --------------------------------------------------------------------------- missing, not attempted
def test_missing_and_not_attempted_are_counted_apart(tmp_path, reference):
    students = sorted(p.parent.parent.name for p in SAMPLE.glob("*/02_dropout/02_dropout.ipynb"))
    graded = graded_batch(tmp_path, reference, [(s, "02_dropout") for s in students])
    course = tmp_path / "course"
    export_all(graded, course, gradebook=False, roster=load_roster(ROSTER), list_students=True)
    rows = rows_of(course / "exports" / "grades.csv")
    by_status: dict[str, set[str]] = {}
    for row in rows:
        by_status.setdefault(row["status"], set()).add(row["student"])
    expected_untouched = {s for s in students if untouched(s, "02_dropout")}
    assert expected_untouched and by_status["not attempted"] == expected_untouched
    assert by_status["missing"] == set(load_roster(ROSTER)) - set(students)
    assert by_status["could not be run"] == {g.student for g in graded if g.result.error}
    assert all(r["score"] == "" for r in rows if r["status"] == "missing")
    page = (course / "exports" / "class_report.html").read_text()
    assert f"<b>{len(by_status['missing'])}</b>missing" in page
    assert f"<b>{len(expected_untouched)}</b>not attempted" in page
    for student in expected_untouched:
        assert html.escape(student) in page.split("untouched")[1].split("</li>")[0]
    # the untouched notebooks are not counted as failing the checks (corrupt ones still are)
    attempted = len(students) - len(expected_untouched)
    for check in checks_for("02_dropout"):
        assert f"/{attempted})" in page.split(f"<code>{check.id}</code>")[1].split("</tr>")[0]


def test_students_of_other_assignments_in_the_batch_count_as_missing(tmp_path, reference):
    graded = graded_batch(tmp_path, reference, [("ada", "02_dropout"), ("aiko", "01_norms")])
    course = tmp_path / "course"
    export_all(graded, course, gradebook=False)
    missing = {
        (r["student"], r["assignment"])
        for r in rows_of(course / "exports" / "grades.csv")
        if r["status"] == "missing"
    }
    assert missing == {("aiko", "02_dropout"), ("ada", "01_norms")}
    assert not (course / "exports" / "canvas_grades.csv").exists()  # no roster: no LMS files


# --------------------------------------------------------------------------- Canvas and Moodle
def read_canvas(path: Path) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    """Canvas's reading: identity columns, the "Points Possible" row, students by their ID."""
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header = table[0]
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assignments = header[5:]
    points_rows = [r for r in table[1:] if r and r[0].strip() == "Points Possible"]
    assert len(points_rows) == 1
    points = {a: float(v) for a, v in zip(assignments, points_rows[0][5:], strict=True)}
    students = {}
    for row in table[1:]:
        if row[0].strip() == "Points Possible":
            continue
        assert row[1], f"no Canvas ID for {row[0]}"
        students[row[1]] = dict(zip(header, row, strict=True))
    return points, students


def read_moodle(path: Path, roster) -> dict[str, dict[str, str]]:
    """Moodle's reading, mapping "Email address" to the user's email (case-sensitive)."""
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header = table[0]
    email_column = header.index("Email address")
    users = {s.email: s for s in roster.values() if s.email}
    read = {}
    for row in table[1:]:
        if len(row) <= 1:
            continue  # Moodle skips lines without data
        assert row[email_column] in users, "Moodle would stop the whole import at this row"
        for column, value in zip(header, row, strict=True):
            if column in ("Full name", "Email address") or column.endswith(" feedback"):
                continue
            assert value in ("", "-") or float(value) >= 0  # Moodle's unformat_float
        read[users[row[email_column]].id] = dict(zip(header, row, strict=True))
    return read


def test_canvas_and_moodle_files_read_back_as_each_lms_documents(tmp_path, reference):
    pairs = [(s, "02_dropout") for s in ("ada", "carl", "gus", "lee", "mo")] + [
        ("aiko", "01_norms")
    ]
    graded = graded_batch(tmp_path, reference, pairs)
    roster = load_roster(ROSTER)
    course = tmp_path / "course"
    export_all(graded, course, gradebook=False, roster=roster)
    scores = {(g.student, g.result.assignment): g.result for g in graded}

    points, canvas = read_canvas(course / "exports" / "canvas_grades.csv")
    assert points == {
        a: float(sum(c.points for c in checks_for(a))) for a in ("01_norms", "02_dropout")
    }
    assert set(canvas) == {s.lms_id for s in roster.values()}  # every roster student, by ID
    for student in roster.values():
        row = canvas[student.lms_id]
        assert row["Student"] == student.name and row["Section"] == student.section
        for assignment in points:
            result = scores.get((student.id, assignment))
            assert row[assignment] == ("" if result is None else str(result.score))

    moodle = read_moodle(course / "exports" / "moodle_grades.csv", roster)
    assert set(moodle) == set(roster)
    for student_id, row in moodle.items():
        for assignment in points:
            result = scores.get((student_id, assignment))
            if result is None:
                assert row[assignment] == "" and "No notebook" in row[f"{assignment} feedback"]
            else:
                assert float(row[assignment]) == result.score
                assert f"Score {for_people(result.score)} / " in row[f"{assignment} feedback"]


def test_lms_files_leave_out_or_name_students_they_cannot_identify(tmp_path, reference):
    roster_file = tmp_path / "students.csv"
    roster_file.write_text(
        'id,name,email,lms_id\nada,=HYPERLINK("http://x"),ada@x.edu,1\ncarl,Carl,,\n'
    )
    graded = graded_batch(tmp_path, reference, [("ada", "02_dropout"), ("carl", "02_dropout")])
    report = export_all(
        graded, tmp_path / "course", gradebook=False, roster=load_roster(roster_file)
    )
    assert any("Canvas" in w and "carl" in w for w in report.warnings)
    assert any("Moodle" in w and "carl" in w for w in report.warnings)
    canvas = (tmp_path / "course" / "exports" / "canvas_grades.csv").read_text()
    assert "'=HYPERLINK" in canvas and ",=HYPERLINK" not in canvas  # never a formula
    moodle = read_moodle(
        tmp_path / "course" / "exports" / "moodle_grades.csv", load_roster(roster_file)
    )
    assert set(moodle) == {"ada"}


# --------------------------------------------------------------------------- rounded for people
def test_feedback_rounds_scores_but_the_data_stays_exact(tmp_path, reference):
    graded = graded_batch(tmp_path, reference, [("gus", "02_dropout")])
    [g] = graded
    assert round(g.result.score, 2) != g.result.score  # a score with more than two decimals
    course = tmp_path / "course"
    export_all(graded, course, gradebook=False)
    for suffix in ("md", "html"):
        text = (course / "feedback" / "gus" / "02_dropout" / f"02_dropout.{suffix}").read_text()
        assert f"Score: {round(g.result.score, 2):g} / " in text and str(g.result.score) not in text
    [row] = rows_of(course / "exports" / "grades.csv")
    assert float(row["score"]) == g.result.score
