"""Reading a submitted notebook: what it is, and which of its cells are the student's code.

Nothing here executes anything, and nothing ever writes to the submission. Whatever the file
holds (corrupt JSON, a 10 GB upload, lost metadata, renamed or deleted cells, null bytes,
absurdly nested code), the result is a :class:`Submission` or a :class:`SubmissionError`
whose message says what is wrong.
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
MAX_CODE_CHARS = 2 * 2**20  # all the code sent to the child
MAGIC = re.compile(r"^\s*[%!]")
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class SubmissionError(Exception):
    """The submission cannot be graded at all (unreadable, not a notebook, unknown assignment)."""


@dataclass
class Submission:
    path: Path
    sha256: str
    assignment: str
    identified_by: str  # "layout" (given by the caller), "metadata", "path", "functions"
    cells: list[dict]  # [{"index", "source"}] to execute, in order
    notes: list[str] = field(default_factory=list)
    student: str = ""


def read_notebook(path: Path) -> tuple[dict, bytes]:
    try:
        with open(path, "rb") as stream:  # never more than the limit in memory
            raw = stream.read(MAX_NOTEBOOK_BYTES + 1)
            size = len(raw) if len(raw) <= MAX_NOTEBOOK_BYTES else path.stat().st_size
    except OSError as exc:
        raise SubmissionError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"{path.name} is {size / 2**20:.0f} MiB; the limit is {MAX_NOTEBOOK_BYTES // 2**20} MiB "
            "(clear large outputs before submitting)"
        )
    if not raw.strip():
        raise SubmissionError(f"{path.name} is empty")
    try:
        notebook = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{path.name} is not a valid notebook (JSON error at line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "was it edited outside Jupyter or cut short?"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise SubmissionError(f"{path.name} is not a valid notebook (unreadable JSON)") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (no list of cells)")
    return notebook, raw


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s if isinstance(s, str) else str(s) for s in source[:100_000])
    elif not isinstance(source, str):
        source = ""
    return source[:MAX_CELL_CHARS]


def strip_magics(source: str) -> str:
    """IPython magics and shell escapes are not Python; they are blanked (line numbers kept)."""
    return "\n".join("" if MAGIC.match(line) else line for line in source.splitlines())


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(strip_magics(source))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def defined_functions(source: str) -> set[str]:
    tree = _parse(source)
    if tree is None:
        return set()
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _is_definition(node: ast.stmt) -> bool:
    """Imports, function/class definitions, docstrings and assignments without calls."""
    if isinstance(node, DEFINITIONS):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign):
        return not any(isinstance(n, ast.Call) for n in ast.walk(node))
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def is_definition_cell(source: str) -> bool:
    """Imports, function/class definitions and assignments without calls: safe to run as setup."""
    tree = _parse(source)
    if tree is None:
        return True  # run it: the student should see their syntax error
    return all(_is_definition(node) for node in tree.body)


def definitions_only(source: str) -> str:
    """The definitions of a cell, other lines blanked (line numbers kept for tracebacks)."""
    lines = strip_magics(source).splitlines()
    tree = _parse(source)
    if tree is None:
        return "\n".join(lines)
    keep = [False] * len(lines)
    for node in tree.body:
        if _is_definition(node):
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            for line in range(first - 1, node.end_lineno or node.lineno):
                keep[line] = True
    return "\n".join(line if kept else "" for line, kept in zip(lines, keep, strict=True))


def _role(metadata: dict) -> str | None:
    kit = metadata.get(KIT_KEY)
    role = kit.get("role") if isinstance(kit, dict) else None
    return role if isinstance(role, str) else None


def select_cells(notebook: dict) -> tuple[list[dict], list[str]]:
    """The code cells the grader runs.

    * cells with nbgrader metadata: the answer cells (``solution`` and not ``grade``);
    * else cells our build marked ``role: solution``; cells marked setup, check or experiment
      never run;
    * cells with neither (added by the student, or all metadata lost): only their definitions
      (imports, functions, classes, plain assignments), so experiments and plots never run but
      the functions are graded anyway.
    """
    chosen, notes, total, stripped = [], [], 0, []
    for index, cell in enumerate(notebook.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell_source(cell)
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbgrader, role = metadata.get("nbgrader"), _role(metadata)
        if isinstance(nbgrader, dict) and nbgrader:
            run = source if nbgrader.get("solution") and not nbgrader.get("grade") else None
        elif role is not None:
            run = source if role == "solution" else None
        else:
            run = definitions_only(source)
            if run.strip() != strip_magics(source).strip():
                stripped.append(index)
        if run is None or not run.strip():
            continue
        cleaned = strip_magics(run)
        if any(MAGIC.match(line) for line in source.splitlines()):
            notes.append(f"cell {index}: IPython magics and shell commands were skipped")
        total += len(cleaned)
        if total > MAX_CODE_CHARS:
            notes.append(
                f"cell {index} and later: skipped, more than {MAX_CODE_CHARS} characters of code"
            )
            break
        chosen.append({"index": index, "source": cleaned})
    if stripped:
        cells = ", ".join(map(str, stripped[:10]))
        notes.append(
            f"cells without grading metadata ({cells}): only their imports and definitions were run"
        )
    return chosen, notes


def assignment_from_path(path: Path) -> str | None:
    """The assignment named by the file or its folder (``02_dropout.ipynb``, ``.../02_dropout/x.ipynb``)."""
    for part in (path.stem, path.parent.name):
        for name in NOTEBOOKS:
            if part == name or part.startswith(name):
                return name
    return None


def metadata_assignment(notebook: dict) -> str | None:
    """The kit assignment our build wrote into the notebook's metadata, if it names one."""
    metadata = notebook.get("metadata")
    kit = metadata.get(KIT_KEY) if isinstance(metadata, dict) else None
    claimed = kit.get("assignment") if isinstance(kit, dict) else None
    return claimed if isinstance(claimed, str) and claimed in NOTEBOOKS else None


def identify(notebook: dict, path: Path) -> tuple[str, str]:
    """Which assignment this is: our metadata key, else the file name, else the functions defined."""
    claimed = metadata_assignment(notebook)
    if claimed is not None:
        return claimed, "metadata"
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
    """Read ``path`` as a submission of ``assignment`` (the layout's, when it gives one: the
    notebook's own metadata may confirm it but never overrides it), else of the assignment its
    metadata, file name or functions name."""
    notebook, raw = read_notebook(path)
    notes: list[str] = []
    if assignment is None:
        assignment, how = identify(notebook, path)
    else:
        how = "layout"
        claimed = metadata_assignment(notebook)
        if claimed is not None and claimed != assignment:
            notes.append(
                f"the notebook's metadata names {claimed}; graded as {assignment}, the "
                "assignment it was submitted for"
            )
    cells, selection_notes = select_cells(notebook)
    notes += selection_notes
    defined = set().union(*(defined_functions(c["source"]) for c in cells))
    missing = [name for name in NOTEBOOKS.get(assignment, ()) if name not in defined]
    if missing:
        notes.append(f"no definition of {', '.join(missing)} found in the cells that are graded")
    return Submission(path, hashlib.sha256(raw).hexdigest(), assignment, how, cells, notes)
