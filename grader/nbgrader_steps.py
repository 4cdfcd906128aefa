"""The kit behind nbgrader's own buttons: an autograde step and a validate step.

nbgrader lets a course replace its steps by configuration, so ``nbgrader autograde`` (and
formgrader's **Autograde** button) and ``nbgrader validate`` (and the lab extension's
**Validate** button) can run the kit's grader without a fork of nbgrader:

* :class:`GradeInSandbox` replaces ``Execute`` in ``c.Autograde.autograde_preprocessors``. It
  takes the sanitised notebook nbgrader hands it (test cells already restored from the gradebook
  by ``OverwriteCells``), grades it as ``python -m grader grade`` does (public and hidden checks,
  salted inputs, in the bubblewrap sandbox) and writes each grade cell's outputs the way nbgrader
  scores them: the check's message on stdout and its score as the cell's ``execute_result``, a
  Python float. No kernel is started; student code never runs in nbgrader's process.
  ``SaveAutoGrades`` and the later steps then work unchanged.
* :class:`SelfCheck` replaces ``Execute`` in ``c.Validator.preprocessors``: the student's
  self-check (public checks only, as ``python -m grader check``), about a second, naming the
  failing check and the misconception it looks like.

nbgrader 0.9.6 scores a code grade cell from its outputs (``nbgrader.utils.determine_grade``):
an error output or any stderr is 0, an ``execute_result`` that parses as a float ``>= 0`` is
that score (above the cell's points raises), anything else full marks. See docs/nbgrader.md.
"""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import nbformat
from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Enum, Float, Integer, Unicode

from grader import references
from grader.checks import CHECKS, NOTEBOOKS, checks_for, topic_of
from grader.checks.base import CheckResult
from grader.checks.cases import cases_for, salt_from_environment
from grader.grading import SubmissionResult, Target, grade_notebook
from grader.report.feedback import check_text
from grader.report.points import apply_points
from grader.runner import sandbox
from grader.runner.process import Limits
from grader.runner.submission import SubmissionError, defined_functions, identify

NOT_IMPLEMENTED = "not implemented yet"


class KitStepError(RuntimeError):
    """The grader cannot grade here (no sandbox, no reference): nothing is scored."""


# --------------------------------------------------------------------------- outputs
def _stdout(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name="stdout", text=text.rstrip("\n") + "\n")


def _score(value: float, count: int) -> nbformat.NotebookNode:
    """The cell's value as nbgrader reads it: the repr of a plain Python float."""
    return nbformat.v4.new_output(
        "execute_result", data={"text/plain": repr(float(value))}, execution_count=count
    )


def _error(name: str, message: str, lines: list[str] | None = None) -> nbformat.NotebookNode:
    return nbformat.v4.new_output(
        "error", ename=name, evalue=message, traceback=lines or [f"{name}: {message}"]
    )


def _headline(result: CheckResult, score: float, points: float) -> str:
    return f"{result.check.id}: {result.check.title} — {score:g}/{points:g} points"


def cell_score(result: CheckResult, points: float) -> float:
    """The check's score in the cell's points (the same as ``grade`` when they agree)."""
    if points == float(result.check.points):
        return result.score
    return round(points * result.fraction, 4)


def kit_grade_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and utils.is_grade(c)]


def kit_notebook(grade_ids: list[str]) -> str | None:
    """The kit notebook whose checks these grade cells are (None: not a kit notebook)."""
    owners = {CHECKS[g].notebook for g in grade_ids if g in CHECKS}
    return owners.pop() if len(owners) == 1 else None


def _graded(nb: nbformat.NotebookNode, name: str, target: dict, **options) -> SubmissionResult:
    """Grade the in-memory notebook through a private copy on disk (the grader reads files)."""
    with tempfile.TemporaryDirectory(prefix="dnn-kit-nbgrader-") as folder:
        path = Path(folder) / f"{name}.ipynb"
        nbformat.write(nb, path)
        result = grade_notebook(Target(path, **target), **options)
    return result


# --------------------------------------------------------------------------- autograde
class GradeInSandbox(NbGraderPreprocessor):
    """Autograde step in place of ``Execute``: the kit's sandboxed batch grader fills the grade cells."""

    reference = Unicode(
        "",
        help="Folder of the reference solutions (default: found as `python -m grader grade` finds "
        "them: $DNN_KIT_REFERENCE, then a solutions/ folder above the course directory).",
    ).tag(config=True)
    salt = Unicode(
        "",
        help="Course-private salt for hidden inputs (default: $DNN_KIT_SALT, else the kit's).",
    ).tag(config=True)
    case_timeout = Float(10.0, help="Seconds per case.").tag(config=True)
    memory_mib = Integer(2048, help="Memory cap per submission, MiB.").tag(config=True)
    carry_forward = Enum(
        ["", "on", "off"],
        "",
        help="Errors carried forward: 'on' (a backward right for the student's own catalogued "
        "wrong forward keeps its points), 'off', or '' for $DNN_KIT_CARRY_FORWARD (else on).",
    ).tag(config=True)
    other_notebooks = Enum(
        ["error", "execute"],
        "error",
        help="Notebooks whose grade cells are not kit checks: 'error' refuses to grade them "
        "(fail closed); 'execute' runs them with nbgrader's own Execute step (in a kernel).",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        ids = self._gradebook_ids(info)
        assignment = kit_notebook(ids)
        if assignment is None:
            if self.other_notebooks == "execute":
                self.log.info(
                    "%s is not a kit notebook: nbgrader's Execute runs it", info["notebook"]
                )
                return Execute(parent=self).preprocess(nb, resources)
            raise KitStepError(
                f"notebook {info['notebook']} of {info['assignment']} has no kit checks among its "
                f"grade cells {ids}; set c.GradeInSandbox.other_notebooks = 'execute' to run it in "
                "a kernel, or leave the kit's steps out of this course's nbgrader_config.py"
            )
        reference = self._reference(assignment)
        isolation = sandbox.require()
        if isolation == sandbox.FALLBACK and sandbox.policy() != "off":
            raise KitStepError(
                "the bubblewrap sandbox is unavailable, so nothing is graded (apt-get install "
                "bubblewrap; DNN_KIT_SANDBOX=off grades trusted notebooks without it)"
            )
        result = _graded(
            nb,
            info["notebook"],
            {"student": info["student"], "assignment": assignment},
            include_hidden=True,
            salt=self.salt or salt_from_environment(),
            reference=reference,
            limits=Limits(case_seconds=self.case_timeout, memory_bytes=self.memory_mib * 2**20),
        )
        if result.grader_failure:
            raise KitStepError(f"the grader failed on this notebook: {result.error}")
        if self.carry_forward:
            result = apply_points(result, {}, carry_forward=self.carry_forward == "on")
        self.log.info(
            "%s/%s graded by the kit: %g/%g (%s, %.1f s)",
            info["student"],
            info["notebook"],
            result.score,
            result.max_score,
            result.isolation,
            result.seconds,
        )
        fill_grade_cells(nb, result)
        return nb, resources

    def _gradebook_ids(self, info: dict) -> list[str]:
        """The notebook's grade cells as the instructor made them (the gradebook, not the file)."""
        from nbgrader.api import Gradebook

        with Gradebook(info["db_url"]) as gradebook:
            source = gradebook.find_notebook(info["notebook"], info["assignment"])
            return [cell.name for cell in source.grade_cells if cell.cell_type == "code"]

    def _reference(self, assignment: str):
        reference = references.load(self.reference or None)
        if self.reference and reference is None:
            raise KitStepError(
                f"no reference package (reference/__init__.py) under {self.reference}"
            )
        own = topic_of(assignment).reference  # an out-of-tree topic brings its own reference
        if reference is None and not own and any(c.needs_reference for c in checks_for(assignment)):
            raise KitStepError(
                "the reference solutions were not found, so the hidden checks cannot be graded: "
                "set c.GradeInSandbox.reference or DNN_KIT_REFERENCE"
            )
        return reference


def fill_grade_cells(nb: nbformat.NotebookNode, result: SubmissionResult) -> None:
    """Write every code grade cell's outputs so ``determine_grade`` reads the kit's score.

    A kit check: its message on stdout, then its score (``execute_result``). A notebook that could
    not be graded, or a grade cell that is no kit check: an error output saying why (0 points).
    The submission's own notes (cells that raised, warnings) go to the first grade cell.
    """
    by_id = {c.check.id: c for c in result.checks}
    # the assignment comes from the gradebook here, so "recognised by its given" says nothing
    notes = [n for n in result.notes if not n.endswith("recognised by its given")]
    for count, cell in enumerate(kit_grade_cells(nb), start=1):
        grade_id = cell.metadata.nbgrader.get("grade_id", "")
        cell.execution_count = count
        if result.error:
            cell.outputs = [
                _error("NotGraded", f"your notebook could not be graded: {result.error}")
            ]
            continue
        check = by_id.get(grade_id)
        if check is None:
            cell.outputs = [
                _error(
                    "NotGraded",
                    f"{grade_id} is not one of the kit's checks for {result.assignment}",
                )
            ]
            continue
        points = float(cell.metadata.nbgrader.get("points", check.check.points))
        score = cell_score(check, points)
        text = _headline(check, score, points) + "\n" + check_text(check)
        if notes:
            text += "\n\nAbout your notebook:\n" + "\n".join(f"  {n}" for n in notes)
            notes = []
        cell.outputs = [_stdout(text), _score(score, count)]


# --------------------------------------------------------------------------- validate
class SelfCheck(NbGraderPreprocessor):
    """Validate step in place of ``Execute``: the student's self-check fills the grade cells.

    Public checks run on the student's code as ``python -m grader check`` runs them. A failing
    check gets an error output whose text names it, its cases and the misconception (nbgrader's
    validate report prints exactly that text); a passing one its points. A hidden check fails
    only when a function it needs is missing or still raises ``NotImplementedError`` (as
    ``check_implemented`` does in the student's copy); its tests run when the notebook is graded.
    """

    case_timeout = Float(10.0, help="Seconds per case.").tag(config=True)

    def preprocess(self, nb, resources):
        cells = kit_grade_cells(nb)
        ids = [c.metadata.nbgrader.get("grade_id", "") for c in cells]
        assignment = kit_notebook(ids)
        if assignment is None:
            try:
                assignment, _ = identify(nb, Path("notebook.ipynb"))
            except SubmissionError:
                assignment = None
        if assignment not in NOTEBOOKS:
            self.log.info("not a kit notebook: nbgrader's Execute validates it")
            return Execute(parent=self).preprocess(nb, resources)
        result = _graded(
            nb,
            assignment,
            {"assignment": assignment},
            include_hidden=False,
            limits=Limits(case_seconds=self.case_timeout),
        )
        fill_validation(nb, result, missing_functions(nb, result))
        return nb, resources


def missing_functions(nb: nbformat.NotebookNode, result: SubmissionResult) -> set[str]:
    """Functions of the notebook that are not defined, or whose public cases still raise
    ``NotImplementedError``."""
    defined = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            defined |= defined_functions(cell.source)
    missing = {f for f in NOTEBOOKS.get(result.assignment, ()) if f not in defined}
    for checked in result.checks:
        if checked.check.hidden or checked.error:
            continue
        cases = cases_for(checked.check)
        for case, judged in zip(cases, checked.cases, strict=False):
            called = case.plan[-1].get("call") if case.plan else None
            if called and not judged.passed and judged.message.startswith(NOT_IMPLEMENTED):
                missing.add(called)
    return missing


def fill_validation(nb: nbformat.NotebookNode, result: SubmissionResult, missing: set[str]) -> None:
    by_id = {c.check.id: c for c in result.checks}
    for count, cell in enumerate(kit_grade_cells(nb), start=1):
        grade_id = cell.metadata.nbgrader.get("grade_id", "")
        cell.execution_count = count
        check = CHECKS.get(grade_id)
        if result.error:
            cell.outputs = [_error("NotGraded", result.error)]
        elif check is None:
            cell.outputs = [_error("NotGraded", f"{grade_id} is not one of the kit's checks")]
        elif check.hidden:
            needed = [f for f in check.functions if f in missing]
            if needed:
                message = (
                    f"{grade_id}: write `{needed[0]}` first; these hidden tests run on it when your "
                    "notebook is graded"
                )
                cell.outputs = [_error("NotImplemented", message)]
            else:
                cell.outputs = [
                    _stdout(f"{grade_id}: hidden tests; they run when your notebook is graded")
                ]
        else:
            checked = by_id[grade_id]
            points = float(cell.metadata.nbgrader.get("points", check.points))
            score = cell_score(checked, points)
            text = _headline(checked, score, points) + "\n" + check_text(checked)
            if checked.passed:
                cell.outputs = [_stdout(text), _score(score, count)]
            else:
                cell.outputs = [
                    _error("CheckFailed", _headline(checked, score, points), _wrapped(text))
                ]


def _wrapped(text: str, width: int = 80) -> list[str]:
    """Lines short enough for nbgrader's validate report (it cuts them at 87 characters,
    its 4-space indent included)."""
    lines = []
    for line in text.splitlines():
        indent = " " * (len(line) - len(line.lstrip()) + 5)
        lines += textwrap.wrap(line, width, subsequent_indent=indent) or [""]
    return lines


def configurable_validator() -> None:
    """Let ``c.Validator.preprocessors`` be set from a config file.

    nbgrader 0.9.6 declares ``Validator.preprocessors`` without ``config=True`` (unlike
    ``Autograde.autograde_preprocessors``), so traitlets would ignore the setting. Tagging the
    trait is the whole change; call this in ``nbgrader_config.py`` before setting it.
    """
    from nbgrader.validator import Validator

    Validator.class_traits()["preprocessors"].tag(config=True)
