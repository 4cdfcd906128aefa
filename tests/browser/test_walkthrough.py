"""The walkthrough in a real browser: contents → notebook pages with typeset formulas and plots,
the misconception catalogue and the glossary, all offline."""

from __future__ import annotations

import contextlib
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from grader.checks import MISCONCEPTIONS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

MATH_READY = "document.documentElement.dataset.math === 'done'"
IMAGES_LOADED = "Array.from(document.querySelectorAll('main img')).every(i => i.complete)"
# text a reader sees outside code, typeset formulas and the grader's tables: no TeX may be left in it
LEFTOVER_TEX = r"""() => {
  const main = document.querySelector("main").cloneNode(true);
  main.querySelectorAll("pre, code, script, style, .katex, .jp-RenderedHTML").forEach(e => e.remove());
  const text = main.textContent;
  return {
    display: (text.match(/\$\$/g) || []).length,
    inline: text.match(/\$[^$\n]{1,80}\$/g) || [],
    commands: text.match(/\\(frac|begin|mathbb|mathrm|sum|sqrt|text|odot|partial|lVert|tfrac)\b/g) || [],
  };
}"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder):
    """A static file server for ``folder`` on 127.0.0.1 (a free port), stopped afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def typeset(page) -> int:
    """Wait for KaTeX, check it reported no error and left no TeX behind; the formula count."""
    page.wait_for_function(MATH_READY, timeout=20_000)
    assert page.evaluate("document.documentElement.dataset.mathErrors") == "0", (
        "KaTeX could not parse a formula"
    )
    assert page.locator(".katex-error").count() == 0
    leftover = page.evaluate(LEFTOVER_TEX)
    assert leftover == {"display": 0, "inline": [], "commands": []}, leftover
    return page.locator(".katex").count()


def shoot(page, locator, path) -> None:
    """A screenshot of the viewport with ``locator`` in its middle."""
    locator.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(path))


def test_walkthrough_renders_offline_with_formulas_and_plots(walkthrough, offline, screenshots):
    import build_site

    expected = [p.stem for p in build_site.solution_notebooks()]
    with serve(walkthrough) as base:
        browser = offline(base + "/")
        page = browser.new_page()
        page.goto(base + "/index.html")
        typeset(page)
        page.screenshot(path=str(screenshots / "walkthrough-index.png"))
        links = page.locator(".cards h3 a")
        assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
            f"{n}.html" for n in expected
        ]

        # follow the contents page to the first notebook, as a reader would
        first = links.first.get_attribute("href")
        links.first.click()
        page.wait_for_url(f"{base}/{first}")
        hints_seen = []
        for i, name in enumerate(expected):
            if i:
                page.goto(f"{base}/{name}.html")
            formulas = typeset(page)
            assert formulas >= 5, f"{name}: only {formulas} typeset formulas"
            page.wait_for_function(IMAGES_LOADED, timeout=20_000)
            widths = page.evaluate(
                "Array.from(document.querySelectorAll('main img')).map(i => i.naturalWidth)"
            )
            assert widths and all(w > 0 for w in widths), f"{name}: plots {widths}"
            assert page.locator("text=BEGIN SOLUTION").count() == 0
            if i == 0:
                page.screenshot(path=str(screenshots / f"walkthrough-{name}-top.png"))
                shoot(
                    page,
                    page.locator(".katex-display").first,
                    screenshots / f"walkthrough-{name}-formula.png",
                )
            hint = page.locator("main details").first
            if hint.count() and not hints_seen:  # hints open one at a time, formulas inside typeset
                summary = hint.locator("summary").inner_text()
                hint.locator("summary").click()
                assert hint.evaluate("e => e.open"), "a hint does not open"
                assert len(hint.inner_text()) > len(summary) + 20, "an opened hint shows nothing"
                shoot(page, hint, screenshots / f"walkthrough-{name}-hint.png")
                hints_seen.append(name)
            shoot(
                page, page.locator("main img").first, screenshots / f"walkthrough-{name}-plot.png"
            )

        page.goto(base + "/misconceptions.html")
        typeset(page)
        for mid, item in MISCONCEPTIONS.items():
            row = page.locator(f"tr[id='{mid}']")
            assert row.count() == 1, f"{mid} is not in the catalogue"
            assert item.title in row.inner_text()
        page.screenshot(path=str(screenshots / "walkthrough-misconceptions.png"))

        page.goto(base + "/glossary.html")
        typeset(page)
        text = page.locator("main").inner_text()
        for term in (
            "regularization",
            "正則化",
            "dropout",
            "丟棄法",
            "batch normalization",
            "批次正規化",
        ):
            assert term in text
        page.screenshot(path=str(screenshots / "walkthrough-glossary.png"))

        assert hints_seen, "no notebook page has hints (<details>) to open"
        assert browser.blocked == [], (
            f"the walkthrough tried to load from elsewhere: {browser.blocked}"
        )
        assert browser.console_errors == [], browser.console_errors


def test_walkthrough_works_from_the_file_system(walkthrough, offline):
    """A self-learner may just open _site/index.html: no server, still typeset and offline."""
    browser = offline("file://")
    page = browser.new_page()
    page.goto((walkthrough / "index.html").as_uri())
    typeset(page)
    page.locator(".cards h3 a").first.click()
    assert typeset(page) >= 5
    assert browser.blocked == [], browser.blocked
