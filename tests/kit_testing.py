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
