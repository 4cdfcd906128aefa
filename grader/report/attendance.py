"""Who handed in what: missing submissions and untouched notebooks, apart from wrong answers.

Every student the course knows of gets one status per assignment:

* ``missing``: known to the class (in the roster, in the nbgrader gradebook, or with a notebook
  for another assignment of this batch) but with no notebook for this assignment;
* ``not attempted``: the notebook was handed in, but every case of every check still meets the
  released stub (the functions raise ``NotImplementedError``);
* ``could not be run``: the notebook is corrupt or could not be graded (``result.error``);
* ``graded``: everything else, right or wrong.

Missing and not-attempted notebooks are counted and listed apart, so the pass rates and the
misconceptions of the class report describe the answers students actually wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from grader.grading import SubmissionResult
from grader.runner.judging import NOT_IMPLEMENTED_MESSAGE

GRADED = "graded"
NOT_ATTEMPTED = "not attempted"
UNRUNNABLE = "could not be run"
MISSING = "missing"


def not_attempted(result: SubmissionResult) -> bool:
    """True when every case of every check failed because its function is still the stub."""
    if result.error or not result.checks:
        return False
    return all(
        check.cases
        and all(not case.passed and case.message == NOT_IMPLEMENTED_MESSAGE for case in check.cases)
        for check in result.checks
    )


def status(result: SubmissionResult) -> str:
    """``graded``, ``not attempted`` or ``could not be run`` for a notebook that was handed in."""
    if result.error:
        return UNRUNNABLE
    return NOT_ATTEMPTED if not_attempted(result) else GRADED


@dataclass
class KnownClass:
    """Everyone the course knows of, and who has a submission for which assignment."""

    students: set[str] = field(default_factory=set)
    submitted: dict[str, set[str]] = field(default_factory=dict)  # assignment -> students

    def add(self, student: str, assignment: str | None = None) -> None:
        if not student:
            return
        self.students.add(student)
        if assignment:
            self.submitted.setdefault(assignment, set()).add(student)

    def missing(self, assignment: str) -> list[str]:
        """Known students with no submission for ``assignment``, sorted."""
        return sorted(self.students - self.submitted.get(assignment, set()))


def gradebook_class(course: Path) -> KnownClass:
    """The students and submissions already in ``course/gradebook.db`` (empty when there is none).

    nbgrader's student table is the course's own roster (``nbgrader db student import``), and its
    submissions are those of earlier exports or ``nbgrader autograde``.
    """
    known = KnownClass()
    if not (Path(course) / "gradebook.db").is_file():
        return known
    from grader.report.nbgrader_export import _gradebook, nbgrader_available

    if not nbgrader_available():
        return known
    with _gradebook(Path(course)) as gb:
        for student in gb.students:
            known.add(student.id)
            for submission in student.submissions:
                known.add(student.id, submission.assignment.name)
    return known


def known_class(
    handed_in: Iterable[tuple[str, str]],
    *,
    roster: Iterable[str] = (),
    gradebook: KnownClass | None = None,
) -> KnownClass:
    """The roster, the gradebook and this batch's ``(student, assignment)`` pairs together."""
    known = KnownClass()
    for student in roster:
        known.add(student)
    if gradebook is not None:
        known.students |= gradebook.students
        for assignment, students in gradebook.submitted.items():
            known.submitted.setdefault(assignment, set()).update(students)
    for student, assignment in handed_in:
        known.add(student, assignment)
    return known
