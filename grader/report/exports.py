"""Every export of a graded batch, written into one course directory.

    python -m grader export SUBMITTED... --course DIR

writes (``DIR`` is an nbgrader course directory; a new one is set up when it does not exist)::

    DIR/gradebook.db                                   nbgrader gradebook: auto scores per grade cell
    DIR/submitted/<student>/<assignment>/<nb>.ipynb    copies, unless the input already is DIR/submitted
    DIR/autograded/<student>/<assignment>/<nb>.ipynb   copies for formgrader (+ timestamp.txt)
    DIR/feedback/<student>/<assignment>/<nb>.html      feedback for the student (+ .md), release_feedback-ready
    DIR/exports/grades.csv                             one row per notebook, one column per check
    DIR/exports/results.json                           every Gradescope results.json, as a list
    DIR/exports/gradescope/<student>/<assignment>/<nb>.json   one Gradescope results.json each
    DIR/exports/class_report.html                      the class report (aggregated)
    DIR/exports/canvas_grades.csv                      Canvas's gradebook import CSV
    DIR/exports/moodle_grades.csv                      Moodle's grade import CSV
    DIR/.grader-cache/                                 the result store (resume, regrade)

Points come from the points file, the same in every export. The roster, the late policy and
the extensions (:mod:`grader.report.bookkeeping`) are applied the same way everywhere too: raw
scores in the store and the gradebook's auto scores, the penalty beside them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.report.attendance import MISSING, status
from grader.report.bookkeeping import Books, keep_books, lms_grades, write_to_gradebook
from grader.report.class_report import class_report_html
from grader.report.display import for_people
from grader.report.feedback import feedback_html, feedback_markdown
from grader.report.gradescope import results_json, with_late_penalty
from grader.report.late_policy import NO_EXTENSIONS, Extensions, LatePolicy
from grader.report.lms import canvas_csv, moodle_csv
from grader.report.nbgrader_export import (
    GradebookReport,
    nbgrader_available,
    place,
    prepare_assignments,
    write_course_copies,
    write_feedback,
    write_gradebook,
)
from grader.report.points import apply_points
from grader.report.roster import Student
from grader.report.spreadsheet import csv_text
from grader.store import Graded, parse_timestamp, write_atomic


@dataclass
class ExportReport:
    written: dict[str, Path] = field(default_factory=dict)  # what -> where
    feedback: int = 0
    gradebook: GradebookReport | None = None
    warnings: list[str] = field(default_factory=list)


def with_points(graded: list[Graded], points: dict[str, float]) -> list[Graded]:
    return [
        Graded(
            g.target, apply_points(g.result, points), g.timestamp, g.timestamp_source, g.from_store
        )
        for g in graded
    ]


def graded_csv(
    graded: list[Graded],
    due: str | None = None,
    students: list[str] | None = None,
    books: Books | None = None,
) -> str:
    """The class CSV: who, when (and how late), the total and every check's score, the diagnoses.

    ``status`` tells graded, not attempted, could not be run and missing apart; with ``books``
    (see :func:`grader.report.bookkeeping.keep_books`) the late penalty and the final score are
    filled in, and every missing student gets a row with no score.
    """
    due_at = parse_timestamp(due) if due else None
    check_ids: list[str] = []
    for g in graded:
        check_ids += [c.check.id for c in g.result.checks if c.check.id not in check_ids]
    rows: list[list] = [
        [
            "student",
            "assignment",
            "notebook",
            "sha256",
            "submitted_at",
            "timestamp_source",
            "seconds_late",
            "status",
            "score",
            "max_score",
            "late_penalty",
            "final_score",
            *check_ids,
            "misconceptions",
            "error",
            "isolation",
        ]
    ]
    for i, g in enumerate(graded):
        r = g.result
        by_id = {c.check.id: c.score for c in r.checks}
        late = ""
        if due_at is not None and g.timestamp:
            late = max(
                0.0, round((dt.datetime.fromisoformat(g.timestamp) - due_at).total_seconds(), 1)
            )
        rows.append(
            [
                students[i] if students else r.student,
                r.assignment,
                str(r.path),
                r.sha256,
                g.timestamp,
                g.timestamp_source,
                late,
                status(r),
                r.score,
                r.max_score,
                *_late_cells(books, i, r.score),
                *[by_id.get(c, "") for c in check_ids],
                " ".join(sorted({d for c in r.checks for d in c.diagnosis})),
                r.error,
                r.isolation,
            ]
        )
    rows += _missing_rows(books, len(rows[0]))
    return csv_text(rows)


def _late_cells(books: Books | None, index: int, raw: float) -> list:
    """late_penalty and final_score of one row (blank penalty when no due date applies)."""
    late = books.late[index] if books is not None else None
    if late is None:
        return ["", raw]
    return [late.penalty, late.score]


def _missing_rows(books: Books | None, width: int) -> list[list]:
    """A row per missing submission: student, assignment, status "missing", nothing else."""
    if books is None:
        return []
    rows = []
    for assignment, students in books.missing.items():
        for student in students:
            row = [""] * width
            row[0], row[1], row[7] = student, assignment, MISSING
            rows.append(row)
    return rows


def export_all(
    graded: list[Graded],
    course: Path,
    *,
    points: dict[str, float] | None = None,
    gradebook: bool = True,
    due: str | None = None,
    list_students: bool = False,
    reference_dir: Path | None = None,
    salt: str | None = None,
    roster: dict[str, Student] | None = None,
    late_policy: LatePolicy | None = None,
    extensions: Extensions = NO_EXTENSIONS,
) -> ExportReport:
    """Write every export of ``graded`` into ``course`` (see the module docstring)."""
    points = points or {}
    report = ExportReport()
    graded = with_points(graded, points)
    placements, warnings = place(graded)
    report.warnings += warnings
    course = Path(course)
    exports = course / "exports"
    books = keep_books(
        placements,
        course,
        due=due,
        roster=roster,
        policy=late_policy,
        extensions=extensions,
        read_gradebook=gradebook and nbgrader_available(),
    )
    report.warnings += books.warnings

    # Gradescope results.json: one per submission, and all of them as a list
    everything = []
    for i, p in enumerate(placements):
        data = with_late_penalty(
            results_json(p.result, submitted_at=p.graded.timestamp), books.late[i]
        )
        data["extra_data"]["student"] = p.student
        everything.append(data)
        write_atomic(
            exports / "gradescope" / p.student / p.assignment / f"{p.submitted_name}.json",
            json.dumps(data, indent=2) + "\n",
        )
    write_atomic(exports / "results.json", json.dumps(everything, indent=2) + "\n")
    report.written["Gradescope results.json (all)"] = exports / "results.json"
    report.written["Gradescope results.json (each)"] = exports / "gradescope"

    write_atomic(
        exports / "grades.csv", graded_csv(graded, due, [p.student for p in placements], books)
    )
    report.written["class CSV"] = exports / "grades.csv"
    report.warnings += _write_lms_files(exports, placements, books, report)

    for i, p in enumerate(placements):
        named = _named(p)
        late = books.late[i]
        write_feedback(
            course,
            p,
            feedback_markdown(named, submitted_at=p.graded.timestamp, late=late),
            feedback_html(named, submitted_at=p.graded.timestamp, late=late),
        )
        report.feedback += 1
    report.written["feedback (HTML + Markdown)"] = course / "feedback"

    title = f"Class report: {', '.join(sorted({p.assignment for p in placements}))}"
    report_path = exports / "class_report.html"
    write_atomic(
        report_path,
        class_report_html(
            [_named(p) for p in placements],
            list_students=list_students,
            title=title,
            missing=books.missing,
        ),
    )
    report.written["class report"] = report_path

    if gradebook:
        if not nbgrader_available():
            report.warnings.append(
                "nbgrader is not installed: no gradebook (pip install 'dnn-discussion-kit[course]')"
            )
        else:
            gb_report = GradebookReport()
            assignments = sorted({p.assignment for p in placements if p.in_gradebook})
            prepare_assignments(
                course,
                assignments,
                points=points,
                reference_dir=reference_dir,
                salt=salt,
                report=gb_report,
            )
            for p in placements:
                if p.in_gradebook:
                    write_course_copies(course, p, p.assignment)
            write_gradebook(course, placements, due=due, report=gb_report)
            write_to_gradebook(course, placements, books)
            report.gradebook = gb_report
            report.warnings += gb_report.warnings
            report.written["nbgrader gradebook"] = course / "gradebook.db"
            report.written["autograded copies"] = course / "autograded"
    return report


def _write_lms_files(exports: Path, placements, books: Books, report: ExportReport) -> list[str]:
    """Canvas's and Moodle's import files: final scores, students mapped from the roster.

    Written only with a roster: without one the LMS cannot tell who is who.
    """
    if not books.roster:
        return []

    def feedback_line(i: int) -> str:
        p, late = placements[i], books.late[i]
        score = late.score if late is not None else p.result.score
        line = f"Score {for_people(score)} / {for_people(p.result.max_score)}"
        line += f" ({books.statuses[i]})." if books.statuses[i] != "graded" else "."
        return line + (f" {late.sentence()}" if late is not None and late.seconds_late > 0 else "")

    grades = lms_grades(placements, books, feedback_line)
    points_possible = {}
    for p in placements:
        if p.in_gradebook:
            points_possible.setdefault(p.assignment, p.result.max_score)
    canvas, canvas_warnings = canvas_csv(
        grades, books.roster, dict(sorted(points_possible.items()))
    )
    moodle, moodle_warnings = moodle_csv(grades, books.roster)
    write_atomic(exports / "canvas_grades.csv", canvas)
    write_atomic(exports / "moodle_grades.csv", moodle)
    report.written["Canvas grade import"] = exports / "canvas_grades.csv"
    report.written["Moodle grade import"] = exports / "moodle_grades.csv"
    return canvas_warnings + moodle_warnings


def _named(p):
    """The result under the student id used in the course (flat folders get one from the file)."""
    import dataclasses

    return dataclasses.replace(p.result, student=p.student)
