"""The README's figures and counts come from the data, and its links lead somewhere.

The "Measured here" table is rendered from ``docs/figures/*.json`` (written by the benchmark
scripts) by ``scripts/render_readme_figures.py``; the sample class's counts from
``data/sample_class/submitted``. Volatile figures (test count, suite time) stay out.
"""

from __future__ import annotations

import json
import re

import pytest
from kit_testing import ROOT
from render_readme_figures import MARKED, render

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# pages announced before they are written (none now; a link to a missing page fails the test)
PENDING_PAGES: set[str] = set()


def test_sample_class_counts_in_the_docs_agree_with_the_data():
    submitted = ROOT / "data" / "sample_class" / "submitted"
    students = sum(1 for p in submitted.iterdir() if p.is_dir())
    notebooks = sum(1 for _ in submitted.rglob("*.ipynb"))
    assert f"{students} students, {notebooks} notebooks" in README
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for number in re.findall(r"(\d+) students", text):
            assert int(number) == students, f"{path.name} says {number} students"


def test_the_readme_is_rendered_from_the_current_figures():
    assert {m["name"] for m in MARKED.finditer(README)} >= {"figures", "sample-class"}
    assert render(README) == README, "run: python scripts/render_readme_figures.py"


@pytest.mark.parametrize(
    "path", sorted((ROOT / "docs" / "figures").glob("*.json")), ids=lambda p: p.stem
)
def test_every_figures_file_says_where_and_when_it_was_measured(path):
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["script"] == path.stem
    assert (ROOT / "scripts" / f"{path.stem}.py").exists(), "a figure comes from a script"
    assert record["date"] and record["figures"]
    assert {"cores", "cpu", "quiet"} <= set(record["machine"])


def test_no_volatile_or_typed_in_figures_in_the_readme():
    outside = MARKED.sub("", README)  # the generated parts may hold figures
    assert not re.search(r"\d+ tests\b", outside), "the test count changes with every commit"
    assert not re.search(r"\d[\d.]* ?(s|min|ms)\b.*(suite|test)", outside)
    assert not re.search(r"\b\d+(\.\d+)? ?[×x]\b", outside), "a speed-up typed into prose"


def test_links_between_the_pages_lead_somewhere():
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (path.parent / target).resolve()
            name = (
                resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else target
            )
            if not resolved.exists() and name not in PENDING_PAGES:
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken
