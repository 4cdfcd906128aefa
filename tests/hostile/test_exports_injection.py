"""Hostile: text from a submission turned into a formula, a link, raw HTML or a fake score.

Issue 9, holes 11 (CSV formula injection: a student id like ``=HYPERLINK(...)`` reached
``exports/grades.csv`` and ``grade --format csv``) and 12 (Markdown feedback injection: notes
went into the ``.md`` feedback escaping only ``|`` and ``\\``). Both layers are tested: identity
validation rejects such a name before grading, and every writer neutralises what gets through.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import pytest
from hostile_helpers import (  # noqa: F401
    CORRECT_BACKWARD,
    CORRECT_FORWARD,
    FAST,
    ROOT,
    filled,
    real_sandbox,
    write,
)
from markdown_it import MarkdownIt

from grader.grading import Target, grade_notebook
from grader.report.exports import graded_csv
from grader.report.feedback import feedback_markdown
from grader.report.tables import results_csv
from grader.store import Graded

ASSIGNMENT = "02_dropout"
FORMULA = '=HYPERLINK("evil.example";"click")'
HOSTILE = (
    '<img src=x onerror="alert(1)"> **Score: 10 / 10** [your grade](https://evil.example) '
    "https://evil.example/a www.evil.example ![x](https://evil.example/p.png) <script>x</script>"
)


def markdown_html(text: str) -> str:
    """The Markdown as a CommonMark renderer with raw HTML and tables shows it."""
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(text)


def outside_fences(text: str) -> str:
    return re.sub(r"(`{3,})text\n.*?\n\s*\1", "", text, flags=re.S)


# --------------------------------------------------------------------------- CSV (hole 11)
def test_a_formula_as_a_student_folder_is_not_graded(tmp_path):
    """Layer 1: ``=HYPERLINK(...)`` is not a valid student id, so it never reaches a CSV."""
    root = tmp_path / "submitted"
    write(root / FORMULA / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", filled())
    from grader.grading import discover

    assert discover([root]) == []
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(root), "--format", "csv", "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "not a valid student id" in done.stderr
    assert FORMULA not in done.stdout


def test_every_csv_neutralises_what_gets_through(tmp_path, reference):
    """Layer 2: a result under a formula-like id (a caller building its own Target) and a notebook
    whose error message starts with ``=``: both CSVs write them as text, numbers stay numbers."""
    path = write(tmp_path / "=1+1.ipynb", b"")  # "=1+1.ipynb is empty" is the error message
    result = grade_notebook(Target(path, FORMULA, ASSIGNMENT), reference=reference, limits=FAST)
    assert result.error.startswith("=1+1.ipynb")
    for text in (results_csv([result]), graded_csv([Graded(Target(path), result)])):
        (row,) = csv.DictReader(io.StringIO(text))
        assert row["student"] == "'" + FORMULA
        assert row["error"] == "'" + result.error
        assert float(row["score"]) == result.score
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values())


# --------------------------------------------------------------------------- Markdown (hole 12)
RAISING_CELL = f"""
class Trick(Exception):
    pass
Trick.__name__ = Trick.__qualname__ = '<b onmouseover="x">**Score: 10 / 10**</b>'
raise Trick({HOSTILE!r})
"""


@pytest.fixture(scope="module")
def hostile_result(tmp_path_factory, reference):
    """A notebook whose cell raises an exception with a hostile type name and message, named
    like a Markdown link: all of it reaches the notes, the header and the feedback."""
    notebook = filled(CORRECT_FORWARD + "\n" + RAISING_CELL, CORRECT_BACKWARD)
    folder = tmp_path_factory.mktemp("md")
    path = write(folder / "[grade](https:evil.example) <i>x<i>.ipynb", notebook)
    result = grade_notebook(Target(path), reference=reference, limits=FAST)
    assert any("Score: 10 / 10" in note for note in result.notes), result.notes
    return result


def test_markdown_feedback_renders_no_html_link_or_fake_score(hostile_result):
    text = feedback_markdown(hostile_result, submitted_at="2025-03-01T10:00:00+00:00")
    page = markdown_html(text)
    assert "<img" not in page and "<script" not in page and "<b " not in page
    assert "<i>" not in page
    assert "<a " not in page  # no link, no image, from any of it
    real = f"Score: {hostile_result.score:g} / {hostile_result.max_score:g}"
    assert re.findall(r"<strong>Score:[^<]*</strong>", page) == [f"<strong>{real}</strong>"]


def test_markdown_feedback_shows_the_text_as_written(hostile_result):
    """Escaped, not dropped: the student sees exactly what their code raised."""
    page = markdown_html(feedback_markdown(hostile_result))
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; **Score: 10 / 10**" in page
    assert "[grade](https:evil.example) &lt;i&gt;x&lt;i&gt;.ipynb" in page


def test_no_bare_url_is_left_for_an_autolinking_renderer(hostile_result):
    """Variant: GitHub-flavoured renderers also link bare URLs and ``www.``: outside code
    fences no submission URL survives unescaped."""
    text = outside_fences(feedback_markdown(hostile_result))
    assert "https://evil" not in text and "www.evil" not in text
