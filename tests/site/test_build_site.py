"""The self-study walkthrough (scripts/build_site.py): found notebooks, pages, catalogue, glossary,
offline assets, the executed-notebook cache. The browser tests in tests/browser look at the result."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import build_site  # scripts/ is on sys.path (tests/conftest.py)
import nbformat
import pytest

from grader.checks import CHECKS, MISCONCEPTIONS, TOPICS

ROOT = Path(__file__).resolve().parents[2]
# anything the browser would fetch by itself: scripts, stylesheets, images, frames, fonts, imports
REMOTE_LOAD = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio|embed|object)\b[^>]*\b(?:src|href|data)\s*=\s*[\"']?\s*(?:https?:)?//"
    r"|url\(\s*[\"']?\s*(?:https?:)?//|@import\s+[\"']?(?:url\()?\s*[\"']?(?:https?:)?//",
    re.I,
)
# simplified forms of characters the glossary uses (過擬則規權減習數據練驗證傳層絡損變異丟棄動標測試參歸協)
SIMPLIFIED_ONLY = set("过拟则规权减习数据练验证传层络损变异丢弃动标测试参归协")


def require_katex() -> None:
    try:
        build_site.find_katex()
    except build_site.BuildError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} — CI=true, so the walkthrough must build", pytrace=False)
        pytest.skip(str(exc))


def remote_loads(site: Path) -> list[str]:
    found = []
    for path in site.rglob("*"):
        if path.suffix in (".html", ".css", ".js") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [
                f"{path.relative_to(site)}: {m.group(0)[:120]}" for m in REMOTE_LOAD.finditer(text)
            ]
    return found


# --------------------------------------------------------------------------- fast: no kernels
def test_every_solution_notebook_is_found_and_new_ones_automatically(tmp_path, monkeypatch):
    present = sorted(
        p.name
        for p in (ROOT / "solutions").glob("[0-9][0-9]_*")
        if (p / f"{p.name}.ipynb").exists()
    )
    assert [p.stem for p in build_site.solution_notebooks()] == present
    assert "02_dropout" in present

    for name in ("01_a", "07_new_topic"):
        (tmp_path / name).mkdir()
        nbformat.write(nbformat.v4.new_notebook(), tmp_path / name / f"{name}.ipynb")
    (tmp_path / "reference").mkdir()
    (tmp_path / "08_source_only").mkdir()  # a source without its generated notebook is not a page
    monkeypatch.setattr(build_site, "SOLUTIONS", tmp_path)
    assert [p.stem for p in build_site.solution_notebooks()] == ["01_a", "07_new_topic"]
    assert [p.stem for p in build_site.solution_notebooks(["07_new_topic"])] == ["07_new_topic"]
    with pytest.raises(build_site.BuildError, match="99_nothing"):
        build_site.solution_notebooks(["99_nothing"])


def test_reading_copy_drops_nbgrader_markers_and_tags_each_cell_with_its_role():
    notebook = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell(
        "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    )
    code.metadata["dnn_kit"] = {"role": "solution"}
    hidden = nbformat.v4.new_code_cell(
        'check_implemented("h")\n### BEGIN HIDDEN TESTS\ncheck("h")\n### END HIDDEN TESTS'
    )
    answer = nbformat.v4.new_markdown_cell(
        "### BEGIN SOLUTION\nBecause the mask is fixed.\n### END SOLUTION"
    )
    answer.metadata["dnn_kit"] = {"role": "answer"}
    notebook.cells = [code, hidden, answer]
    reading = build_site._for_reading(notebook)
    assert [c.source for c in reading.cells] == [
        "def f(x):\n    return 2 * x",
        'check_implemented("h")\ncheck("h")',
        "Because the mask is fixed.",
    ]
    assert reading.cells[0].metadata["tags"] == ["role-solution"]
    assert reading.cells[2].metadata["tags"] == ["role-answer"]
    assert "BEGIN SOLUTION" in notebook.cells[0].source, "the original notebook is left alone"


def test_glossary_has_the_lecture_terms_in_traditional_chinese():
    title, intro, sections = build_site.read_glossary()
    rows = [row for section in sections for row in section.rows]
    terms = {row[0]: row[1] for row in rows}
    required = {
        "regularization": "正則化",
        "dropout": "丟棄法",
        "batch normalization": "批次正規化",
        "overfitting": "過擬合",
        "high variance": "高變異",
        "weight decay": "權重衰減",
        "mini-batch": "小批次",
        "learning rate": "學習率",
        "gradient": "梯度",
    }
    for english, chinese in required.items():
        assert english in terms, f"{english} missing from docs/glossary.md"
        assert chinese in terms[english], f"{english}: {terms[english]} (expected {chinese})"
    assert 20 <= len(rows) <= 45, "keep the glossary short"
    for english, chinese, meaning, explanation in rows:
        assert all(cell.strip() for cell in (english, chinese, meaning, explanation)), english
        assert build_site.CJK.search(chinese) and build_site.CJK.search(explanation), english
        simplified = set(chinese + explanation) & SIMPLIFIED_ONLY
        assert not simplified, f"{english}: simplified characters {simplified}"
    assert "DNN Discussion 2" in intro and "名詞" in title


def test_catalogue_lists_every_misconception_with_the_checks_that_report_it():
    evidence = build_site.misconception_evidence()
    page = build_site.catalogue_page([], evidence)
    for mid, item in MISCONCEPTIONS.items():
        assert f"<tr id='{mid}'>" in page
        assert (
            build_site.html.escape(item.title) in page and build_site.html.escape(item.hint) in page
        )
    for mid, seen in evidence.items():
        assert mid in MISCONCEPTIONS, f"a check reported {mid}, which is not in the catalogue"
        assert set(seen["checks"]) <= set(CHECKS)
        # a mistake is listed under its own topic, whichever notebook's checks report it
        topic = next(t for t in TOPICS if mid in t.MISCONCEPTIONS)
        assert page.index(f"<h2 id='{topic.NOTEBOOK}'>") < page.index(f"<tr id='{mid}'>")
    # every mistake a sample answer was written for is shown with at least one check that names it
    declared = set()
    for answer in sorted(build_site.ANSWERS.glob("*/*.py")):
        for line in answer.read_text(encoding="utf-8").splitlines():
            if line.startswith("expect:") and line.split(":", 1)[1].strip() in MISCONCEPTIONS:
                declared.add(line.split(":", 1)[1].strip())
    missing = sorted(m for m in declared if not evidence.get(m, {}).get("checks"))
    assert not missing, f"no check reported these for their sample answers: {missing}"


def test_executes_with_full_experiments_caches_by_content_and_names_a_failing_notebook(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(
        "NBGRADER_EXECUTION", "autograde"
    )  # the build must not run the short version
    monkeypatch.setenv("DNN_KIT_QUICK", "1")
    source = tmp_path / "01_tiny.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("from grader.toolkit import quick_mode\nprint(quick_mode())")
    ]
    nbformat.write(notebook, source)
    cache = tmp_path / "cache"

    def run(path):
        page = build_site.Page(path.stem, path)
        build_site.execute_all([page], jobs=1, timeout=60, cache=cache)
        return page

    first = run(source)
    assert not first.cached
    assert first.notebook.cells[0].outputs[0].text == "False\n"
    assert run(source).cached, "the same notebook is taken from the cache"
    notebook.cells.append(nbformat.v4.new_code_cell("print('changed')"))
    nbformat.write(notebook, source)
    changed = run(source)
    assert not changed.cached and changed.notebook.cells[1].outputs[0].text == "changed\n"
    assert len(list(cache.glob("01_tiny-*.ipynb"))) == 1, "older entries of a notebook are dropped"

    broken = tmp_path / "02_broken.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), broken)
    with pytest.raises(
        build_site.BuildError,
        match=r"(?s)02_broken: a cell failed.*ZeroDivisionError: division by zero",
    ):
        run(broken)
    assert not list(cache.glob("02_broken-*")), "a failed run is not cached"


def test_notebook_text_has_no_control_characters_from_lost_backslashes():
    """``\\text`` typed into a non-raw Python string becomes a TAB and "ext" (likewise ``\\frac``,
    ``\\vec``, ``\\beta``...): KaTeX then typesets the wrong thing without any error."""
    lost = {"\t": "\\t", "\f": "\\f", "\v": "\\v", "\b": "\\b", "\a": "\\a", "\r": "\\r"}
    found = []
    for path in build_site.solution_notebooks():
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "markdown":
                for char, name in lost.items():
                    if char in cell.source:
                        where = cell.source.index(char)
                        found.append(
                            f"{path.stem} cell {index}: {name} in {cell.source[max(0, where - 30) : where + 20]!r}"
                        )
    assert not found, "\n".join(found)


def test_katex_missing_says_how_to_install_it(tmp_path):
    with pytest.raises(build_site.BuildError, match="libjs-katex"):
        build_site.find_katex(str(tmp_path))


def test_does_not_replace_a_folder_it_did_not_build(tmp_path):
    built, out = tmp_path / "built", tmp_path / "docs"
    built.mkdir()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(build_site.BuildError, match="not replacing"):
        build_site._replace_folder(built, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_build_writes_every_page_with_offline_assets(tmp_path, monkeypatch):
    """The whole build without kernels (notebooks rendered as stored), to check pages and assets."""
    require_katex()

    def no_execution(pages, **_):
        for page in pages:
            page.notebook = nbformat.read(page.source, as_version=4)

    monkeypatch.setattr(build_site, "execute_all", no_execution)
    monkeypatch.setattr(build_site, "misconception_evidence", dict)  # tested on its own above
    out = tmp_path / "site"
    report = build_site.build(out, cache=None)
    names = [p.name for p in report.pages]
    assert names == [p.stem for p in build_site.solution_notebooks()]
    index = (out / "index.html").read_text(encoding="utf-8")
    for name in names:
        page = (out / f"{name}.html").read_text(encoding="utf-8")
        assert f"href='{name}.html'" in index
        assert "BEGIN SOLUTION" not in page and "END HIDDEN TESTS" not in page
        assert 'src="assets/katex/katex.min.js"' in page and 'href="assets/style.css"' in page
        assert "celltag_role-solution" in page
    for name in ("misconceptions.html", "glossary.html", "assets/style.css", "assets/site.js",
                 "assets/katex/katex.min.js", "assets/katex/katex.min.css",
                 "assets/katex/contrib/auto-render.min.js", "assets/katex/fonts/KaTeX_Main-Regular.woff2"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not any(p.is_symlink() for p in out.rglob("*")), (
        "the site must be a plain folder (an artifact)"
    )
    assert remote_loads(out) == []
    assert "http" not in (out / "assets" / "site.js").read_text()

    (out / "stale.html").write_text("from an older build")
    build_site.build(out, cache=None)
    assert not (out / "stale.html").exists(), "a rebuild replaces the folder"


def test_remote_load_detector_catches_cdn_references():
    assert REMOTE_LOAD.search('<script src="https://cdn.example/mathjax.js"></script>')
    assert REMOTE_LOAD.search("<link rel=stylesheet href='//cdn.example/katex.css'>")
    assert REMOTE_LOAD.search("@font-face{src:url(https://fonts.example/a.woff2)}")
    assert not REMOTE_LOAD.search('<a href="https://nbgrader.readthedocs.io">docs</a>')
    assert not REMOTE_LOAD.search('<img src="data:image/png;base64,iVBOR">')


# --------------------------------------------------------------------------- slow: the one command
@pytest.mark.slow
def test_one_command_builds_the_executed_walkthrough_and_caches_it(tmp_path):
    require_katex()
    out = tmp_path / "site"
    command = [sys.executable, str(ROOT / "scripts" / "build_site.py"), "--out", str(out)]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    names = [p.stem for p in build_site.solution_notebooks()]
    for name in names:
        page = (out / f"{name}.html").read_text(encoding="utf-8")
        plots = page.count("data:image/png;base64,")
        assert plots >= 1, f"{name}: no plot"
        assert "application/vnd.jupyter.stderr" not in page, f"{name} has an error or stderr output"
        assert "jp-OutputArea-output" in page
    assert remote_loads(out) == []

    start = time.perf_counter()
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.stdout.count("from cache") == len(names), again.stdout
    assert seconds < 60, f"a cached rebuild took {seconds:.0f} s"
