"""A course's bookkeeping at export: due dates, extensions, late penalties, missing submissions.

:func:`keep_books` works out, once per export, what every other export shows the same way:

* the due date of each assignment: ``--due``, else the one in nbgrader's gradebook;
* per submission: its status (:mod:`grader.report.attendance`) and, with a due date, its
  lateness and late penalty (:mod:`grader.report.late_policy`; extensions included);
* per assignment: who is missing (roster, gradebook and this batch, minus who handed in).

:func:`write_to_gradebook` then records it with nbgrader's own fields: the roster's names and
emails on each student, the extension on each submission, and the penalty as
``late_submission_penalty`` of the submitted notebook, so ``nbgrader export`` shows raw score,
penalty and score. Auto scores stay raw.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from grader.report.attendance import KnownClass, gradebook_class, known_class, status
from grader.report.late_policy import NO_EXTENSIONS, Extensions, Late, LatePolicy, late_for
from grader.report.lms import Grade
from grader.report.roster import Student
from grader.store import parse_timestamp


@dataclass
class Books:
    """What :func:`keep_books` found; lists are indexed like the placements."""

    statuses: list[str]
    late: list[Late | None]
    missing: dict[str, list[str]]  # assignment -> student ids, sorted
    due: dict[str, dt.datetime]  # assignment -> due date (UTC)
    roster: dict[str, Student] = field(default_factory=dict)
    policy: LatePolicy | None = None
    extensions: Extensions = NO_EXTENSIONS
    warnings: list[str] = field(default_factory=list)

    def final_score(self, index: int, raw: float) -> float:
        late = self.late[index]
        return late.score if late is not None else raw


def gradebook_due_dates(course: Path) -> dict[str, dt.datetime]:
    """Due dates set in nbgrader's gradebook (``nbgrader db assignment add --duedate``)."""
    if not (Path(course) / "gradebook.db").is_file():
        return {}
    from grader.report.nbgrader_export import _gradebook, nbgrader_available

    if not nbgrader_available():
        return {}
    with _gradebook(Path(course)) as gb:
        return {
            a.name: a.duedate.replace(tzinfo=dt.UTC)  # nbgrader keeps naive UTC
            for a in gb.assignments
            if a.duedate is not None
        }


def keep_books(
    placements: list,
    course: Path,
    *,
    due: str | None = None,
    roster: dict[str, Student] | None = None,
    policy: LatePolicy | None = None,
    extensions: Extensions = NO_EXTENSIONS,
    read_gradebook: bool = True,
) -> Books:
    """Statuses, lateness, penalties and missing students for ``placements`` (see the module)."""
    roster = roster or {}
    counted = [p for p in placements if p.in_gradebook]
    assignments = sorted({p.assignment for p in counted})
    known_before = gradebook_class(course) if read_gradebook else KnownClass()
    due_dates = gradebook_due_dates(course) if read_gradebook else {}
    if due:
        due_at = parse_timestamp(due)
        due_dates = {**due_dates, **dict.fromkeys(assignments, due_at)}
    books = Books(
        statuses=[status(p.result) for p in placements],
        late=[None] * len(placements),
        missing={},
        due=due_dates,
        roster=roster,
        policy=policy,
        extensions=extensions,
    )
    if policy is not None:
        undated = [a for a in assignments if a not in due_dates]
        if undated:
            books.warnings.append(
                f"no due date for {', '.join(undated)} (give --due, or set it in the gradebook): "
                "no late penalty there"
            )
    guessed = [p.student for p in counted if p.graded.timestamp_source == "mtime"]
    if policy is not None and guessed:
        books.warnings.append(
            f"{len(guessed)} submission(s) have no timestamp.txt, so their time is the file's "
            f"modification time (a copy changes it): {', '.join(sorted(guessed)[:10])}"
            f"{' …' if len(guessed) > 10 else ''}"
        )
    for i, p in enumerate(placements):
        books.late[i] = late_for(
            p.graded.timestamp,
            due_dates.get(p.assignment),
            raw_score=p.result.score,
            max_score=p.result.max_score,
            policy=policy,
            extension=extensions.for_student(p.student, p.assignment),
        )
    known = known_class(
        [(p.student, p.assignment) for p in counted], roster=roster, gradebook=known_before
    )
    books.missing = {a: known.missing(a) for a in assignments}
    strangers = sorted(extensions.students - known.students)
    if strangers:
        books.warnings.append(f"extensions for unknown students: {', '.join(strangers)}")
    return books


def lms_grades(placements: list, books: Books, feedback_line) -> list[Grade]:
    """One :class:`Grade` per counted submission and per missing student, for the LMS files.

    ``feedback_line(index)`` gives the one-line feedback of placement ``index``.
    """
    grades = [
        Grade(p.student, p.assignment, books.final_score(i, p.result.score), feedback_line(i))
        for i, p in enumerate(placements)
        if p.in_gradebook
    ]
    for assignment, students in books.missing.items():
        grades += [Grade(s, assignment, None, "No notebook was handed in.") for s in students]
    return grades


def write_to_gradebook(course: Path, placements: list, books: Books) -> None:
    """Roster names and emails, extensions and late penalties, in nbgrader's own fields."""
    from nbgrader.api import MissingEntry
    from sqlalchemy.exc import SAWarning

    from grader.report.nbgrader_export import _gradebook

    with _gradebook(Path(course)) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        for student in books.roster.values():
            first, last = student.names()
            gb.update_or_create_student(
                student.id, first_name=first, last_name=last, email=student.email or None
            )
        for i, p in enumerate(placements):
            if not p.in_gradebook:
                continue
            try:
                submission = gb.find_submission(p.assignment, p.student)
            except MissingEntry:
                continue
            extension = books.extensions.for_student(p.student, p.assignment)
            submission.extension = extension if extension else None
            late = books.late[i]
            for notebook in submission.notebooks:
                if notebook.name != p.assignment:
                    continue  # one notebook per assignment in the kit: never charged twice
                notebook.late_submission_penalty = (
                    late.penalty if late is not None and late.penalty > 0 else None
                )
        gb.db.commit()
