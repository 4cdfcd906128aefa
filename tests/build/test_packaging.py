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
from kit_testing import ROOT, build_wheel

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
    wheel = build_wheel(ROOT, tmp_path)
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


# Imported by modules that only run where that tool already is: the pytest plugin is loaded by
# pytest itself (a CI grader installs pytest to run it).
IMPORTED_BY_ITS_HOST = {"pytest": "grader/pytest_plugin.py"}


def _imported_top_level_modules() -> dict[str, set[str]]:
    """Every top-level module ``grader/`` imports (absolute imports), with the files importing it."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "grader").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.relative_to(ROOT).as_posix())
    return found


def _declared_distributions() -> set[str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_every_import_in_grader_is_a_declared_distribution():
    """Statically: each third-party module imported anywhere in grader/ maps (through the installed
    distributions' file lists) to a distribution pyproject.toml declares, so nothing arrives only
    because another package happens to pull it in (python-dateutil through matplotlib, say)."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    providers = packages_distributions()
    declared = _declared_distributions()
    # scripts of ours run with their own folder on sys.path (the fork server imports `child`)
    ours = {path.stem for path in (ROOT / "grader").rglob("*.py")}
    undeclared = []
    for module, files in sorted(_imported_top_level_modules().items()):
        if (
            module in sys.stdlib_module_names
            or module in ours
            or module in ("grader", "__future__")
        ):
            continue
        if IMPORTED_BY_ITS_HOST.get(module) in files and len(files) == 1:
            continue
        distributions = {canonicalize_name(d) for d in providers.get(module, [])}
        if not distributions & declared:
            undeclared.append(
                f"{module} (from {', '.join(sorted(files))}; provided by "
                f"{', '.join(sorted(distributions)) or 'nothing installed'})"
            )
    assert not undeclared, "imported but not declared in pyproject.toml: " + "; ".join(undeclared)


def test_the_build_requirement_is_what_the_licence_fields_need():
    """PEP 639 ``license`` (an SPDX string) and ``license-files`` need setuptools >= 77."""
    from packaging.requirements import Requirement

    project = PYPROJECT["project"]
    assert isinstance(project["license"], str) and project["license-files"]
    (setuptools,) = [
        Requirement(r)
        for r in PYPROJECT["build-system"]["requires"]
        if Requirement(r).name == "setuptools"
    ]
    assert "77" in setuptools.specifier and "76.9" not in setuptools.specifier
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), pattern


def test_every_grader_command_named_in_the_docs_exists():
    """``python -m grader WORD`` in the README, docs/, nbgrader_config.py and scripts names a real
    subcommand (``python -m grader course`` once did not)."""
    import re

    from grader.__main__ import _parser

    commands = set(_parser()._subparsers._group_actions[0].choices)
    texts = [ROOT / "README.md", ROOT / "nbgrader_config.py", *(ROOT / "docs").glob("*.md")]
    texts += [*(ROOT / "scripts").glob("*.py"), *(ROOT / "scripts").glob("*.sh")]
    wrong = [
        f"{path.relative_to(ROOT)}: python -m grader {word}"
        for path in texts
        for word in re.findall(r"python -m grader ([a-z][a-z-]*)", path.read_text(encoding="utf-8"))
        if word not in commands
    ]
    assert not wrong
