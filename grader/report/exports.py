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
    DIR/.grader-cache/                                 the result store (resume, regrade)

Points come from the points file, the same in every export.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.report.class_report import class_report_html
from grader.report.feedback import feedback_html, feedback_markdown
from grader.report.gradescope import results_json
from grader.report.nbgrader_export import (
    GradebookReport,
    nbgrader_available,
    place,
    prepare_assignments,
    submitted_conflict,
    write_course_copies,
    write_feedback,
    write_gradebook,
)
from grader.report.points import apply_points
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
    graded: list[Graded], due: str | None = None, students: list[str] | None = None
) -> str:
    """The class CSV: who, when (and how late), the total and every check's score, the diagnoses."""
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
            "score",
            "max_score",
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
                r.score,
                r.max_score,
                *[by_id.get(c, "") for c in check_ids],
                " ".join(sorted({d for c in r.checks for d in c.diagnosis})),
                r.error,
                r.isolation,
            ]
        )
    return csv_text(rows)


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
) -> ExportReport:
    """Write every export of ``graded`` into ``course`` (see the module docstring)."""
    points = points or {}
    report = ExportReport()
    graded = with_points(graded, points)
    placements, warnings = place(graded)
    report.warnings += warnings
    course = Path(course)
    exports = course / "exports"

    # Gradescope results.json: one per submission, and all of them as a list
    everything = []
    for p in placements:
        data = results_json(p.result, submitted_at=p.graded.timestamp)
        data["extra_data"]["student"] = p.student
        everything.append(data)
        write_atomic(
            exports / "gradescope" / p.student / p.assignment / f"{p.submitted_name}.json",
            json.dumps(data, indent=2) + "\n",
        )
    write_atomic(exports / "results.json", json.dumps(everything, indent=2) + "\n")
    report.written["Gradescope results.json (all)"] = exports / "results.json"
    report.written["Gradescope results.json (each)"] = exports / "gradescope"

    write_atomic(exports / "grades.csv", graded_csv(graded, due, [p.student for p in placements]))
    report.written["class CSV"] = exports / "grades.csv"

    for p in placements:
        named = _named(p)
        write_feedback(
            course,
            p,
            feedback_markdown(named, submitted_at=p.graded.timestamp),
            feedback_html(named, submitted_at=p.graded.timestamp),
        )
        report.feedback += 1
    report.written["feedback (HTML + Markdown)"] = course / "feedback"

    title = f"Class report: {', '.join(sorted({p.assignment for p in placements}))}"
    report_path = exports / "class_report.html"
    write_atomic(
        report_path,
        class_report_html(
            [_named(p) for p in placements], list_students=list_students, title=title
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
            for p in placements:
                conflict = submitted_conflict(course, p) if p.in_gradebook else ""
                if conflict:
                    p.in_gradebook = False
                    gb_report.warnings.append(conflict)
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
            report.gradebook = gb_report
            report.warnings += gb_report.warnings
            report.written["nbgrader gradebook"] = course / "gradebook.db"
            report.written["autograded copies"] = course / "autograded"
    return report


def _named(p):
    """The result under the student id used in the course (flat folders get one from the file)."""
    import dataclasses

    return dataclasses.replace(p.result, student=p.student)
