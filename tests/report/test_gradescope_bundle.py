"""The Gradescope autograder bundle: its layout, and run_autograder producing results.json.

Gradescope itself cannot run here; ``run_autograder`` is run as Gradescope would run it, in a
folder laid out like ``/autograder`` (``AUTOGRADER_ROOT``), with this Python instead of the
bundle's virtual environment (``DNN_KIT_PYTHON``).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from kit_testing import ROOT, build_wheel

from grader.grading import Target, grade_notebook
from grader.report.gradescope import results_json

SAMPLE = ROOT / "data" / "sample_class" / "submitted"
SALT = "a course-private salt for the bundle test"


def build(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "autograder.zip"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "gradescope-bundle",
            "--out",
            str(out),
            "--salt",
            SALT,
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return out


def unpack(bundle: Path, root: Path) -> Path:
    """Lay the zip out as Gradescope does: /autograder/source and /autograder/run_autograder."""
    source = root / "source"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(source)
        for info in archive.infolist():  # zipfile does not restore permissions
            os.chmod(source / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    return root


def run_autograder(root: Path) -> dict:
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), DNN_KIT_PYTHON=sys.executable)
    done = subprocess.run(
        [str(root / "run_autograder")],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_bundle_layout(tmp_path):
    bundle = build(tmp_path, "--assignment", "02_dropout")
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        modes = {i.filename: (i.external_attr >> 16) for i in archive.infolist()}
        assert archive.read("course/salt.txt").decode() == SALT
        assert b"--assignment 02_dropout" in archive.read("run_autograder")
        pyproject = archive.read("kit/pyproject.toml").decode()
    assert {
        "setup.sh",
        "run_autograder",
        "kit/pyproject.toml",
        "course/salt.txt",
        "course/points.toml",
    } <= names
    assert (
        "kit/grader/__main__.py" in names and "kit/grader/checks/fixtures/02_dropout.npz" in names
    )
    assert "course/reference/__init__.py" in names and "course/reference/dropout.py" in names
    assert not any("__pycache__" in n or n.startswith("kit/solutions") for n in names)
    assert not any(n.startswith("kit/grader/") and "reference" in Path(n).parts[2:3] for n in names)
    for script in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(modes[script]) == 0o755
        assert (
            subprocess.run(
                ["bash", "-n", "-c", zipfile.ZipFile(bundle).read(script).decode()]
            ).returncode
            == 0
        )
    assert "numpy" in pyproject and 'name = "dnn-discussion-kit"' in pyproject


def test_run_autograder_grades_the_upload_with_the_bundles_salt(tmp_path, reference):
    root = unpack(build(tmp_path), tmp_path / "autograder")
    upload = root / "submission" / "my notebook.ipynb"
    shutil.copyfile(SAMPLE / "carl" / "02_dropout" / "02_dropout.ipynb", upload)
    results = run_autograder(root)
    expected = results_json(grade_notebook(Target(upload), salt=SALT, reference=reference))
    assert results["score"] == expected["score"] and results["max_score"] == expected["max_score"]
    assert [t["output"] for t in results["tests"]] == [t["output"] for t in expected["tests"]]
    hidden = [t for t in results["tests"] if t["visibility"] == "after_published"]
    assert hidden and any(
        "dropout.keep_prob_confusion" in t["extra_data"]["diagnosis"] for t in hidden
    )
    other_salt = results_json(grade_notebook(Target(upload), reference=reference))
    assert [t["output"] for t in results["tests"] if t["visibility"] != "visible"] != [
        t["output"] for t in other_salt["tests"] if t["visibility"] != "visible"
    ]


def test_run_autograder_with_points_and_without_a_notebook(tmp_path):
    points = tmp_path / "points.json"
    points.write_text('{"dropout_train_forward": 6}')
    root = unpack(build(tmp_path, "--points", str(points)), tmp_path / "autograder")
    assert run_autograder(root)["score"] == 0  # nothing uploaded: a result anyway
    assert "No notebook" in json.loads((root / "results" / "results.json").read_text())["output"]
    shutil.copyfile(
        SAMPLE / "ada" / "02_dropout" / "02_dropout.ipynb", root / "submission" / "02_dropout.ipynb"
    )
    results = run_autograder(root)
    forward = next(
        t for t in results["tests"] if t["extra_data"]["check"] == "dropout_train_forward"
    )
    assert forward["max_score"] == 6 and results["score"] == results["max_score"]


def test_run_autograder_writes_results_even_when_the_grader_cannot_start(tmp_path):
    root = unpack(build(tmp_path), tmp_path / "autograder")
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), DNN_KIT_PYTHON="/nonexistent/python")
    subprocess.run(
        [str(root / "run_autograder")], env=env, cwd=root, capture_output=True, timeout=60
    )
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and "instructor" in results["output"]


def test_bundle_bad_usage(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "gradescope-bundle",
            "--out",
            str(tmp_path / "a.zip"),
            "--assignment",
            "nope",
        ],
        capture_output=True,
        cwd=ROOT,
    )
    assert done.returncode == 2 and not (tmp_path / "a.zip").exists()


@pytest.mark.slow
def test_the_bundled_kit_builds_as_a_package(tmp_path):
    """What setup.sh installs: the kit/ folder builds into a wheel with the fixtures inside."""
    root = unpack(build(tmp_path), tmp_path / "autograder")
    wheel = build_wheel(root / "source" / "kit", tmp_path / "wheel")
    names = zipfile.ZipFile(wheel).namelist()
    assert "grader/checks/fixtures/02_dropout.npz" in names and "grader/runner/child.py" in names
    assert not any(n.startswith("reference/") for n in names)
