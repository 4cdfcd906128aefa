"""Build the notebooks from their one hand-edited source.

    solutions/NN_topic/NN_topic.py   (py:percent, hand-edited)
      + solutions/reference/*.py     (the answers, one copy)
      + grader/checks/*              (check ids, points, hidden or public)
    → solutions/NN_topic/NN_topic.ipynb   nbgrader source notebook (instructor / worked solution)
    → notebooks/NN_topic/NN_topic.ipynb   student notebook, made by `nbgrader generate_assignment`

Cell kinds in the source header (``# %% kind="..."``):

* ``solution``: lines ``# reference: NAME`` are replaced by the reference function NAME,
  whose body sits between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (nbgrader turns it into
  the stub); an nbgrader autograded-answer cell.
* ``check``: one ``check("ID")`` call; an nbgrader grade cell with the check's id and points
  from the check library; hidden checks are wrapped in ``### BEGIN HIDDEN TESTS``.
* ``answer`` (markdown, with ``grade_id`` and ``points``): a manually graded answer; the model
  answer sits between ``### BEGIN SOLUTION`` / ``### END SOLUTION``.
* ``setup`` and ``experiment``: given code the grader never runs.

Usage::

    python scripts/build_notebooks.py            # rebuild everything
    python scripts/build_notebooks.py --check    # rebuild in a temporary folder; exit 1 on drift
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat
from nbgrader.utils import compute_checksum

from grader import __version__
from grader.checks import NOTEBOOKS, get_check

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
REFERENCE = SOLUTIONS / "reference"
STUDENT = ROOT / "notebooks"
KIT_KEY = "dnn_kit"
REFERENCE_LINE = re.compile(r"^# reference: (\w+)\s*$", re.MULTILINE)
CHECK_CALL = re.compile(r'^check\("(\w+)"\)\s*$')
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def reference_sources() -> dict[str, str]:
    """Source text of every top-level function in solutions/reference, by name."""
    functions = {}
    for path in sorted(REFERENCE.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        body = ast.parse(text).body
        for node, following in zip(body, [*body[1:], None], strict=True):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                # up to the next top-level statement, so the closing `### END SOLUTION` comment comes too
                start = (node.decorator_list[0] if node.decorator_list else node).lineno - 1
                end = following.lineno - 1 if following else len(lines)
                functions[node.name] = "\n".join(lines[start:end]).rstrip()
    return functions


def _nbgrader(
    grade: bool, solution: bool, locked: bool, grade_id: str, points: float | None = None
) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return meta


def build_source_notebook(source: Path, functions: dict[str, str]) -> nbformat.NotebookNode:
    """The nbgrader source notebook of one assignment, from its py:percent source."""
    assignment = source.stem
    notebook = jupytext.read(source)
    cells = []
    for index, cell in enumerate(notebook.cells):
        kind = cell.metadata.pop("kind", None)
        grade_id = cell.metadata.pop("grade_id", None)
        points = cell.metadata.pop("points", None)
        cell.metadata = {}
        if kind == "solution":
            names = REFERENCE_LINE.findall(cell.source)
            missing = [n for n in names if n not in functions]
            if missing or not names:
                raise SystemExit(
                    f"{source}: cell {index}: no reference function {missing or '(none named)'}"
                )
            cell.source = REFERENCE_LINE.sub(lambda m: functions[m.group(1)], cell.source).strip()
            grade_id = grade_id or "code_" + "_".join(names)
            cell.metadata["nbgrader"] = _nbgrader(False, True, False, grade_id)
        elif kind == "check":
            match = CHECK_CALL.match(cell.source.strip())
            if not match:
                raise SystemExit(
                    f'{source}: cell {index}: a check cell holds exactly one check("ID") call'
                )
            check = get_check(match.group(1))
            if check.notebook != assignment:
                raise SystemExit(f"{source}: check {check.id} belongs to {check.notebook}")
            grade_id = check.id
            if check.hidden:
                cell.source = (
                    "# Hidden tests: they run when your notebook is graded, on inputs you have not seen.\n"
                    f'check_implemented("{check.id}")\n'
                    f"### BEGIN HIDDEN TESTS\n{cell.source.strip()}\n### END HIDDEN TESTS"
                )
            cell.metadata["nbgrader"] = _nbgrader(True, False, True, grade_id, float(check.points))
        elif kind == "answer":
            if cell.cell_type != "markdown" or not grade_id or points is None:
                raise SystemExit(
                    f"{source}: cell {index}: an answer cell is markdown with grade_id and points"
                )
            cell.metadata["nbgrader"] = _nbgrader(True, True, False, grade_id, float(points))
        elif kind in ("setup", "experiment"):
            pass
        elif kind is not None:
            raise SystemExit(f"{source}: cell {index}: unknown kind {kind!r}")
        if kind:
            cell.metadata[KIT_KEY] = {"role": kind}
        cell.id = grade_id or f"{assignment}-{index:03d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    _check_complete(source, assignment, cells)
    setup = " ".join(c.source for c in cells if c.metadata.get(KIT_KEY, {}).get("role") == "setup")
    hidden = any("check_implemented(" in c.source for c in cells)
    if hidden and "check_implemented" not in setup:
        raise SystemExit(
            f"{source}: hidden check cells call check_implemented(): import it in the setup cell (from grader.notebook import check, check_implemented)"
        )
    result = nbformat.v4.new_notebook(cells=cells)
    result.metadata = {
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
        KIT_KEY: {"assignment": assignment, "version": __version__},
    }
    return result


def _check_complete(source: Path, assignment: str, cells) -> None:
    """Every check of the assignment appears once; every student function has a solution cell."""
    from grader.checks import checks_for

    present = [
        c.id for c in cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
    ]
    wanted = [c.id for c in checks_for(assignment)]
    if sorted(present) != sorted(wanted):
        raise SystemExit(f"{source}: check cells {present} do not match the check library {wanted}")
    solved = " ".join(c.source for c in cells if c.metadata.get("nbgrader", {}).get("solution"))
    missing = [f for f in NOTEBOOKS[assignment] if f"def {f}(" not in solved]
    if missing:
        raise SystemExit(f"{source}: no solution cell defines {missing}")


STUB_RAISE = re.compile(r"^(?P<indent>\s*)raise NotImplementedError\(\)\s*$")
DEF_LINE = re.compile(r"^\s*def (\w+)\(")


def name_the_stubs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make every stub say which function to write.

    nbgrader replaces each solution with the same ``raise NotImplementedError()``; here the raise
    gets a message naming the function it sits in. It stays a ``NotImplementedError``: the checks
    and ``check_implemented`` recognise an unwritten function by that type.
    """
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        lines, function = cell.source.splitlines(), None
        for i, line in enumerate(lines):
            if match := DEF_LINE.match(line):
                function = match.group(1)
            elif (match := STUB_RAISE.match(line)) and function:
                message = f"`{function}` is not written yet: replace this line with your code"
                lines[i] = f"{match.group('indent')}raise NotImplementedError({message!r})"
        cell.source = "\n".join(lines)
        cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
    return notebook


def normalise(notebook: nbformat.NotebookNode) -> str:
    """Canonical text of a notebook without outputs (what is committed and compared)."""
    notebook = nbformat.from_dict(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.pop("widgets", None)
    return nbformat.writes(notebook) + "\n"


def nbgrader_environment() -> dict[str, str]:
    """nbgrader calls the `alembic` command: the interpreter's bin folder must be on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def generate_student_versions(source_notebooks: dict[str, str], workdir: Path) -> dict[str, str]:
    """Run `nbgrader generate_assignment` on the source notebooks in a scratch course directory."""
    shutil.copy(ROOT / "nbgrader_config.py", workdir / "nbgrader_config.py")
    for assignment, text in source_notebooks.items():
        folder = workdir / "solutions" / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(text, encoding="utf-8")
    for assignment in source_notebooks:
        command = [
            sys.executable,
            "-m",
            "nbgrader",
            "generate_assignment",
            assignment,
            "--force",
            "--log-level=WARN",
        ]
        subprocess.run(command, cwd=workdir, check=True, env=nbgrader_environment())
    return {
        assignment: normalise(
            name_the_stubs(
                nbformat.read(
                    workdir / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4
                )
            )
        )
        for assignment in source_notebooks
    }


def build_all(workdir: Path) -> dict[Path, str]:
    """Every generated notebook: path in the repository -> canonical text."""
    functions = reference_sources()
    sources = {}
    for source in sorted(SOLUTIONS.glob("*/*.py")):
        if source.parent.name == source.stem:
            sources[source.stem] = normalise(build_source_notebook(source, functions))
    students = generate_student_versions(sources, workdir)
    files = {SOLUTIONS / a / f"{a}.ipynb": text for a, text in sources.items()}
    files |= {STUDENT / a / f"{a}.ipynb": text for a, text in students.items()}
    return files


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Build solution and student notebooks from their sources."
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the committed notebooks; exit 1 on any drift",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="build-notebooks-") as tmp:
        files = build_all(Path(tmp))
    drift = []
    for path, text in files.items():
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if normalise(nbformat.reads(current, as_version=4)) != text if current else True:
                diff = difflib.unified_diff(
                    current.splitlines(), text.splitlines(), str(path), "rebuilt", lineterm="", n=1
                )
                drift.append("\n".join(list(diff)[:40]))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    for entry in drift:
        print(entry, file=sys.stderr)
    if drift:
        print(
            f"{len(drift)} generated notebook(s) differ from their sources: run python scripts/build_notebooks.py",
            file=sys.stderr,
        )
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
