"""An instructor clicks formgrader's Autograde button once, in a real browser, and the kit grades.

A course directory made with the repository's config holds one submission (a sample notebook with
a catalogued mistake). The Jupyter server runs nbgrader's formgrader; Chromium opens its "manage
submissions" page and clicks the Autograde (flash) icon of that student. The gradebook then holds
exactly the per-check scores ``python -m grader grade`` gives the same file.
"""

from __future__ import annotations

import secrets

import pytest
from bench_nbgrader import make_course, nbgrader_env  # scripts/ is on sys.path

from grader.grading import discover, grade_many
from grader.runner import sandbox

from .conftest import ROOT
from .test_jupyterlab import free_port, start_lab, stop, wait_until_serving

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SUBMISSION = (
    ROOT / "data" / "sample_class" / "submitted" / "carl" / "02_dropout" / "02_dropout.ipynb"
)


def test_formgrader_autograde_button_runs_the_kit(tmp_path, offline, screenshots, reference):
    if sandbox.require() == sandbox.FALLBACK:
        pytest.skip("the bubblewrap sandbox is unavailable here (CI=true makes this an error)")
    course = tmp_path / "course"
    make_course(course, [SUBMISSION], env=nbgrader_env(True))
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    server = start_lab(tmp_path, course, port, token)
    try:
        wait_until_serving(server, f"{base}/api/status?token={token}", tmp_path / "jupyter.log")
        browser = offline(base + "/", base.replace("http", "ws") + "/")
        # the page's own API calls (jQuery) must carry the token too: a URL token covers one page
        browser.context.set_extra_http_headers({"Authorization": f"token {token}"})
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{base}/formgrader/manage_submissions/02_dropout?token={token}")
        row = page.locator("tr", has_text="carl")
        try:
            row.locator(".autograde a").click()
        except Exception:
            page.screenshot(path=str(screenshots / "formgrader-failure.png"))
            pytest.fail(
                f"no Autograde button for carl; blocked requests: {browser.blocked}; "
                f"console errors: {browser.console_errors}; page: {page.content()[-1500:]}"
            )
        page.get_by_text("Successfully autograded '02_dropout' for student 'carl'.").wait_for(
            timeout=180_000
        )
        page.screenshot(path=str(screenshots / "formgrader-autograded.png"))
        assert "graded by the kit" in page.content()  # nbgrader's log: our step, not Execute
    finally:
        stop(server)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook("02_dropout", "02_dropout", "carl")
        recorded = {g.name: float(g.score) for g in notebook.grades if g.cell_type == "code"}
    (ours,) = grade_many(
        discover([course / "submitted"]), jobs=1, reference=reference, progress=False
    )
    assert recorded == pytest.approx({c.check.id: c.score for c in ours.checks})
    assert ours.score < ours.max_score  # the sample's mistake costs points in both
