"""Which notebooks a batch grades, and whose they are: identity from the layout, never the contents.

A submission's identity (student, assignment, notebook) is counted from the PATH the instructor
gave, never from anything a student can put inside their own folder:

* ``PATH/<student>/<assignment>/<notebook>.ipynb``, at exactly that depth (nbgrader's
  ``submitted/`` layout). When PATH itself lies inside a ``submitted/`` folder (for example
  ``submitted/alice`` or ``submitted/alice/02_dropout``), the parts of PATH below that folder
  count too, so one student's folder grades as that student;
* a notebook file given alone, or the loose ``*.ipynb`` files directly in a folder: no student
  (the exports name one from the file name) and the assignment recognised from the notebook;
* an explicit manifest (:func:`read_manifest`): rows of ``student, assignment, path``.

Everything else that is found (notebooks deeper or shallower than the layout, a second
notebook in one student's assignment folder, a folder that is not one of the kit's
assignments, a name that is not a valid identity) is *reported*, never graded. There is at most
one notebook per student and assignment: ``<assignment>.ipynb`` wins; a lone notebook of
another name is graded under its own name; several notebooks none of which has the expected
name are ambiguous, and none of them is graded (the report says so).

Identity strings are checked against :data:`IDENTITY` before they reach a path, a CSV, the
gradebook or a page.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.checks import NOTEBOOKS

#: a student or assignment id: a letter or digit, then letters, digits, ``_ . @ -`` (64 at most)
IDENTITY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
LAYOUT = "<student>/<assignment>/<notebook>.ipynb"
SUBMITTED = "submitted"
MAX_FOUND = 100_000  # notebooks looked at under one PATH (a bound, not a limit anyone meets)


class ManifestError(ValueError):
    """The manifest cannot be used (unreadable, a bad row, a duplicate submission)."""


@dataclass(frozen=True)
class Target:
    """A notebook to grade and who submitted it (from the layout or the manifest)."""

    path: Path
    student: str = ""
    assignment: str | None = None  # the layout's assignment; None: recognise it from the notebook


@dataclass
class Found:
    """The targets to grade, and every notebook found that is not graded, with the reason."""

    targets: list[Target] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def messages(self) -> list[str]:
        return [f"not graded: {path}: {reason}" for path, reason in self.skipped]


def valid_identity(text: str) -> bool:
    """Whether ``text`` may be used as a student or assignment id."""
    return isinstance(text, str) and IDENTITY.fullmatch(text) is not None


def notebooks_under(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts or "__MACOSX" in path.parts:
            continue
        found.append(path)
        if len(found) >= MAX_FOUND:
            break
    return found


def _prefix(path: Path) -> tuple[str, ...] | None:
    """The parts of the given PATH below its ``submitted`` folder, () when it has none, or None
    when it has two (then whose a file is cannot be told from the path)."""
    parts = path.resolve().parts
    count = parts.count(SUBMITTED)
    if count == 0:
        return ()
    if count > 1:
        return None
    return parts[parts.index(SUBMITTED) + 1 :]


def find_submissions(paths: list[Path]) -> Found:
    """The notebooks under ``paths`` and their identity (see the module docstring)."""
    found = Found()
    groups: dict[tuple[str, str], list[Path]] = {}
    for given in paths:
        prefix = _prefix(given)
        if prefix is None:
            found.skipped.append(
                (given, "two 'submitted' folders in the path: give the submitted folder itself")
            )
            continue
        if given.is_file():
            parts, files = (), [(given, prefix or (given.name,))]
        else:
            parts = prefix
            files = [(p, p.relative_to(given).parts) for p in notebooks_under(given)]
        for path, below in files:
            layout = (*parts, *below)
            if len(layout) == 1:  # a loose notebook: recognised from its contents
                found.targets.append(Target(path))
            elif len(layout) == 3:
                student, assignment, _ = layout
                reason = _layout_problem(student, assignment)
                if reason:
                    found.skipped.append((path, reason))
                else:
                    groups.setdefault((student, assignment), []).append(path)
            else:
                found.skipped.append((path, f"not at {LAYOUT} below {given}"))
    for (student, assignment), candidates in groups.items():
        chosen, others, reason = choose_one(candidates, assignment)
        if chosen is not None:
            found.targets.append(Target(chosen, student, assignment))
        found.skipped += [(path, reason) for path in others]
    return found


def _layout_problem(student: str, assignment: str) -> str:
    if not valid_identity(student):
        return f"the student folder name {student[:80]!r} is not a valid student id"
    if assignment not in NOTEBOOKS:
        return f"{assignment[:80]!r} is not one of the kit's assignments ({', '.join(NOTEBOOKS)})"
    return ""


def choose_one(candidates: list[Path], assignment: str) -> tuple[Path | None, list[Path], str]:
    """The one notebook graded among ``candidates`` (one student's, for ``assignment``).

    Returns ``(chosen or None, not graded, why they are not graded)``: the file named
    ``<assignment>.ipynb`` (the shallowest, then the first in sorted order) wins; else a lone
    notebook; else none (ambiguous).
    """
    candidates = sorted(set(candidates), key=lambda p: (len(p.parts), str(p)))
    expected = [p for p in candidates if p.name == f"{assignment}.ipynb"]
    if expected:
        chosen = expected[0]
        rest = [p for p in candidates if p != chosen]
        return chosen, rest, f"another notebook for {assignment} was graded: {chosen}"
    if len(candidates) == 1:
        return candidates[0], [], ""
    return (
        None,
        candidates,
        f"{len(candidates)} notebooks for {assignment} and none named {assignment}.ipynb: "
        "ambiguous, none graded (keep one, or name it "
        f"{assignment}.ipynb)",
    )


# --------------------------------------------------------------------------- manifest
def read_manifest(manifest: Path) -> Found:
    """Targets from a manifest: CSV with a header ``student,assignment,path``, or JSON (a list of
    objects with those keys). Relative paths are relative to the manifest's folder.

    Raises :class:`ManifestError` on anything wrong in it: an instructor's file is fixed, not
    half-graded.
    """
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ManifestError(f"cannot read {manifest}: {exc.strerror or exc}") from None
    rows = _manifest_rows(text, manifest.suffix.lower() == ".json")
    found, seen = Found(), {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ManifestError(f"{manifest}: row {number} is not an object")
        student, assignment, where = (
            str(row.get(k) or "").strip() for k in ("student", "assignment", "path")
        )
        if not valid_identity(student):
            raise ManifestError(f"{manifest}: row {number}: {student[:80]!r} is not a student id")
        if assignment not in NOTEBOOKS:
            raise ManifestError(
                f"{manifest}: row {number}: {assignment[:80]!r} is not one of the kit's "
                f"assignments ({', '.join(NOTEBOOKS)})"
            )
        path = Path(where)
        path = path if path.is_absolute() else manifest.parent / path
        if not where or not path.is_file():
            raise ManifestError(f"{manifest}: row {number}: no such notebook: {where!r}")
        if (student, assignment) in seen:
            raise ManifestError(
                f"{manifest}: rows {seen[(student, assignment)]} and {number} both give "
                f"{student}'s {assignment}: at most one notebook per student and assignment"
            )
        seen[(student, assignment)] = number
        found.targets.append(Target(path, student, assignment))
    if not found.targets:
        raise ManifestError(f"{manifest}: no rows")
    return found


def _manifest_rows(text: str, is_json: bool) -> list:
    if is_json:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"the manifest is not valid JSON ({exc})") from None
        if not isinstance(data, list):
            raise ManifestError("a JSON manifest is a list of {student, assignment, path} objects")
        return data
    reader = csv.DictReader(io.StringIO(text))
    missing = {"student", "assignment", "path"} - set(reader.fieldnames or [])
    if missing:
        raise ManifestError(
            f"the manifest's header lacks {', '.join(sorted(missing))} (student,assignment,path)"
        )
    return list(reader)
