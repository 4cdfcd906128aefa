"""The class report: aggregated, self-contained, sorted so the instructor sees what to re-teach."""

from __future__ import annotations

import base64
import html
import re
import shutil

from kit_testing import ROOT

from grader.checks import MISCONCEPTIONS
from grader.checks.cases import salt_from_environment
from grader.grading import discover
from grader.report.attendance import not_attempted
from grader.report.class_report import aggregate, class_report_html
from grader.report.points import apply_points
from grader.store import Context, grade_with_store

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
PNG = b"\x89PNG\r\n\x1a\n"


def renamed_class(tmp_path, reference):
    """The sample class for dropout, every student renamed to an unmistakable id."""
    root = tmp_path / "submitted"
    names = {}
    for folder in sorted(SAMPLE.glob("*/02_dropout")):
        new = f"zq{folder.parent.name}x"
        names[folder.parent.name] = new
        shutil.copytree(folder, root / new / "02_dropout")
    graded = grade_with_store(
        discover([root]),
        store=None,
        context=Context(salt_from_environment(), reference),
        progress=False,
    )
    return [g.result for g in graded], names


def test_report_is_aggregated_and_names_students_only_on_request(tmp_path, reference):
    results, names = renamed_class(tmp_path, reference)
    page = class_report_html(results)
    assert "aggregated, no student identifiers" in page
    for name in names.values():
        assert name not in page
    with_names = class_report_html(results, list_students=True)
    assert names["carl"] in with_names and names["mo"] in with_names


def test_report_is_self_contained_with_real_plots(tmp_path, reference):
    results, _ = renamed_class(tmp_path, reference)
    page = class_report_html(results)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', page)
    assert len(images) == 3  # histogram, pass rates, misconceptions
    for data, alt in images:
        assert base64.b64decode(data).startswith(PNG) and alt
    assert "<script" not in page and "http://" not in page and "https://" not in page
    (tmp_path / "report.html").write_text(page)


def test_misconceptions_are_counted_sorted_and_explained(tmp_path, reference):
    results, _ = renamed_class(tmp_path, reference)
    [stats] = aggregate(results)
    counts = [m.count for m in stats.misconceptions]
    assert counts == sorted(counts, reverse=True) and counts
    found = {d for r in results for c in r.checks for d in c.diagnosis}
    assert {m.id for m in stats.misconceptions} == found
    rates = [c.rate for c in stats.checks]
    assert rates == sorted(rates)  # lowest pass rate first
    page = class_report_html(results)
    for m in stats.misconceptions:
        assert html.escape(MISCONCEPTIONS[m.id].title) in page
        assert html.escape(MISCONCEPTIONS[m.id].hint) in page
    keep_prob = next(m for m in stats.misconceptions if m.id == "dropout.keep_prob_confusion")
    assert keep_prob.count == 1 and "dropout_train_forward" in keep_prob.checks
    untouched = [r for r in results if not_attempted(r)]
    assert untouched and stats.not_attempted == sorted(r.student for r in untouched)
    assert stats.gradable == len(results) - 1 - len(untouched)  # the corrupt, the untouched
    assert sum(stats.ungradable.values()) == 1
    assert "not a valid notebook" in page


def test_report_uses_the_course_points(tmp_path, reference):
    results, _ = renamed_class(tmp_path, reference)
    pointed = [apply_points(r, {"dropout_train_forward": 7.0}) for r in results]
    [stats] = aggregate(pointed)
    assert stats.max_score == results[0].max_score + 4
    assert next(c for c in stats.checks if c.id == "dropout_train_forward").points == 7.0


def test_an_empty_class_still_gets_a_page():
    assert "No submissions" in class_report_html([])
