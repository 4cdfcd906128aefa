"""The command line contract: exit codes, formats, Gradescope JSON, and submissions left untouched."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kit_testing import ROOT, write_submission

from grader.checks import checks_for

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
ADA = SAMPLE / "ada" / "02_dropout" / "02_dropout.ipynb"
CARL = SAMPLE / "carl" / "02_dropout" / "02_dropout.ipynb"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_exit_codes():
    assert run("check", str(ADA)).returncode == 0
    failing = run("check", str(CARL))
    assert failing.returncode == 1
    assert "dropout.keep_prob_confusion" in failing.stdout
    assert run("check", "no/such/notebook.ipynb").returncode == 2
    assert run("check").returncode == 2
    assert run("frobnicate").returncode == 2


def test_check_runs_public_checks_only():
    out = run("check", str(ADA)).stdout
    public = [c.id for c in checks_for("02_dropout", include_hidden=False)]
    hidden = [c.id for c in checks_for("02_dropout") if c.hidden]
    assert all(cid in out for cid in public)
    assert not any(cid in out for cid in hidden)


def _validate_gradescope(result: dict) -> None:
    """The fields and types of Gradescope's results.json, plus the kit's extra_data contract."""
    assert set(result) >= {
        "score",
        "max_score",
        "execution_time",
        "output",
        "visibility",
        "tests",
        "extra_data",
    }
    assert isinstance(result["score"], int | float) and isinstance(result["max_score"], int | float)
    assert set(result["extra_data"]) >= {
        "submission",
        "student",
        "assignment",
        "notebook",
        "isolation",
    }
    assert abs(sum(t["score"] for t in result["tests"]) - result["score"]) < 1e-9
    for test in result["tests"]:
        assert set(test) >= {
            "name",
            "score",
            "max_score",
            "status",
            "output",
            "visibility",
            "extra_data",
        }
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("visible", "after_published")
        assert set(test["extra_data"]) == {"check", "diagnosis"}
        assert 0 <= test["score"] <= test["max_score"]


def test_grade_json_is_gradescope_results(tmp_path):
    out = tmp_path / "results.json"
    done = run(
        "grade", str(SAMPLE), "--format", "json", "--out", str(out), "--jobs", "2", "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert len(results) == len(list(SAMPLE.glob("*/*/*.ipynb")))
    for result in results:
        _validate_gradescope(result)
    by_student = {
        r["extra_data"]["student"]: r
        for r in results
        if r["extra_data"]["assignment"] == "02_dropout"
    }
    max_points = sum(c.points for c in checks_for("02_dropout"))
    assert by_student["ada"]["score"] == by_student["ada"]["max_score"] == max_points
    carl = by_student["carl"]
    assert any("dropout.keep_prob_confusion" in t["extra_data"]["diagnosis"] for t in carl["tests"])
    hidden = [
        t
        for t in carl["tests"]
        if t["extra_data"]["check"] in {c.id for c in checks_for("02_dropout") if c.hidden}
    ]
    assert hidden and all(t["visibility"] == "after_published" for t in hidden)
    # a corrupt notebook still gets a result, with the reason, and every check at 0
    mo = by_student["mo"]
    assert (
        mo["score"] == 0
        and mo["max_score"] == max_points
        and "not a valid notebook" in mo["output"]
    )


def test_grade_csv_and_table():
    table = run("grade", str(ADA), str(CARL), "--no-progress")
    assert table.returncode == 0 and "keep_prob_confusion" in table.stdout
    rows = list(
        csv.DictReader(
            io.StringIO(run("grade", str(ADA), "--format", "csv", "--no-progress").stdout)
        )
    )
    assert len(rows) == 1 and float(rows[0]["score"]) == float(rows[0]["max_score"])


def test_grade_bad_usage():
    assert run("grade").returncode == 2
    assert run("grade", "does/not/exist").returncode == 2
    assert run("grade", str(ADA), "--format", "xml").returncode == 2
    assert run("grade", str(ADA), "--jobs", "0").returncode == 2


def test_grading_never_changes_submissions(tmp_path):
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in SAMPLE.rglob("*.ipynb")}
    assert run("grade", str(SAMPLE), "--no-progress", "--format", "json").returncode == 0
    assert before == {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in SAMPLE.rglob("*.ipynb")}


BAD_INPUTS = {
    "raises": (
        "def dropout_forward(x, p_drop, mode='train', rng=None):\n    raise ValueError('oops')",
        "your code raised ValueError: oops",
    ),
    "returns a list": (
        "def dropout_forward(x, p_drop, mode='train', rng=None):\n    return x.tolist(), None",
        "is a list",
    ),
    "wrong shape": (
        "def dropout_forward(x, p_drop, mode='train', rng=None):\n    return x[:, :1], None",
        "has shape",
    ),
    "NaN": (
        "def dropout_forward(x, p_drop, mode='train', rng=None):\n    return x * np.nan, None",
        "NaN",
    ),
    "one value": (
        "def dropout_forward(x, p_drop, mode='train', rng=None):\n    return x",
        "should return 2 values",
    ),
    "missing": (
        "def dropout_forwardd(x, p_drop, mode='train', rng=None):\n    return x, None",
        "is not defined",
    ),
    "syntax error": (
        "def dropout_forward(x, p_drop, mode='train', rng=None):\n    return x,, None",
        "is not defined",
    ),
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_forward_gets_a_clear_message_and_backward_is_still_graded(kind, tmp_path):
    source, message = BAD_INPUTS[kind]
    good_backward = "def dropout_backward(dout, cache):\n    return dout"
    path = write_submission(
        tmp_path, "02_dropout", {"dropout_forward": source, "dropout_backward": good_backward}
    )
    from grader.grading import Target, grade_notebook

    result = grade_notebook(Target(path))
    assert not result.error
    forward = next(c for c in result.checks if c.check.id == "dropout_train_forward")
    assert not forward.passed
    assert all(message in case.message for case in forward.cases), [
        c.message for c in forward.cases
    ]
    assert len(result.checks) == len(checks_for("02_dropout"))
    if kind == "syntax error":
        assert any("SyntaxError" in note for note in result.notes)


def test_warnings_never_cost_points(tmp_path):
    noisy = (
        "def dropout_forward(x, p_drop, mode='train', rng=None):\n"
        "    import warnings, sys\n"
        "    warnings.warn('just so you know')\n"
        "    print('debug output', file=sys.stderr)\n"
        "    np.log(-1.0)  # a NumPy RuntimeWarning\n"
        "    rng = rng or np.random.default_rng()\n"
        "    if mode == 'test':\n"
        "        return x.copy(), None\n"
        "    mask = rng.random(x.shape) >= p_drop\n"
        "    return x * mask / (1 - p_drop), mask / (1 - p_drop)\n"
    )
    backward = (
        "def dropout_backward(dout, cache):\n    return dout if cache is None else dout * cache"
    )
    path = write_submission(
        tmp_path, "02_dropout", {"dropout_forward": noisy, "dropout_backward": backward}
    )
    from grader.grading import Target, grade_notebook

    result = grade_notebook(Target(path))
    assert result.score == result.max_score
    assert any("warned" in note for c in result.checks for case in c.cases for note in case.notes)


def test_salt_changes_hidden_inputs_only(tmp_path):
    from grader.checks import get_check
    from grader.checks.cases import cases_for

    hidden = get_check("dropout_hidden_forward")
    a = cases_for(hidden, salt="course-a")
    b = cases_for(hidden, salt="course-b")
    assert [c.name for c in a] != [c.name for c in b] or any(
        not (
            ca.inputs["x"].shape == cb.inputs["x"].shape
            and (ca.inputs["x"] == cb.inputs["x"]).all()
        )
        for ca, cb in zip(a, b, strict=True)
    )
    env = dict(os.environ, DNN_KIT_SALT="course-a")
    assert (
        subprocess.run(
            [sys.executable, "-m", "grader", "check", str(ADA)], env=env, capture_output=True
        ).returncode
        == 0
    )
