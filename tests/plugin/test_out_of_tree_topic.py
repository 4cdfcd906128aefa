"""An instructor's own topic, kept outside the kit: installed as a package that registers it by
an entry point (``dnn_kit.topics``), its reference private and elsewhere.

The package is really installed, by pip, into a folder of its own (``pip install --target``),
which the grader's processes get on ``PYTHONPATH``: the test venv is never changed, so other
tests running at the same time never see the extra topic. The fixture script builds its public
fixtures into the package, and both runners grade a right, a half-right and a wrong
submission, scored as the check library says.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from kit_testing import ROOT

from grader.runner import sandbox

pytestmark = pytest.mark.slow  # pip builds the package (about 5 s)

NOTEBOOK = "90_triple"

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "mycourse-topic"
version = "0.1"

[project.entry-points."dnn_kit.topics"]
triple = "mycourse.checks:TOPIC"

[tool.setuptools]
packages = ["mycourse"]
"""

CHECKS = '''\
"""Checks for notebook 90: tripling an array (an instructor's own exercise)."""

from grader.checks.base import Misconception, call, given, var
from grader.checks.table import Kind, Row, Spec, Topic, Variant, compare

TRIPLE = Kind(
    "triple",
    functions=("triple",),
    make=lambda rng, n, d: {"x": rng.standard_normal((n, d))},
    plan=lambda s: [call("triple", given("x"), out="y")],
    returns={"y": var("y")},
    judge=compare(
        variants=lambda case: [Variant("triple.doubled", "2 x", {"y": 2 * case.inputs["x"]})]
    ),
    title=lambda s: f"x of shape ({s['n']}, {s['d']})",
)
TOPIC = Topic(
    notebook="90_triple",
    functions=("triple",),
    misconceptions=[Misconception("triple.doubled", "doubles instead", "multiply by three")],
    kinds=[TRIPLE],
    rows=[
        Row("triple_public", "tripling", 2, [Spec("triple", n=3, d=2), Spec("triple", 3, n=5, d=4)]),
        Row("triple_hidden", "tripling, hidden", 3, [Spec("triple", n=4, d=2), Spec("triple", n=6, d=4)], hidden=True),
    ],
    reference="mycourse_reference",
)
'''

REFERENCE = "def triple(x):\n    return 3 * x\n"

ANSWERS = {
    "right": "return 3 * x",
    "half": "return 3 * x if x.shape[1] == 2 else 2 * x",  # wrong on the wide cases only
    "wrong": "return 2 * x",
}


def _wide_ok(answer: str, d: int) -> bool:
    return answer == "right" or (answer == "half" and d == 2)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The installed topic package, its private reference and the environment that finds both."""
    tmp = tmp_path_factory.mktemp("out_of_tree")
    source = tmp / "src"
    (source / "mycourse").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (source / "mycourse" / "__init__.py").write_text("", encoding="utf-8")
    (source / "mycourse" / "checks.py").write_text(CHECKS, encoding="utf-8")
    private = tmp / "private"
    private.mkdir()
    (private / "mycourse_reference.py").write_text(REFERENCE, encoding="utf-8")
    site = tmp / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["DNN_KIT_TOPIC_REFERENCES"] = str(private)
    env.pop("DNN_KIT_SANDBOX", None)
    yield {"tmp": tmp, "site": site, "private": private, "env": env}


def _run(course, *args, cwd=None):
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd or course["tmp"],
        env=course["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _topic(course):
    """The topic as the package defines it (imported from the installed folder)."""
    sys.path.insert(0, str(course["site"]))
    try:
        import mycourse.checks

        return mycourse.checks.TOPIC
    finally:
        sys.path.remove(str(course["site"]))
        for name in [m for m in sys.modules if m == "mycourse" or m.startswith("mycourse.")]:
            del sys.modules[name]


def _expected(topic, answer: str, include_hidden: bool) -> dict[str, float]:
    """Each check's score for ``answer``, from the rows' case points (the check library)."""
    scores = {}
    for row in topic.rows:
        if row.hidden and not include_hidden:
            continue
        total = sum(s.points for s in row.cases)
        earned = sum(s.points for s in row.cases if _wide_ok(answer, s.settings["d"]))
        scores[row.id] = round(row.points * earned / total, 4)
    return scores


def _submission(folder: Path, student: str, answer: str) -> Path:
    path = folder / student / NOTEBOOK / f"{NOTEBOOK}.ipynb"
    path.parent.mkdir(parents=True)
    code = f"import numpy as np\n\n\ndef triple(x):\n    {ANSWERS[answer]}\n"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbformat.write(notebook, path)
    return path


def test_the_registry_lists_the_installed_topic(course):
    shown = _run(
        course,
        "-c",
        "import json; from grader.checks import NOTEBOOKS, TOPICS, CHECKS; "
        "t = [t for t in TOPICS if t.notebook == '90_triple'][0]; "
        "print(json.dumps([list(NOTEBOOKS), t.origin, t.fixtures, t.reference, sorted(CHECKS)]))",
    )
    assert shown.returncode == 0, shown.stderr
    notebooks, origin, fixtures, reference, checks = json.loads(shown.stdout)
    assert notebooks == sorted(notebooks) and NOTEBOOK in notebooks
    assert "mycourse.checks:TOPIC" in origin
    assert (fixtures, reference) == ("mycourse", "mycourse_reference")
    assert {r.id for r in _topic(course).rows} <= set(checks)


def test_fixtures_then_both_runners(course):
    topic = _topic(course)
    built = _run(course, str(ROOT / "scripts" / "make_fixtures.py"), "--notebook", NOTEBOOK)
    assert built.returncode == 0, built.stderr
    fixture = course["site"] / "mycourse" / "fixtures" / f"{NOTEBOOK}.npz"
    assert fixture.is_file() and str(fixture) in built.stdout
    assert not list((ROOT / "grader" / "checks" / "fixtures").glob(f"{NOTEBOOK}*"))
    again = _run(
        course, str(ROOT / "scripts" / "make_fixtures.py"), "--notebook", NOTEBOOK, "--check"
    )
    assert again.returncode == 0, again.stderr

    submitted = course["tmp"] / "submitted"
    paths = {answer: _submission(submitted, answer, answer) for answer in ANSWERS}

    # the self-check: public checks from the package's fixtures, no reference needed
    for answer, path in paths.items():
        env = dict(course["env"], DNN_KIT_TOPIC_REFERENCES=str(course["tmp"] / "nowhere"))
        done = subprocess.run(
            [sys.executable, "-m", "grader", "check", str(path)],
            cwd=course["tmp"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == (0 if answer == "right" else 1), done.stdout + done.stderr
        shown = {
            m.group(1): float(m.group(2))
            for m in re.finditer(r"^\s+(triple_\w+)\s+([\d.]+)/", done.stdout, re.MULTILINE)
        }
        assert shown == pytest.approx(_expected(topic, answer, include_hidden=False))
        if answer == "wrong":
            assert "triple.doubled" in done.stdout

    # the batch grade, in the sandbox, public and hidden checks built from the private reference
    try:
        sandbox.require()
    except sandbox.SandboxUnavailable as exc:
        if sandbox.in_ci():
            pytest.fail(f"CI=true: the batch grade needs the sandbox. {exc}")
        pytest.skip(f"no sandbox for the batch grade: {exc}")
    out = course["tmp"] / "results.json"
    graded = _run(
        course,
        "-m",
        "grader",
        "grade",
        str(submitted),
        "--format",
        "json",
        "--out",
        str(out),
        "--jobs",
        "1",
        "--no-progress",
    )
    assert graded.returncode == 0, graded.stderr
    results = {r["extra_data"]["student"]: r for r in json.loads(out.read_text())}
    assert set(results) == set(ANSWERS)
    for answer, result in results.items():
        expected = _expected(topic, answer, include_hidden=True)
        scores = {t["extra_data"]["check"]: t["score"] for t in result["tests"]}
        assert scores == pytest.approx(expected), result
        assert result["max_score"] == sum(r.points for r in topic.rows)
    wrong = {t["extra_data"]["check"]: t for t in results["wrong"]["tests"]}
    assert all("triple.doubled" in t["extra_data"]["diagnosis"] for t in wrong.values())

    # without its private reference the batch grade cannot build the cases, and says so
    lost = dict(course["env"], DNN_KIT_TOPIC_REFERENCES=str(course["tmp"] / "nowhere"))
    failed = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(paths["right"]), "--format", "json"],
        cwd=course["tmp"],
        env=lost,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (lost_result,) = json.loads(failed.stdout)
    assert lost_result["score"] == 0
    assert all(
        "could not build cases" in t["output"] and "mycourse_reference" in t["output"]
        for t in lost_result["tests"]
    ), lost_result
