"""Reading a submitted notebook: what it is, and which of its cells are the student's code.

Nothing here executes anything, and nothing ever writes to the submission.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.checks import NOTEBOOKS

KIT_KEY = "dnn_kit"  # our own notebook metadata: {"assignment": ..., "version": ...}
MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_CELL_CHARS = 200_000
MAGIC = re.compile(r"^\s*[%!]")


class SubmissionError(Exception):
    """The submission cannot be graded at all (unreadable, not a notebook, unknown assignment)."""


@dataclass
class Submission:
    path: Path
    sha256: str
    assignment: str
    identified_by: str  # "metadata", "path", "functions"
    cells: list[dict]  # [{"index", "source"}] to execute, in order
    notes: list[str] = field(default_factory=list)
    student: str = ""


def read_notebook(path: Path) -> tuple[dict, bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"{path.name} is {len(raw) / 2**20:.0f} MiB; the limit is {MAX_NOTEBOOK_BYTES // 2**20} MiB"
        )
    try:
        notebook = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{path.name} is not a valid notebook (JSON error at line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "was it edited outside Jupyter or cut short?"
        ) from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (no list of cells)")
    return notebook, raw


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(str(s) for s in source)
    return str(source)[:MAX_CELL_CHARS]


def strip_magics(source: str) -> str:
    """IPython magics and shell escapes are not Python; they are blanked (line numbers kept)."""
    return "\n".join("" if MAGIC.match(line) else line for line in source.splitlines())


def defined_functions(source: str) -> set[str]:
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return set()
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def is_definition_cell(source: str) -> bool:
    """Imports, function/class definitions and assignments without calls: safe to run as setup.

    Cells without nbgrader metadata (added by the student, or metadata lost) run only if they
    are of this kind, so experiments and plots never run in the grader.
    """
    try:
        tree = ast.parse(strip_magics(source))
    except SyntaxError:
        return True  # run it: the student should see their syntax error
    for node in tree.body:
        if isinstance(
            node,
            ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
        ):
            continue
        if isinstance(node, ast.Assign | ast.AnnAssign) and not any(
            isinstance(n, ast.Call) for n in ast.walk(node)
        ):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        return False
    return True


def select_cells(notebook: dict) -> tuple[list[dict], list[str]]:
    """The code cells the grader runs: the student's answer cells, plus definition-only cells
    that carry no nbgrader metadata. Test cells, the given setup and experiments never run."""
    chosen, notes = [], []
    for index, cell in enumerate(notebook.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbgrader = metadata.get("nbgrader")
        if isinstance(nbgrader, dict) and nbgrader:
            run = bool(nbgrader.get("solution")) and not nbgrader.get("grade")
        else:
            run = is_definition_cell(source)
        if run:
            cleaned = strip_magics(source)
            if cleaned != source:
                notes.append(f"cell {index}: IPython magics and shell commands were skipped")
            chosen.append({"index": index, "source": cleaned})
    return chosen, notes


def assignment_from_path(path: Path) -> str | None:
    """The assignment named by the file or its folder (``02_dropout.ipynb``, ``.../02_dropout/x.ipynb``)."""
    for part in (path.stem, path.parent.name):
        for name in NOTEBOOKS:
            if part == name or part.startswith(name):
                return name
    return None


def identify(notebook: dict, path: Path) -> tuple[str, str]:
    """Which assignment this is: our metadata key, else the file name, else the functions defined."""
    kit = (
        notebook.get("metadata", {}).get(KIT_KEY)
        if isinstance(notebook.get("metadata"), dict)
        else None
    )
    if isinstance(kit, dict) and kit.get("assignment") in NOTEBOOKS:
        return kit["assignment"], "metadata"
    by_path = assignment_from_path(path)
    if by_path:
        return by_path, "path"
    defined: set[str] = set()
    for cell in notebook.get("cells", []):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            defined |= defined_functions(cell_source(cell))
    best = max(NOTEBOOKS, key=lambda name: len(defined & set(NOTEBOOKS[name])))
    if defined & set(NOTEBOOKS[best]):
        return best, "functions"
    raise SubmissionError(
        f"cannot tell which assignment {path.name} is: no kit metadata, an unknown file name, and "
        f"none of the assignments' functions ({', '.join(sorted(f for fs in NOTEBOOKS.values() for f in fs))}) is defined"
    )


def load_submission(path: Path, assignment: str | None = None) -> Submission:
    notebook, raw = read_notebook(path)
    if assignment is None:
        assignment, how = identify(notebook, path)
    else:
        how = "given"
    cells, notes = select_cells(notebook)
    return Submission(path, hashlib.sha256(raw).hexdigest(), assignment, how, cells, notes)
