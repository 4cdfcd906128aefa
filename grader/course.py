"""The stock nbgrader flow, in one command: a course directory from ``solutions/``, then autograde.

    python -m grader nbgrader SUBMISSIONS... [--course DIR]

1. ``DIR/nbgrader_config.py`` (the repository's) and ``DIR/solutions/<a>/<a>.ipynb`` (the
   nbgrader source notebooks) are written; ``nbgrader generate_assignment <a>`` registers them.
2. Each submission is copied (never moved or edited) to ``DIR/submitted/<student>/<a>/<a>.ipynb``.
3. ``nbgrader autograde <a>`` runs every notebook in a Jupyter kernel; the hidden test cells find
   the reference solutions in ``DIR/solutions/reference`` (a copy, found from the kernel's working
   folder like any course kept beside its ``solutions/``).
4. The scores are read back from nbgrader's gradebook, per grade cell.

This is the baseline our own grader is compared with (and must agree with on honest
submissions). nbgrader runs the student's code in the same kernel as the tests, unsandboxed, so
a hostile notebook can read the references or fake its grade there: the command refuses to run
without ``--trusted``. Its kernels never receive the grader's environment (no
``DNN_KIT_REFERENCE``, no ``DNN_KIT_SALT``, nothing secret named ``DNN_KIT_*``; only the switches
``DNN_KIT_NBGRADER`` and ``DNN_KIT_CARRY_FORWARD``, the course's rule): hidden cells run on
inputs from the public default salt, so the course's salt never reaches student code. Honest
notebooks score the same as in the batch grader (whose hidden inputs come from the course salt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader import references
from grader.checks.base import carry_forward_default
from grader.grading import Target, discover
from grader.runner.submission import SubmissionError, identify, read_notebook


@dataclass
class NbgraderResult:
    student: str
    assignment: str
    cells: dict[str, float] = field(default_factory=dict)  # grade_id -> score (autograded cells)
    max_cells: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def score(self) -> float:
        return round(sum(self.cells.values()), 4)


def nbgrader_environment(
    reference_dir: Path | None = None, salt: str | None = None
) -> dict[str, str]:
    """The environment of nbgrader and of the kernels it starts: ours, with the folder of
    `alembic` (nbgrader calls it) on PATH, and without anything of the grader's (``DNN_KIT_*``:
    the reference path, the salt). ``reference_dir`` and ``salt`` are accepted for the callers'
    sake and deliberately not passed on."""
    del reference_dir, salt
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNN_KIT_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # the baseline: nbgrader's own kernel steps, not the kit's (docs/nbgrader.md); a switch, not
    # a secret: the only DNN_KIT_ variable its kernels see
    env["DNN_KIT_NBGRADER"] = "stock"
    # the course's scoring rule, a switch too: hidden cells score carried-forward cases by it
    if os.environ.get("DNN_KIT_CARRY_FORWARD"):
        env["DNN_KIT_CARRY_FORWARD"] = "on" if carry_forward_default() else "off"
    return env


def _copy_reference(reference_dir: Path, course: Path) -> None:
    """``course/solutions/reference``: where the kernels' hidden cells find the answers."""
    destination = course / "solutions" / "reference"
    if destination.resolve() == reference_dir.resolve():
        return
    shutil.copytree(
        reference_dir,
        destination,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def autograde_with_nbgrader(
    paths: list[Path], course: Path, *, reference_dir: Path | None = None, salt: str | None = None
) -> list[NbgraderResult]:
    """Set up ``course`` from the solutions, copy the submissions in, and run ``nbgrader autograde``."""
    reference_dir = references.locate(reference_dir)
    if reference_dir is None:
        raise FileNotFoundError("reference solutions not found; pass --reference")
    solutions = reference_dir.parent
    repo_config = solutions.parent / "nbgrader_config.py"
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(repo_config, course / "nbgrader_config.py")
    env = nbgrader_environment()
    _copy_reference(reference_dir, course)

    results: list[NbgraderResult] = []
    placed: dict[str, list[NbgraderResult]] = {}
    for i, target in enumerate(discover(paths)):
        student = target.student or _student_from_name(target, i)
        try:
            notebook, _ = read_notebook(target.path)
            assignment = target.assignment or identify(notebook, target.path)[0]  # layout first
        except SubmissionError as exc:
            results.append(NbgraderResult(student, "unknown", error=str(exc)))
            continue
        destination = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target.path, destination)
        result = NbgraderResult(student, assignment)
        results.append(result)
        placed.setdefault(assignment, []).append(result)

    for assignment, graded in placed.items():
        source = course / "solutions" / assignment
        source.mkdir(parents=True, exist_ok=True)
        shutil.copy(solutions / assignment / f"{assignment}.ipynb", source / f"{assignment}.ipynb")
        for command in (
            ["generate_assignment", assignment, "--force"],
            ["autograde", assignment, "--force"],
        ):
            done = _run(command, course, env)
            if done.returncode != 0:
                for result in graded:
                    result.error = f"nbgrader {command[0]} failed: {done.stderr.strip()[-500:]}"
        _read_gradebook(course, assignment, graded)
    return results


def _student_from_name(target: Target, index: int) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in target.path.stem)
    return f"{stem}-{index}"


def _read_gradebook(course: Path, assignment: str, graded: list[NbgraderResult]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for result in graded:
            try:
                notebook = gradebook.find_submission_notebook(
                    assignment, assignment, result.student
                )
            except MissingEntry:
                result.error = result.error or "nbgrader recorded no submission (see its log)"
                continue
            for grade in notebook.grades:
                if (
                    grade.cell_type == "code"
                ):  # autograded tests; markdown answers are graded by hand
                    result.cells[grade.name] = float(grade.score)
                    result.max_cells[grade.name] = float(grade.max_score)


def main(args) -> int:
    if not getattr(args, "trusted", False):
        print(
            "error: the nbgrader flow runs each notebook in one unsandboxed kernel with its tests, "
            "where a hostile notebook can read the answers or fake its grade; pass --trusted if "
            "these notebooks are trusted, else use `python -m grader grade` or `export`",
            file=sys.stderr,
        )
        return 2
    if args.salt:
        print(
            "note: --salt is not passed to nbgrader's kernels (student code runs there); their "
            "hidden cells use the public default salt",
            file=sys.stderr,
        )
    course = args.course or Path(tempfile.mkdtemp(prefix="nbgrader-course-"))
    results = autograde_with_nbgrader(
        args.paths, course, reference_dir=args.reference, salt=args.salt
    )
    for result in results:
        if result.error:
            print(f"{result.student:<12} {result.assignment:<14} error: {result.error}")
        else:
            cells = "  ".join(f"{k}={v:g}" for k, v in result.cells.items())
            print(
                f"{result.student:<12} {result.assignment:<14} {result.score:>6.2f}/{sum(result.max_cells.values()):g}  {cells}"
            )
    print(f"course directory: {course}", file=sys.stderr)
    return 0
