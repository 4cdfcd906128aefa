"""Hostile environment: no working sandbox. Grading refuses (fails closed) unless told otherwise.

Issue 9, "fails open": without a working bubblewrap, ``grade`` and ``export`` graded anyway with
a warning, and that fallback lets student code read the references. Now the grading commands
(``grade``, ``export``, ``gradescope``, ``pytest --notebook`` with hidden checks) refuse, say how
to install bubblewrap, and grade only with ``--no-sandbox`` / ``DNN_KIT_SANDBOX=off``; the
student's self-check never needs it. Also here: the default-salt warning, the truthful
hidden-check note, and the nbgrader flow behind ``--trusted`` without the grader's environment.

"No working sandbox" is simulated in a fresh interpreter by the same stand-in the sandbox tests
use (``bwrap_path`` finds nothing), so the commands run exactly as installed otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_helpers import ROOT, real_sandbox  # noqa: F401

from grader.checks import checks_for
from grader.grading import Target, grade_notebook
from grader.report.feedback import feedback_html, feedback_markdown

ADA = ROOT / "data" / "sample_class" / "submitted" / "ada" / "02_dropout" / "02_dropout.ipynb"
NO_BWRAP = "import grader.runner.sandbox as s; s.bwrap_path = lambda: None\n"
INSTALL = "apt-get install bubblewrap"


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("CI", "DNN_KIT_SANDBOX", "DNN_KIT_SALT")
    }
    return env | extra


def without_bwrap(program: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``python -m grader ARGS`` (or pytest) in a fresh interpreter where bwrap is missing."""
    runner = {
        "grader": "from grader.__main__ import main\nsys.exit(main(sys.argv[1:]))",
        "pytest": "import pytest\nsys.exit(pytest.main(sys.argv[1:]))",
    }[program]
    return subprocess.run(
        [sys.executable, "-c", f"import sys\n{NO_BWRAP}{runner}", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def refused(done: subprocess.CompletedProcess) -> bool:
    text = done.stderr
    return INSTALL in text and "--no-sandbox" in text and "user namespaces" in text


# --------------------------------------------------------------------------- the grading commands
def test_grade_refuses_without_the_sandbox(tmp_path):
    done = without_bwrap("grader", "grade", str(ADA), "--format", "json", "--no-progress")
    assert done.returncode == 2 and refused(done), done.stderr
    assert done.stdout == ""


def test_export_refuses_and_writes_nothing(tmp_path):
    course = tmp_path / "course"
    done = without_bwrap("grader", "export", str(ADA), "--course", str(course), "--no-progress")
    assert done.returncode == 2 and refused(done), done.stderr
    assert not (course / "exports").exists() and not (course / "gradebook.db").exists()


def test_gradescope_refuses_with_a_results_json(tmp_path):
    upload = tmp_path / "submission"
    upload.mkdir()
    (upload / "02_dropout.ipynb").write_bytes(ADA.read_bytes())
    results = tmp_path / "results.json"
    done = without_bwrap(
        "grader", "gradescope", str(upload), "--results", str(results), "--assignment", "02_dropout"
    )
    data = json.loads(results.read_text())
    assert (data["score"], data["tests"]) == (0.0, [])
    assert "SandboxUnavailable" in data["output"] and INSTALL in done.stderr


def test_pytest_notebook_with_hidden_checks_refuses(tmp_path):
    done = without_bwrap("pytest", "-p", "no:cacheprovider", "--notebook", str(ADA))
    assert done.returncode == 4 and refused(done), done.stdout + done.stderr


@pytest.mark.parametrize("how", ["--no-sandbox", "DNN_KIT_SANDBOX=off"])
def test_grading_without_the_sandbox_must_be_asked_for(how):
    """Variant: asked for explicitly, the fallback grades, with a loud warning on stderr."""
    args = ["grade", str(ADA), "--format", "json", "--no-progress"]
    env = {}
    if how == "--no-sandbox":
        args.append(how)
    else:
        env["DNN_KIT_SANDBOX"] = "off"
    done = without_bwrap("grader", *args, **env)
    assert done.returncode == 0, done.stderr
    (data,) = json.loads(done.stdout)
    assert data["extra_data"]["isolation"] == "rlimits only"
    assert data["score"] == data["max_score"] == sum(c.points for c in checks_for("02_dropout"))
    assert "WARNING: bubblewrap sandbox unavailable" in done.stderr


def test_the_self_check_never_needs_the_sandbox():
    """The student's own code on the student's own machine: no sandbox, no warning, exit 0."""
    done = without_bwrap("grader", "check", str(ADA))
    assert done.returncode == 0 and "WARNING" not in done.stderr
    public = without_bwrap(
        "pytest", "-p", "no:cacheprovider", "--notebook", str(ADA), "--notebook-public-only"
    )
    assert public.returncode == 0, public.stdout


def test_the_security_suite_never_skips_silently(tmp_path):
    """Without the sandbox the hostile suite skips with the reason and the fix (outside CI), and
    fails under CI=true."""
    probe = ["-p", "no:cacheprovider", "-rs", f"{Path(__file__)}::test_real_sandbox_probe"]
    skipped = without_bwrap("pytest", *probe)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout
    assert "SECURITY SUITE NOT RUN" in skipped.stdout and INSTALL in skipped.stdout
    in_ci = without_bwrap("pytest", *probe, CI="true")
    assert in_ci.returncode == 1 and "CI=true" in in_ci.stdout


def test_real_sandbox_probe(real_sandbox):  # noqa: F811 - used by the test above
    assert real_sandbox != "rlimits only"


# --------------------------------------------------------------------------- salt, hidden note
def test_grade_and_export_warn_on_the_public_default_salt(tmp_path):
    def run(*args, **env):
        return subprocess.run(
            [sys.executable, "-m", "grader", *args, "--no-progress"],
            cwd=ROOT,
            env=clean_env(**env),
            capture_output=True,
            text=True,
            timeout=300,
        )

    warning = "public default salt"
    assert warning in run("grade", str(ADA)).stderr
    assert (
        warning in run("export", str(ADA), "--course", str(tmp_path / "c"), "--no-gradebook").stderr
    )
    assert warning not in run("grade", str(ADA), "--salt", "course-private").stderr
    assert warning not in run("grade", str(ADA), DNN_KIT_SALT="course-private").stderr


def test_the_hidden_check_note_says_what_it_shows(reference):
    """It shows shapes and p_drop of hidden cases: the note may not say "only its result"."""
    carl = ADA.parents[2] / "carl" / "02_dropout" / "02_dropout.ipynb"  # fails hidden checks
    result = grade_notebook(Target(carl), reference=reference)
    hidden = [c for c in result.checks if c.check.hidden and not c.passed]
    assert hidden and any("p_drop" in case.name for c in hidden for case in c.cases)
    for text in (feedback_markdown(result), feedback_html(result)):
        assert "only its result is shown" not in text
        assert "shapes" in text and "never its inputs, expected values or code" in text


# --------------------------------------------------------------------------- the nbgrader flow
def test_the_nbgrader_flow_needs_trusted(tmp_path):
    course = tmp_path / "course"
    done = subprocess.run(
        [sys.executable, "-m", "grader", "nbgrader", str(ADA), "--course", str(course)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2 and "--trusted" in done.stderr
    assert not course.exists()


def test_nbgrader_kernels_never_get_the_graders_environment(monkeypatch, tmp_path):
    """Hole 13: the kernel inherited DNN_KIT_REFERENCE (three lines imported the answers) and
    the salt. Whatever the instructor's shell holds, nothing of the grader's reaches it: the
    only DNN_KIT_* variable is the switch that keeps this flow on nbgrader's stock steps."""
    from grader.course import nbgrader_environment

    monkeypatch.setenv("DNN_KIT_SALT", "course-private")
    monkeypatch.setenv("DNN_KIT_REFERENCE", str(ROOT / "solutions"))
    env = nbgrader_environment(ROOT / "solutions" / "reference", "course-private")
    assert {k: v for k, v in env.items() if k.startswith("DNN_KIT_")} == {
        "DNN_KIT_NBGRADER": "stock"
    }
    assert "course-private" not in json.dumps(env)
    assert str(ROOT / "solutions") not in json.dumps(env)
