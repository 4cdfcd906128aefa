"""Helpers shared by the test modules (import with ``from kit_testing import ...``).

Paths, and submissions made from the released student notebooks and the sample answers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "data" / "sample_class" / "answers"
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))  # the build scripts are importable in tests

from make_sample_class import answer_functions, fill  # noqa: E402


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
