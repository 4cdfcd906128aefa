"""The answers never ship: nothing in `grader` imports the references, and the wheel holds none.

Also: environment.yml stays minimal and agrees with pyproject.toml, and versions agree.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile

import pytest
import yaml
from kit_testing import ROOT

import grader

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_no_grader_module_imports_the_references():
    offenders = []
    for path in (ROOT / "grader").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [
                f"{path.relative_to(ROOT)}: {n}"
                for n in names
                if n.split(".")[0] in ("reference", "solutions")
            ]
    assert not offenders


def test_importing_every_grader_module_loads_no_reference():
    code = (
        "import pkgutil, sys, grader\n"
        "for m in pkgutil.walk_packages(grader.__path__, 'grader.'):\n"
        "    if m.name != 'grader.__main__': __import__(m.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('reference', 'solutions', '_dnn_kit_reference')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "tests", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_wheel_ships_data_and_fixtures_but_no_answers(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith(("reference/", "solutions/", "tests/", "data/"))]
    assert "grader/datasets/digits.npz" in names
    assert any(n.startswith("grader/checks/fixtures/") and n.endswith(".npz") for n in names)
    for name in names:
        if name.endswith(".py"):
            text = zipfile.ZipFile(wheel).read(name).decode()
            assert "### BEGIN SOLUTION" not in text, f"{name} holds a solution"


def test_environment_yml_is_minimal_and_agrees_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    assert sorted(d.split(">")[0].split("=")[0] for d in conda) == ["pip", "python"]
    python = next(d for d in conda if d.startswith("python"))
    assert python.removeprefix("python") == PYPROJECT["project"]["requires-python"]
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
    assert len(pip) == 1 and pip[0].startswith("--editable .[")
    extras = pip[0].split("[", 1)[1].rstrip("]").split(",")
    assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"])


def test_versions_agree():
    assert grader.__version__ == PYPROJECT["project"]["version"]
