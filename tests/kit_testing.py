"""Helpers shared by the test modules (import with ``from kit_testing import ...``).

Paths, submissions made from the released student notebooks and the sample answers, running a
notebook as Run All does, and summaries of a graded result.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "data" / "sample_class" / "answers"
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))  # the build scripts are importable in tests

from make_sample_class import answer_functions, fill  # noqa: E402


def install_hint(package: str) -> str:
    """The exact command that installs a missing Debian/Ubuntu package, for skip messages."""
    return f"install it with `sudo apt-get install -y {package}`"


def student_notebook(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)


def write_submission(
    tmp_path: Path, assignment: str, functions: dict[str, str], name: str = "student"
) -> Path:
    """A submitted notebook: the released student notebook with ``functions`` typed into its cells."""
    path = tmp_path / name / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(fill(student_notebook(assignment), functions), path)
    return path


def answer_files() -> list[Path]:
    return sorted(ANSWERS.glob("*/*.py"))


def full_marks_answers(assignment: str | None = None) -> list[Path]:
    """The sample answers that declare ``expect: full marks`` (of one assignment, or all)."""
    return [
        p
        for p in answer_files()
        if (assignment is None or p.parent.name == assignment)
        and read_answer(p)[1]["expect"] == "full marks"
    ]


def run_all(notebook: nbformat.NotebookNode, folder: Path, timeout: float = 120, **options):
    """Execute ``notebook`` in place as Run All does (a python3 kernel working in ``folder``),
    outside nbgrader (``NBGRADER_EXECUTION`` is unset meanwhile). ``options`` go to nbclient,
    e.g. ``allow_errors=True``."""
    from nbclient import NotebookClient

    saved = os.environ.pop("NBGRADER_EXECUTION", None)
    try:
        NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},
            **options,
        ).execute()
    finally:
        if saved is not None:
            os.environ["NBGRADER_EXECUTION"] = saved
    return notebook


def failed_checks(result) -> list[str]:
    """The status of a graded notebook: the checks that did not pass (sorted)."""
    return sorted(c.check.id for c in result.checks if not c.passed)


def diagnoses(result) -> set[str]:
    """Every misconception id the checks of a graded notebook named."""
    return {d for c in result.checks for d in c.diagnosis}


def read_answer(path: Path) -> tuple[dict[str, str], dict]:
    """The functions of a sample answer and its declared intent (``expect:`` and ``fails:`` lines)."""
    doc = path.read_text(encoding="utf-8")
    declared = {"expect": "", "fails": []}
    for line in doc.splitlines():
        if line.startswith("expect:"):
            declared["expect"] = line.split(":", 1)[1].strip()
        if line.startswith("fails:"):
            declared["fails"] = line.split(":", 1)[1].split()
    return answer_functions(path), declared


def build_wheel(source: Path, out: Path) -> Path:
    """Build ``source`` into a wheel in ``out``, as a user's pip would: with build isolation.

    pip then installs the build requirements of ``source``'s pyproject.toml (setuptools >= 77 for
    the PEP 639 licence fields) into a throw-away environment; the test venv's own setuptools
    (65.5 in a fresh Python 3.11 venv, with no ``wheel``) is never used. The build must not warn
    about anything deprecated (setuptools states deadlines after which those become errors).
    Returns the wheel's path.
    """
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--verbose",
            "--no-deps",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"pip wheel {source} failed:\n{log[-5000:]}"
    deprecated = [line for line in log.splitlines() if "deprecat" in line.lower()]
    assert not deprecated, "the build warns:\n" + "\n".join(deprecated)
    (wheel,) = out.glob("*.whl")
    return wheel


def every_case(notebook: str, reference, salts) -> list[tuple]:
    """(check, case) for every case a runner can judge: the shipped public fixtures (the
    self-check) and, for each salt, every case of the batch grade (public checks salted too)."""
    from grader.checks import checks_for
    from grader.checks.cases import batch_cases, load_fixtures

    fixtures = load_fixtures(notebook)
    out = []
    for check in checks_for(notebook):
        if not check.hidden:
            out += [(check, c) for c in fixtures[check.id]]
        for salt in salts:
            out += [(check, c) for c in batch_cases(check, salt=salt, reference=reference)]
    return out
