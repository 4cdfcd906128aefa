"""Our results in an nbgrader course directory: gradebook scores, ``autograded/`` and ``feedback/``.

So that nbgrader's own tools work on what our grader found:

* ``gradebook.db``: the assignment and its grade cells are registered the way nbgrader does it
  (``nbgrader generate_assignment`` on the solution notebook, reusing :mod:`grader.course`), then
  every submission is added with its timestamp, and each autograded grade cell gets
  ``auto_score`` = (fraction of the check's cases passed) × (the cell's max points). The written
  answers stay ungraded, for ``formgrader``; a manual override already in the gradebook is kept.
  ``nbgrader export`` then produces the class CSV with our scores.
* ``autograded/<student>/<assignment>/<notebook>.ipynb``: a copy of the submission (formgrader
  shows it; the submission itself is never touched), with its ``timestamp.txt``.
* ``feedback/<student>/<assignment>/<notebook>.html`` (+ ``.md``) with ``timestamp.txt`` and
  ``submission_secret.txt`` copied from the submission, which ``nbgrader release_feedback`` needs.

Names: the gradebook's assignment and notebook are the kit's (``02_dropout``); the feedback file
keeps the name the student submitted, because ``nbgrader fetch_feedback`` looks it up by that name.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from grader.checks import NOTEBOOKS, checks_for
from grader.layout import valid_identity
from grader.store import TIMESTAMP_FILE, Graded, write_atomic

SECRET_FILE = "submission_secret.txt"  # written by `nbgrader submit`, needed by release_feedback
COMPANIONS = (TIMESTAMP_FILE, SECRET_FILE)


def nbgrader_available() -> bool:
    try:
        import nbgrader.api  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Placement:
    """Where one graded submission goes in the course directory."""

    graded: Graded
    student: str
    assignment: str  # nbgrader's assignment id (the kit's)
    submitted_name: str  # the notebook's name as submitted, without .ipynb
    in_gradebook: bool = True  # False for duplicates and unknown assignments

    @property
    def result(self):
        return self.graded.result


def safe_name(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text).strip("._")
    return cleaned or "unnamed"


def place(graded: list[Graded]) -> tuple[list[Placement], list[str]]:
    """Student ids and names for every submission; the first notebook per (student, assignment)
    named like the assignment wins its gradebook entry, later ones are reported."""
    warnings: list[str] = []
    taken: dict[tuple[str, str], str] = {}
    # ids from the layout are the students' own; a loose notebook's name never takes one of them
    used = {g.target.student for g in graded if valid_identity(g.target.student)}
    order = sorted(
        range(len(graded)), key=lambda i: graded[i].target.path.stem != graded[i].result.assignment
    )
    chosen: dict[int, Placement] = {}
    for i in order:
        g = graded[i]
        student, valid = g.target.student, True  # a folder name of nbgrader's layout
        if student and not valid_identity(student):
            valid = False
            warnings.append(
                f"{g.target.path}: {student[:80]!r} is not a valid student id: not in the gradebook"
            )
        if not student or not valid:  # a flat folder of notebooks: the file name names the student
            base = safe_name(g.target.path.stem)[:56] if valid else "invalid-student"
            student, n = base, 1
            while student in used:
                n += 1
                student = f"{base}-{n}"
        used.add(student)
        assignment = g.result.assignment
        p = Placement(g, student, assignment, safe_name(g.target.path.stem)[:64], valid)
        if not p.in_gradebook:  # an invalid id: reported above
            pass
        elif assignment not in NOTEBOOKS:
            p.in_gradebook = False
            warnings.append(f"{g.target.path}: unknown assignment, not written to the gradebook")
        elif (student, assignment) in taken:
            p.in_gradebook = False
            warnings.append(
                f"{g.target.path}: {student} has another notebook for {assignment} "
                f"({taken[(student, assignment)]}); only that one is in the gradebook"
            )
        else:
            taken[(student, assignment)] = g.target.path.name
        chosen[i] = p
    placements = [chosen[i] for i in range(len(graded))]
    return placements, warnings


# --------------------------------------------------------------------------- files
def _copy_companions(source_dir: Path, destination: Path, *, replace: bool = True) -> None:
    for name in COMPANIONS:
        source = source_dir / name
        if source.is_file() and source.stat().st_size < 4096:
            if replace or not (destination / name).exists():
                shutil.copyfile(source, destination / name)


def write_feedback(course: Path, placement: Placement, markdown: str, html_text: str) -> Path:
    """feedback/<student>/<assignment>/<notebook>.html and .md, plus timestamp and secret."""
    folder = course / "feedback" / placement.student / placement.assignment
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / f"{placement.submitted_name}.html"
    write_atomic(html_path, html_text)
    write_atomic(folder / f"{placement.submitted_name}.md", markdown)
    _copy_companions(placement.graded.target.path.parent, folder)
    if not (folder / TIMESTAMP_FILE).exists() and placement.graded.timestamp:
        (folder / TIMESTAMP_FILE).write_text(_nbgrader_time(placement.graded.timestamp))
    return html_path


def _nbgrader_time(iso: str) -> str:
    """ISO 8601 (UTC) as nbgrader writes timestamps (``%Y-%m-%d %H:%M:%S.%f %Z``)."""
    import datetime as dt

    return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def submitted_conflict(course: Path, placement: Placement) -> str:
    """Why ``placement`` may not be copied into ``COURSE/submitted/`` ("" when it may).

    That folder is nbgrader's record of what was submitted: a file already there that differs
    from the graded one (the notebook or its timestamp/secret) is never replaced.
    """
    source = placement.graded.target.path
    folder = course / "submitted" / placement.student / placement.assignment
    destination = folder / f"{placement.submitted_name}.ipynb"
    if destination.exists() and destination.resolve() == source.resolve():
        return ""
    pairs = [(source, destination)] + [(source.parent / n, folder / n) for n in COMPANIONS]
    for mine, theirs in pairs:
        if mine.is_file() and theirs.exists() and not filecmp.cmp(mine, theirs, shallow=False):
            return (
                f"{theirs} exists and differs from {mine}: left as it is, and this submission "
                "is not written to the gradebook (grade that course's submitted/ folder itself, "
                "or export into another --course)"
            )
    return ""


def write_course_copies(course: Path, placement: Placement, notebook_name: str) -> None:
    """submitted/ (unless the submission already lives there) and autograded/ copies; a file
    already in submitted/ is never replaced (see :func:`submitted_conflict`)."""
    source = placement.graded.target.path
    for step in ("submitted", "autograded"):
        folder = course / step / placement.student / placement.assignment
        name = placement.submitted_name if step == "submitted" else notebook_name
        destination = folder / f"{name}.ipynb"
        if destination.exists() and destination.resolve() == source.resolve():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        keep = step == "submitted"  # nbgrader's record: only ever added to
        if not destination.exists() or not (
            keep or filecmp.cmp(source, destination, shallow=False)
        ):
            shutil.copy2(source, destination)
        _copy_companions(source.parent, folder, replace=not keep)
        if not (folder / TIMESTAMP_FILE).exists() and placement.graded.timestamp:
            (folder / TIMESTAMP_FILE).write_text(_nbgrader_time(placement.graded.timestamp))


# --------------------------------------------------------------------------- the gradebook
@dataclass
class GradebookReport:
    #: how each assignment got into the gradebook
    registered: list[str] = field(default_factory=list)
    written: int = 0
    warnings: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _gradebook(course: Path):
    """nbgrader's Gradebook; a new database runs the ``alembic`` beside our Python (as in
    :func:`grader.course.nbgrader_environment`), so that folder is put on PATH meanwhile."""
    from nbgrader.api import Gradebook

    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old])
    try:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            yield gb
    finally:
        os.environ["PATH"] = old


def prepare_assignments(
    course: Path,
    assignments: list[str],
    *,
    points: dict[str, float],
    reference_dir: Path | None,
    salt: str | None,
    report: GradebookReport,
) -> None:
    """Make sure each assignment, its notebook and grade cells are in the course's gradebook.

    A new course gets the repository's ``nbgrader_config.py`` and the solution notebook (with the
    course's points written into its grade cells); ``nbgrader generate_assignment`` registers it.
    Without a solution notebook (or in a course with its own config) the cells are registered
    from the check library. Grade cells of our checks get the course's points as max score.
    """
    from nbgrader.api import MissingEntry

    from grader import course as stock

    course.mkdir(parents=True, exist_ok=True)
    solutions = reference_dir.parent if reference_dir else None
    repo_config = solutions.parent / "nbgrader_config.py" if solutions else None
    config = course / "nbgrader_config.py"
    if not config.exists() and repo_config and repo_config.is_file():
        shutil.copyfile(repo_config, config)
    ours = bool(
        repo_config and repo_config.is_file() and config.read_bytes() == repo_config.read_bytes()
    )

    for assignment in assignments:
        with _gradebook(course) as gb:
            try:
                known = bool(gb.find_notebook(assignment, assignment).grade_cells)
            except MissingEntry:
                known = False
        source = solutions / assignment / f"{assignment}.ipynb" if solutions else None
        if known:
            report.registered.append(f"{assignment}: already in the gradebook")
        elif ours and source is not None and source.is_file():
            copy = course / "solutions" / assignment / f"{assignment}.ipynb"
            copy.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(copy, _with_points(source.read_text(encoding="utf-8"), points))
            env = stock.nbgrader_environment(reference_dir, salt)
            done = stock._run(["generate_assignment", assignment, "--force"], course, env)
            if done.returncode != 0:
                report.warnings.append(
                    f"nbgrader generate_assignment {assignment} failed; cells registered from the "
                    f"check library instead: {done.stderr.strip()[-400:]}"
                )
                _register_from_checks(course, assignment, points)
                report.registered.append(f"{assignment}: from the check library")
            else:
                report.registered.append(f"{assignment}: nbgrader generate_assignment")
        else:
            _register_from_checks(course, assignment, points)
            report.registered.append(f"{assignment}: from the check library (no solution notebook)")
            report.warnings.append(
                f"{assignment}: no solution notebook for nbgrader; the gradebook has the autograded "
                "cells only (no written answers for formgrader)"
            )
        with _gradebook(course) as gb:
            for check in checks_for(assignment):
                wanted = points.get(check.id, float(check.points))
                try:
                    cell = gb.find_grade_cell(check.id, assignment, assignment)
                except MissingEntry:
                    report.warnings.append(
                        f"{assignment}: the gradebook has no grade cell {check.id}"
                    )
                    continue
                if cell.max_score != wanted:
                    cell.max_score = wanted
            gb.db.commit()


def _with_points(text: str, points: dict[str, float]) -> str:
    """The notebook JSON with the course's points in the grade cells of our checks."""
    notebook = json.loads(text)
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and meta.get("grade_id") in points:
            meta["points"] = points[meta["grade_id"]]
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _register_from_checks(course: Path, assignment: str, points: dict[str, float]) -> None:
    from nbgrader.api import MissingEntry

    with _gradebook(course) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            gb.add_assignment(assignment)
        try:
            gb.find_notebook(assignment, assignment)
        except MissingEntry:
            gb.add_notebook(assignment, assignment)
        for check in checks_for(assignment):
            gb.update_or_create_grade_cell(
                check.id,
                assignment,
                assignment,
                max_score=points.get(check.id, float(check.points)),
                cell_type="code",
            )


def write_gradebook(
    course: Path,
    placements: list[Placement],
    *,
    due: str | None,
    report: GradebookReport,
) -> None:
    """Students, submissions (with their timestamps) and auto scores of every placed result."""
    from nbgrader.api import MissingEntry
    from nbgrader.utils import parse_utc
    from sqlalchemy.exc import SAWarning

    with _gradebook(course) as gb, warnings.catch_warnings():
        # nbgrader's add_submission trips SQLAlchemy 2's autoflush warnings (stock autograde too)
        warnings.simplefilter("ignore", SAWarning)
        if due:
            for assignment in sorted({p.assignment for p in placements if p.in_gradebook}):
                gb.update_or_create_assignment(assignment, duedate=parse_utc(due))
        for p in placements:
            if not p.in_gradebook:
                continue
            gb.update_or_create_student(p.student)
            stamp = _timestamp_for_nbgrader(p.graded)
            try:
                submission = gb.find_submission(p.assignment, p.student)
                submission.timestamp = parse_utc(stamp) if stamp else None
            except MissingEntry:
                extra = {"timestamp": stamp} if stamp else {}
                submission = gb.add_submission(p.assignment, p.student, **extra)
            for check_result in p.result.checks:
                try:
                    grade = gb.find_grade(
                        check_result.check.id, p.assignment, p.assignment, p.student
                    )
                except MissingEntry:
                    report.warnings.append(
                        f"{p.student}/{p.assignment}: no grade cell {check_result.check.id} in the gradebook"
                    )
                    continue
                grade.auto_score = round(check_result.fraction * float(grade.cell.max_score), 4)
                # like nbgrader's SaveAutoGrades: a human's earlier override still needs a look
                grade.needs_manual_grade = grade.manual_score is not None
            for notebook in submission.notebooks:
                if p.result.error:
                    notebook.flagged = True  # formgrader shows it: the notebook could not be run
            gb.db.commit()
            report.written += 1


def _timestamp_for_nbgrader(graded: Graded) -> str:
    """The submission's own timestamp.txt text when it has one (parsed by nbgrader itself)."""
    stamp_file = graded.target.path.parent / TIMESTAMP_FILE
    if graded.timestamp_source == TIMESTAMP_FILE:
        try:
            return stamp_file.read_text(encoding="utf-8").strip()
        except OSError:
            pass
    return graded.timestamp
