"""``pytest --notebook PATH``: one pytest test per check, JUnit XML, and the exit codes.

Each run is a separate ``python -m pytest`` in a temporary folder (as a CI job would run it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from kit_testing import ROOT

from grader.checks import checks_for

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
ADA = SAMPLE / "ada" / "02_dropout" / "02_dropout.ipynb"
CARL = SAMPLE / "carl" / "02_dropout" / "02_dropout.ipynb"
MO = SAMPLE / "mo" / "02_dropout" / "02_dropout.ipynb"


def pytest(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def junit(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


def test_one_test_per_check_with_junit_xml(tmp_path):
    report = tmp_path / "report.xml"
    done = pytest("--notebook", str(CARL), f"--junitxml={report}", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    cases = junit(report)
    assert set(cases) == {
        c.id for c in checks_for("02_dropout")
    }  # hidden ones too: references found
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {"dropout_train_forward", "dropout_hidden_forward"}
    failure = cases["dropout_train_forward"].find("failure")
    assert "dropout.keep_prob_confusion" in failure.text and "1/(1 - p_drop)" in failure.text
    properties = {p.get("name"): p.get("value") for p in cases["dropout_backward"].iter("property")}
    assert float(properties["score"]) == float(properties["max_score"]) == 2.0
    assert "2 failed, 4 passed" in done.stdout


def test_all_checks_pass_exit_zero_and_plugin_flag(tmp_path):
    done = pytest("--notebook", str(ADA), "-p", "grader.pytest_plugin", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(checks_for('02_dropout'))} passed" in done.stdout


def test_public_only_and_a_folder_of_notebooks(tmp_path):
    folder = tmp_path / "hand-ins"
    folder.mkdir()
    shutil.copyfile(ADA, folder / "a.ipynb")
    shutil.copyfile(CARL, folder / "02_dropout.ipynb")
    report = tmp_path / "r.xml"
    done = pytest(
        "--notebook", str(folder), "--notebook-public-only", f"--junitxml={report}", cwd=tmp_path
    )
    assert done.returncode == 1
    names = [
        (c.get("classname"), c.get("name")) for c in ET.parse(report).getroot().iter("testcase")
    ]
    public = [c.id for c in checks_for("02_dropout", include_hidden=False)]
    assert sorted(n for _, n in names) == sorted(public * 2)
    assert "1 failed" in done.stdout


def test_a_corrupt_notebook_fails_every_check_with_the_reason(tmp_path):
    done = pytest("--notebook", str(MO), cwd=tmp_path)
    assert done.returncode == 1
    assert f"{len(checks_for('02_dropout'))} failed" in done.stdout
    assert "not a valid notebook" in done.stdout


def test_salt_reaches_hidden_checks(tmp_path):
    report_a, report_b = tmp_path / "a.xml", tmp_path / "b.xml"
    pytest(
        "--notebook",
        str(CARL),
        "--notebook-salt",
        "course-a",
        f"--junitxml={report_a}",
        cwd=tmp_path,
    )
    pytest(
        "--notebook",
        str(CARL),
        "--notebook-salt",
        "course-b",
        f"--junitxml={report_b}",
        cwd=tmp_path,
    )
    a = junit(report_a)["dropout_hidden_forward"].find("failure").text
    b = junit(report_b)["dropout_hidden_forward"].find("failure").text
    assert a != b  # other hidden shapes and rates


def test_bad_paths_are_usage_errors(tmp_path):
    done = pytest("--notebook", str(tmp_path / "missing.ipynb"), cwd=tmp_path)
    assert done.returncode == 4 and "no such notebook" in done.stderr
    (tmp_path / "empty").mkdir()
    assert pytest("--notebook", str(tmp_path / "empty"), cwd=tmp_path).returncode == 4


def test_only_the_notebooks_run_unless_tests_are_named(tmp_path):
    (tmp_path / "test_other.py").write_text("def test_other():\n    pass\n")
    done = pytest("--notebook", str(ADA), cwd=tmp_path)
    assert done.returncode == 0 and "test_other" not in done.stdout
    both = pytest("--notebook", str(ADA), "test_other.py", "-v", cwd=tmp_path)
    assert (
        both.returncode == 0 and "test_other" in both.stdout and "dropout_backward" in both.stdout
    )


def test_other_test_suites_are_unaffected(tmp_path):
    """Without --notebook the plugin collects nothing and changes nothing."""
    (tmp_path / "test_other.py").write_text("def test_other():\n    pass\n")
    shutil.copyfile(ADA, tmp_path / "02_dropout.ipynb")  # a notebook lying around is not collected
    with_plugin = pytest("-v", cwd=tmp_path)
    without = pytest("-v", "-p", "no:grader.pytest_plugin", cwd=tmp_path)
    assert with_plugin.returncode == without.returncode == 0
    assert "1 passed" in with_plugin.stdout and "1 passed" in without.stdout
    listed = pytest("--co", "-q", "tests/cli", cwd=ROOT)
    plain = pytest("--co", "-q", "tests/cli", "-p", "no:grader.pytest_plugin", cwd=ROOT)
    count = re.compile(r"(\d+) tests? collected")
    assert count.search(listed.stdout).group(1) == count.search(plain.stdout).group(1)
    assert "--notebook=PATH" in pytest("--help", cwd=tmp_path).stdout
