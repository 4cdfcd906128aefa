"""Build the bundled sample class from the student notebooks and the sample answers.

    data/sample_class/answers/<assignment>/<student>_<what>.py   what each student typed (hand-written)
    notebooks/<assignment>/<assignment>.ipynb                    the released student notebook
    → data/sample_class/submitted/<student>/<assignment>/<assignment>.ipynb   (nbgrader's layout)

Each answer file's functions replace the solution cells that define them. Two more students are
added for every assignment: one who submitted the untouched notebook, one whose file is cut
short (not valid JSON). The class roster ``data/sample_class/roster.csv`` (the schema of
``grader/report/roster.py``) lists every student, plus one who never handed anything in.
Usage: ``python scripts/make_sample_class.py [--check]``.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample_class"
ANSWERS = SAMPLE / "answers"


def answer_functions(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    return {
        node.name: ast.get_source_segment(text, node)
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef)
    }


def fill(notebook: nbformat.NotebookNode, functions: dict[str, str]) -> nbformat.NotebookNode:
    notebook = nbformat.from_dict(notebook)
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        defined = [name for name in functions if f"def {name}(" in cell.source]
        if defined:
            cell.source = "\n\n\n".join(functions[name] for name in defined)
    return notebook


def build(out: Path) -> list[Path]:
    written = []
    for folder in sorted(p for p in ANSWERS.iterdir() if p.is_dir()):
        assignment = folder.name
        released = nbformat.read(
            ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4
        )
        students = {}
        for answer in sorted(folder.glob("*.py")):
            students[answer.stem.split("_")[0]] = (
                nbformat.writes(fill(released, answer_functions(answer))) + "\n"
            )
        untouched = nbformat.writes(released) + "\n"
        students["lee"] = untouched
        students["mo"] = untouched[: len(untouched) // 2]  # a file cut short mid-upload
        for student, text in students.items():
            path = out / "submitted" / student / assignment / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path.relative_to(out))
    written.append(write_roster(out, sorted({p.parts[1] for p in written} | {NEVER_SUBMITTED})))
    return written


NEVER_SUBMITTED = "yusuf"  # on the roster, but no notebook for any assignment


def write_roster(out: Path, students: list[str]) -> Path:
    """roster.csv: id, name, email, lms_id (a made-up Canvas user id), section."""
    sys.path.insert(0, str(ROOT))
    from grader.report.spreadsheet import csv_text

    rows = [["id", "name", "email", "lms_id", "section"]]
    for i, student in enumerate(students):
        rows.append(
            [
                student,
                f"{student.capitalize()} Example",
                f"{student}@example.edu",
                str(40101 + i),
                "Lab A" if i % 2 == 0 else "Lab B",
            ]
        )
    path = out / "roster.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    return path.relative_to(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild in a temporary folder and compare; exit 1 on drift",
    )
    args = parser.parse_args()
    if not args.check:
        for path in build(SAMPLE):
            print(f"wrote data/sample_class/{path}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        drift = [
            p
            for p in build(Path(tmp))
            if (Path(tmp) / p).read_bytes() != (SAMPLE / p).read_bytes()
            if (SAMPLE / p).exists()
        ]
        drift += [p for p in build(Path(tmp)) if not (SAMPLE / p).exists()]
    for path in drift:
        print(
            f"out of date: data/sample_class/{path} (run python scripts/make_sample_class.py)",
            file=sys.stderr,
        )
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
