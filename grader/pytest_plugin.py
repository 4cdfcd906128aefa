"""pytest entry for CI graders (GitHub Classroom and the like): one pytest test per check.

    pytest --notebook PATH [--notebook PATH ...] [--junitxml report.xml]

(auto-registered through the ``pytest11`` entry point; ``pytest -p grader.pytest_plugin`` works
too). PATH is a notebook or a folder of notebooks. Each notebook is graded exactly as
``python -m grader grade`` does it (in a separate, sandboxed process); every check becomes a test
``<notebook>::<check id>`` that fails with the same message, case by case, and the misconception
hints. Hidden checks are included when the reference solutions are found (``--notebook-reference``,
``$DNN_KIT_REFERENCE`` or a ``solutions/`` folder, like ``grade``), and use the course's salt
(``--notebook-salt`` or ``$DNN_KIT_SALT``); ``--notebook-public-only`` runs the public ones only,
like ``python -m grader check``. Hidden checks need a working bubblewrap sandbox: without one
pytest stops with a usage error unless ``--notebook-no-sandbox``. Each test records its ``score`` and ``max_score`` as JUnit XML
properties. pytest exits 1 when any check fails, 0 when all pass, 4 on a bad path.

Without ``--notebook`` the plugin does nothing, so other test suites are unaffected.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dnn-kit", "DNN Discussion 2 notebook checks")
    group.addoption(
        "--notebook",
        action="append",
        default=[],
        metavar="PATH",
        help="grade this notebook (or every notebook in this folder): one test per check",
    )
    group.addoption(
        "--notebook-salt",
        default=None,
        help="course salt for hidden checks (default: $DNN_KIT_SALT)",
    )
    group.addoption(
        "--notebook-reference",
        default=None,
        metavar="DIR",
        help="folder of the reference solutions; hidden checks run when they are found",
    )
    group.addoption(
        "--notebook-public-only", action="store_true", help="public checks only (a self-check)"
    )
    group.addoption(
        "--notebook-no-sandbox",
        action="store_true",
        help="run hidden checks even without a working bubblewrap sandbox (DNN_KIT_SANDBOX=off)",
    )


def _notebooks(config: pytest.Config) -> list[Path]:
    found: list[Path] = []
    for raw in config.getoption("notebook") or []:
        path = Path(raw)
        if path.is_dir():
            found += [
                p for p in sorted(path.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts
            ]
        elif path.is_file():
            found.append(path)
        else:
            raise pytest.UsageError(f"--notebook: no such notebook or folder: {raw}")
    return found


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("notebook", default=None):
        return
    notebooks = _notebooks(config)
    if not notebooks:
        raise pytest.UsageError("--notebook: no notebooks (*.ipynb) found")
    _require_sandbox(config)
    config._dnn_notebooks = {p.resolve() for p in notebooks}  # type: ignore[attr-defined]
    config.addinivalue_line("markers", "dnn_hidden: a hidden check of the DNN kit")
    # Collect the notebooks instead of the test paths pytest would use by default; paths given
    # explicitly on the command line are collected too.
    explicit = getattr(config, "args_source", None) == pytest.Config.ArgsSource.ARGS
    config.args = (list(config.args) if explicit else []) + [str(p) for p in notebooks]


def _require_sandbox(config: pytest.Config) -> None:
    """Hidden checks are grading for real: without a working sandbox pytest stops at once
    (unless ``--notebook-no-sandbox``); a public-only run is a self-check and never needs it."""
    import os

    from grader import references
    from grader.runner import sandbox

    if config.getoption("notebook_no_sandbox"):
        os.environ["DNN_KIT_SANDBOX"] = "off"
    if config.getoption("notebook_public_only"):
        return
    if references.load(config.getoption("notebook_reference")) is None:
        return  # no hidden checks can run: public checks only
    try:
        sandbox.require()
    except sandbox.SandboxUnavailable as exc:
        raise pytest.UsageError(f"--notebook with hidden checks: {exc}") from None


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    wanted = getattr(parent.config, "_dnn_notebooks", None)
    if wanted and file_path.suffix == ".ipynb" and file_path.resolve() in wanted:
        return NotebookFile.from_parent(parent, path=file_path)
    return None


class CheckFailed(Exception):
    """A check did not pass; the message is what a student would read."""


class NotebookFile(pytest.File):
    """One notebook: graded once (on its first test), one item per check of its assignment."""

    def collect(self):
        from grader.checks import NOTEBOOKS, checks_for
        from grader.runner.submission import SubmissionError, assignment_from_path, load_submission

        try:
            assignment = load_submission(self.path).assignment  # reads; runs nothing
        except SubmissionError as exc:
            assignment = assignment_from_path(self.path)
            self._unreadable = str(exc)
        checks = checks_for(assignment, self._include_hidden()) if assignment in NOTEBOOKS else []
        if not checks:
            yield NotebookProblem.from_parent(self, name="grade")
            return
        for check in checks:
            item = CheckItem.from_parent(self, name=check.id, check_id=check.id)
            if check.hidden:
                item.add_marker("dnn_hidden")
            yield item

    def _reference(self):
        if not hasattr(self, "_ref"):
            from grader import references

            self._ref = references.load(self.config.getoption("notebook_reference"))
            if self.config.getoption("notebook_reference") and self._ref is None:
                raise pytest.UsageError(
                    f"--notebook-reference: no reference package under {self.config.getoption('notebook_reference')}"
                )
        return self._ref

    def _include_hidden(self) -> bool:
        return not self.config.getoption("notebook_public_only") and self._reference() is not None

    def result(self):
        """The notebook's :class:`~grader.grading.SubmissionResult`, graded on first use."""
        if not hasattr(self, "_result"):
            from grader.grading import Target, discover, grade_notebook

            target = (discover([self.path]) or [Target(self.path)])[0]
            self._result = grade_notebook(
                target,
                include_hidden=self._include_hidden(),
                salt=self.config.getoption("notebook_salt"),
                reference=self._reference(),
            )
        return self._result


class CheckItem(pytest.Item):
    def __init__(self, *, check_id: str, **kwargs):
        super().__init__(**kwargs)
        self.check_id = check_id

    def runtest(self) -> None:
        from grader.report.feedback import check_text

        result = self.parent.result()
        found = [c for c in result.checks if c.check.id == self.check_id]
        if not found:
            raise CheckFailed(result.error or f"check {self.check_id} was not run")
        check_result = found[0]
        self.user_properties += [
            ("score", check_result.score),
            ("max_score", float(check_result.check.points)),
        ]
        if check_result.diagnosis:
            self.user_properties.append(("diagnosis", " ".join(check_result.diagnosis)))
        if not check_result.passed:
            text = check_text(check_result)
            if result.error and result.error not in text:
                text = f"{result.error}\n{text}"
            raise CheckFailed(text)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        from grader.checks import CHECKS

        check = CHECKS[self.check_id]
        hidden = " (hidden)" if check.hidden else ""
        return self.path, None, f"{self.check_id}: {check.title}{hidden}"


class NotebookProblem(pytest.Item):
    """Stands for a notebook with no checks to run: unreadable, or not one of the kit's."""

    def runtest(self) -> None:
        reason = getattr(self.parent, "_unreadable", "")
        raise CheckFailed(
            reason or "this notebook is not one of the kit's assignments: no checks to run"
        )

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, "grade"
