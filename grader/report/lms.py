"""Grade files for the LMSs most courses use: Canvas's and Moodle's grade import CSV.

Both hold the final score (after any late penalty) of every student the course knows of, one
column per assignment; a missing submission is left blank (both LMSs read a blank cell as "no
grade"; Canvas then keeps what its gradebook has). Students are identified from the roster
(:mod:`grader.report.roster`).

Canvas (Grades → Import), as Canvas's own gradebook export writes it::

    Student,ID,SIS User ID,SIS Login ID,Section,02_dropout
    Points Possible,,,,,10
    Ada Lovelace,40101,,,Lab A,10

``ID`` is the roster's ``lms_id`` (Canvas's user id: Canvas matches a row by it, else by the SIS
ids, else by the name). An assignment column whose header is not an existing assignment's name
(or ``Name (canvas id)``) becomes a new assignment, with the points of the "Points Possible" row.

Moodle (Grade administration → Import → CSV file)::

    Full name,Email address,02_dropout,02_dropout feedback
    Ada Lovelace,ada@example.edu,10,Score 10 / 10.

On Moodle's preview page, map *from* "Email address" *to* "Email address" (``useremail``), each
grade column to its grade item and each feedback column to that item's feedback. Moodle stops the
whole import at a row whose user it cannot find, so students without an email are left out (and
named in a warning). Moodle compares email addresses case-sensitively: the roster's are kept as
they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.report.roster import Student
from grader.report.spreadsheet import csv_text

CANVAS_ID_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "Points Possible"
MOODLE_ID_COLUMNS = ("Full name", "Email address")


@dataclass(frozen=True)
class Grade:
    """One student's grade for one assignment: ``score`` None means nothing was handed in."""

    student: str
    assignment: str
    score: float | None
    feedback: str = ""


def _students_in_order(grades: list[Grade], roster: dict[str, Student]) -> list[str]:
    """The roster's order first, then everyone else by id."""
    others = sorted({g.student for g in grades} - set(roster))
    return [s for s in roster if any(g.student == s for g in grades)] + others


def _table(grades: list[Grade]) -> dict[tuple[str, str], Grade]:
    return {(g.student, g.assignment): g for g in grades}


def canvas_csv(
    grades: list[Grade], roster: dict[str, Student], points_possible: dict[str, float]
) -> tuple[str, list[str]]:
    """Canvas's gradebook import CSV and warnings (students Canvas can only match by name)."""
    assignments = list(points_possible)
    table = _table(grades)
    rows: list[list] = [
        [*CANVAS_ID_COLUMNS, *assignments],
        [CANVAS_POINTS_ROW, "", "", "", "", *(points_possible[a] for a in assignments)],
    ]
    no_id = []
    for student_id in _students_in_order(grades, roster):
        student = roster.get(student_id, Student(student_id))
        if not student.lms_id:
            no_id.append(student_id)
        cells = []
        for a in assignments:
            grade = table.get((student_id, a))
            cells.append("" if grade is None or grade.score is None else grade.score)
        rows.append([student.name or student_id, student.lms_id, "", "", student.section, *cells])
    warnings = []
    if no_id:
        warnings.append(
            f"Canvas: {len(no_id)} student(s) have no lms_id in the roster, so Canvas can only "
            f"match them by name: {', '.join(no_id[:10])}{' …' if len(no_id) > 10 else ''}"
        )
    return csv_text(rows), warnings


def moodle_csv(grades: list[Grade], roster: dict[str, Student]) -> tuple[str, list[str]]:
    """Moodle's grade import CSV (users identified by email) and warnings (who was left out)."""
    assignments = sorted({g.assignment for g in grades})
    table = _table(grades)
    header = [*MOODLE_ID_COLUMNS]
    for a in assignments:
        header += [a, f"{a} feedback"]
    rows: list[list] = [header]
    left_out = []
    for student_id in _students_in_order(grades, roster):
        student = roster.get(student_id)
        if student is None or not student.email:
            left_out.append(student_id)
            continue
        cells = []
        for a in assignments:
            grade = table.get((student_id, a))
            cells.append("" if grade is None or grade.score is None else grade.score)
            cells.append(grade.feedback if grade is not None else "")
        rows.append([student.name or student_id, student.email, *cells])
    warnings = []
    if left_out:
        warnings.append(
            f"Moodle: {len(left_out)} student(s) without an email in the roster were left out "
            f"(Moodle identifies users by email): {', '.join(left_out[:10])}"
            f"{' …' if len(left_out) > 10 else ''}"
        )
    return csv_text(rows), warnings
