"""Write the README's measured figures and sample-class counts from the data (never typed in).

    python scripts/render_readme_figures.py           # rewrite the marked parts of README.md
    python scripts/render_readme_figures.py --check   # exit 1 if README.md is out of date

Two marked parts of ``README.md`` are generated:

* ``<!-- figures:begin -->`` … ``<!-- figures:end -->``: the "Measured here" table, one row per
  ``docs/figures/<script>.json`` that a benchmark script wrote (see ``scripts/figures.py``): what
  it measures (the script's first docstring line), the figures (the script's own summary), the
  machine, date and how quiet it was, and the command that reproduces it;
* ``<!-- sample-class:begin -->`` … ``<!-- sample-class:end -->``: how many students and
  notebooks ``data/sample_class/submitted/`` holds.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures"
SUBMITTED = ROOT / "data" / "sample_class" / "submitted"
MARKED = re.compile(
    r"(<!-- (?P<name>[a-z-]+):begin[^>]*-->)(?P<body>.*?)(<!-- (?P=name):end -->)", re.S
)


def sample_class_counts(submitted: Path = SUBMITTED) -> dict[str, int]:
    """Students (folders) and notebooks (``*.ipynb`` files, corrupt ones included)."""
    students = [p for p in submitted.iterdir() if p.is_dir()]
    return {"students": len(students), "notebooks": len(list(submitted.rglob("*.ipynb")))}


def sample_class_text(submitted: Path = SUBMITTED) -> str:
    counts = sample_class_counts(submitted)
    return f"{counts['students']} students, {counts['notebooks']} notebooks"


def _what(script: str) -> str:
    """The first line of the benchmark script's docstring, without its "Benchmark:" prefix."""
    path = ROOT / "scripts" / f"{script}.py"
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or script
    except (OSError, SyntaxError):
        doc = script
    what = re.sub(r"\s*\([^)]*benchmark[^)]*\)", "", doc.splitlines()[0])
    what = what.removeprefix("Benchmark:").strip().rstrip(".")
    return what[:1].upper() + what[1:]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def figures_table(folder: Path = FIGURES) -> str:
    rows = [
        "| what | measured | machine, date | reproduce |",
        "|---|---|---|---|",
    ]
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        machine = record.get("machine", {})
        figures = record.get("summary") or ", ".join(
            f"{k} = {v}" for k, v in record.get("figures", {}).items()
        )
        where = (
            f"{machine.get('cores', '?')} cores, {machine.get('cpu', '?')}, "
            f"{str(record.get('date', '?'))[:10]}; {machine.get('quiet', 'quietness not recorded')}"
        )
        reproduce = (
            record.get("reproduce") or f"python scripts/{record.get('script', path.stem)}.py"
        )
        rows.append(
            f"| {_cell(_what(record.get('script', path.stem)))} | {_cell(figures)} | "
            f"{_cell(where)} | `{_cell(reproduce)}` |"
        )
    if len(rows) == 2:
        rows.append("| (no figures yet: run the benchmark scripts) | | | |")
    return "\n".join(rows)


def render(text: str) -> str:
    """``text`` (the README) with every marked part regenerated."""
    parts = {"figures": "\n" + figures_table() + "\n", "sample-class": sample_class_text()}

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in parts:
            return match[0]
        return match[1] + parts[name] + match[4]

    return MARKED.sub(replace, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only say whether README.md is current"
    )
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    found = {m["name"] for m in MARKED.finditer(text)}
    if not {"figures", "sample-class"} <= found:
        print(f"error: README.md lacks the markers (found: {sorted(found)})", file=sys.stderr)
        return 2
    new = render(text)
    if args.check:
        if new != text:
            print(
                "README.md is out of date: run python scripts/render_readme_figures.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    print(f"wrote {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
