"""Errors carried forward, from the judge to every export: the stored result keeps both
verdicts, the course's rule (on by default; ``--no-carry-forward``, ``[grading]
errors_carried_forward = false`` in the points file, ``DNN_KIT_CARRY_FORWARD=off``) is applied
when scoring, and feedback, tables and the class report say which cases were kept by it.

The topic is a toy (squares, forward and backward) registered as an installed distribution
would be (a ``.dist-info`` with a ``dnn_kit.topics`` entry point on ``PYTHONPATH``), with its
reference in a private folder: the kit's own topics are not needed for the rule's plumbing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

import grader.checks
from grader.checks.base import CheckResult
from grader.course import nbgrader_environment
from grader.grading import SubmissionResult
from grader.report.class_report import aggregate, class_report_html
from grader.report.feedback import KEPT, check_text, feedback_html, feedback_markdown
from grader.report.points import PointsError, apply_points, load_carry_forward, load_points
from grader.report.tables import submission_table
from grader.runner.child import run_plan
from grader.runner.judging import judge_event
from grader.store import Store, result_from_dict, result_to_dict

NOTEBOOK = "98_squares"
TOPIC_CODE = '''\
"""Checks for notebook 98: squares, forward and backward (errors carried forward)."""

from grader.checks.base import Misconception, call, given, var
from grader.checks.table import Carry, Kind, Row, Spec, Topic, Variant, compare


def forward_variants(case):
    x = case.inputs["x"]
    carried = {"dx": 3 * x**2 * case.inputs["dout"]} if "dout" in case.inputs else {}
    return [Variant("squares.cube", "x cubed", {"out": x**3}, carried=carried)]


FORWARD = Kind(
    "forward",
    ("sq_forward",),
    lambda rng, n: {"x": rng.standard_normal((n, 3)) + 2},
    lambda s: [call("sq_forward", given("x"), out=["out", "cache"])],
    {"out": var("out")},
    compare(variants=forward_variants),
    title=lambda s: f"forward, n={s['n']}",
)
BACKWARD = Kind(
    "backward",
    ("sq_forward", "sq_backward"),
    lambda rng, n: {"x": rng.standard_normal((n, 3)) + 2, "dout": rng.standard_normal((n, 3))},
    lambda s: [
        call("sq_forward", given("x"), out=["out", "cache"]),
        call("sq_backward", given("dout"), var("cache"), out="dx"),
    ],
    {"out": var("out"), "dx": var("dx")},
    compare(names=("dx",), carry=Carry("squares_forward", forward_variants)),
    title=lambda s: f"backward, n={s['n']}",
)
TOPIC = Topic(
    "98_squares",
    ("sq_forward", "sq_backward"),
    [Misconception("squares.cube", "cubes instead of squares", "square it")],
    [FORWARD, BACKWARD],
    [
        Row("squares_forward", "forward", 2, [Spec("forward", n=4)]),
        Row("squares_backward", "backward", 3, [Spec("backward", n=4), Spec("backward", 2, n=6)]),
    ],
    reference="squares_reference",
)
'''
REFERENCE = "def sq_forward(x):\n    return x**2, x\n\n\ndef sq_backward(dout, cache):\n    return 2 * cache * dout\n"
CUBE = "def sq_forward(x):\n    return x**3, x\n\n\ndef sq_backward(dout, cache):\n    return 3 * cache**2 * dout\n"


def _module(code: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(code, name, "exec"), module.__dict__)  # noqa: S102 - the test's own code
    return module


@pytest.fixture
def topic(monkeypatch):
    """The toy topic's checks, known to the registry tables for this test."""
    module = _module(TOPIC_CODE, "squares_topic")
    checks = module.TOPIC.checks()
    for check in checks:
        monkeypatch.setitem(grader.checks.CHECKS, check.id, check)
    for mid, item in module.TOPIC.catalogue.items():
        monkeypatch.setitem(grader.checks.MISCONCEPTIONS, mid, item)
    return checks


def _graded(checks, student_code: str) -> SubmissionResult:
    """The student's functions judged on every case by the real judge (trusted process)."""
    reference = _module(REFERENCE, "squares_reference")
    student = _module(student_code, "student")
    result = SubmissionResult(Path("s/98_squares/98_squares.ipynb"), NOTEBOOK, "s")
    for check in checks:
        judged = []
        for case in check.build(7, reference):
            outputs = run_plan(vars(student), case.plan, case.returns, case.inputs)
            judged.append(judge_event(check, case, {"outputs": outputs}))
        result.checks.append(CheckResult(check, judged))
    return result


def _scores(result: SubmissionResult) -> dict[str, float]:
    return {c.check.id: c.score for c in result.checks}


def test_both_verdicts_survive_the_store_and_the_rule_is_applied_when_scoring(topic, tmp_path):
    result = _graded(topic, CUBE)
    forward, backward = result.checks
    assert not any(c.passed or c.carried_forward for c in forward.cases)
    assert all(not c.passed and c.carried_forward for c in backward.cases)
    assert {c.charged_in for c in backward.cases} == {"squares_forward"}

    stored = Store(tmp_path).save("ab" * 32, "key", {}, result)
    text = stored.read_text(encoding="utf-8")
    assert '"carried_forward": true' in text and "carry_forward" not in text.replace(
        "carried_forward", ""
    )
    loaded = Store(tmp_path).load("ab" * 32, "key")
    assert loaded is not None
    assert result_to_dict(loaded) == result_to_dict(result)
    assert result_to_dict(result_from_dict(result_to_dict(result))) == result_to_dict(result)

    on, off = apply_points(loaded, {}, True), apply_points(loaded, {}, False)
    assert _scores(on) == {"squares_forward": 0.0, "squares_backward": backward.check.points}
    assert _scores(off) == {"squares_forward": 0.0, "squares_backward": 0.0}
    # the course's points and the rule together
    assert _scores(apply_points(loaded, {"squares_backward": 7.0}, True))["squares_backward"] == 7
    # the environment's rule when none is given
    os.environ["DNN_KIT_CARRY_FORWARD"] = "off"
    try:
        assert _scores(apply_points(loaded, {}))["squares_backward"] == 0.0
    finally:
        del os.environ["DNN_KIT_CARRY_FORWARD"]
    assert _scores(apply_points(loaded, {}))["squares_backward"] == backward.check.points


def test_feedback_and_tables_say_kept_by_errors_carried_forward(topic):
    result = _graded(topic, CUBE)
    on, off = apply_points(result, {}, True), apply_points(result, {}, False)
    backward_on, backward_off = on.checks[1], off.checks[1]

    text = check_text(backward_on)
    assert text.count("KEPT ") == len(backward_on.cases)
    assert f"{KEPT} (the mistake is charged in squares_forward)" in text
    assert "FAIL" not in text
    text_off = check_text(backward_off)
    assert KEPT not in text_off and text_off.count("FAIL ") == len(backward_off.cases)
    assert "this course does not carry errors forward" in text_off

    md_on, md_off = feedback_markdown(on), feedback_markdown(off)
    assert f"passed ({KEPT})" in md_on and "- KEPT backward" in md_on
    assert KEPT not in md_off and "- **FAIL** backward" in md_off
    html_on = feedback_html(on)
    assert f"✓ {KEPT}</span> backward, n=4" in html_on
    assert "charged in squares_forward" in html_on
    assert KEPT not in feedback_html(off)

    table = submission_table(on)
    assert f"{len(backward_on.cases)} case(s) {KEPT} (charged in squares_forward)" in table
    assert KEPT not in submission_table(off).split("\n\n")[0]


def test_class_report_counts_the_kept(topic):
    right = _graded(topic, REFERENCE)
    cube = _graded(topic, CUBE)
    cube.student = "t"
    on = [apply_points(r, {}, True) for r in (right, cube)]
    (stats,) = aggregate(on)
    backward = next(c for c in stats.checks if c.id == "squares_backward")
    assert (backward.passed, backward.kept, backward.total) == (2, 1, 2)
    assert backward.charged_in == ["squares_forward"]
    assert f"1 of 2 {KEPT} (charged in squares_forward)" in class_report_html(on)
    (stats_off,) = aggregate([apply_points(r, {}, False) for r in (right, cube)])
    backward = next(c for c in stats_off.checks if c.id == "squares_backward")
    assert (backward.passed, backward.kept) == (1, 0)


def test_the_points_file_holds_the_rule(tmp_path):
    path = tmp_path / "course.toml"
    assert load_carry_forward(None) is None
    path.write_text("[points]\n", encoding="utf-8")
    assert load_carry_forward(path) is None
    path.write_text("[grading]\nerrors_carried_forward = false\n", encoding="utf-8")
    assert load_carry_forward(path) is False and load_points(path) == {}
    check = next(iter(grader.checks.CHECKS))
    path.write_text(
        f"[grading]\nerrors_carried_forward = true\n[points]\n{check} = 5\n", encoding="utf-8"
    )
    assert load_carry_forward(path) is True and load_points(path) == {check: 5.0}
    path.write_text('[grading]\nerrors_carried_forward = "no"\n', encoding="utf-8")
    with pytest.raises(PointsError, match="must be true or false"):
        load_carry_forward(path)
    path.write_text("[grading]\ncarry = false\n", encoding="utf-8")
    with pytest.raises(PointsError, match="unknown setting"):
        load_carry_forward(path)


def test_the_rule_reaches_the_nbgrader_kernels(monkeypatch):
    monkeypatch.delenv("DNN_KIT_CARRY_FORWARD", raising=False)
    assert "DNN_KIT_CARRY_FORWARD" not in nbgrader_environment()
    monkeypatch.setenv("DNN_KIT_CARRY_FORWARD", "OFF")
    assert nbgrader_environment()["DNN_KIT_CARRY_FORWARD"] == "off"
    monkeypatch.setenv("DNN_KIT_CARRY_FORWARD", "on")
    assert nbgrader_environment()["DNN_KIT_CARRY_FORWARD"] == "on"


# --------------------------------------------------------------------------- the commands
@pytest.fixture
def installed(tmp_path):
    """The toy topic as an installed distribution, its reference private, one cube submission."""
    site = tmp_path / "site"
    (site / "squares_topic").mkdir(parents=True)
    (site / "squares_topic" / "__init__.py").write_text(TOPIC_CODE, encoding="utf-8")
    info = site / "squares_topic-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: squares-topic\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dnn_kit.topics]\nsquares = squares_topic:TOPIC\n")
    private = tmp_path / "private"
    private.mkdir()
    (private / "squares_reference.py").write_text(REFERENCE, encoding="utf-8")
    notebook = tmp_path / "submitted" / "cube" / NOTEBOOK / f"{NOTEBOOK}.ipynb"
    notebook.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CUBE)]), notebook)
    env = {k: v for k, v in os.environ.items() if k != "DNN_KIT_CARRY_FORWARD"}
    env |= {"PYTHONPATH": str(site), "DNN_KIT_TOPIC_REFERENCES": str(private)}
    return tmp_path, env


def _grader(env, *args):
    done = subprocess.run(
        [sys.executable, "-m", "grader", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def _exported(course: Path) -> dict[str, float]:
    (result,) = json.loads((course / "exports" / "results.json").read_text(encoding="utf-8"))
    return {t["extra_data"]["check"]: t["score"] for t in result["tests"]}


def test_export_turns_the_rule_off_without_regrading(installed, topic):
    tmp, env = installed
    points = {c.id: float(c.points) for c in topic}
    course = tmp / "course"
    common = ["export", str(tmp / "submitted"), "--course", str(course), "--no-gradebook"]
    common += ["--no-sandbox", "--no-progress", "--jobs", "1"]
    _grader(env, *common, "--no-carry-forward")
    assert _exported(course) == {"squares_forward": 0.0, "squares_backward": 0.0}
    feedback = next((course / "feedback").rglob("*.md")).read_text(encoding="utf-8")
    assert KEPT not in feedback and "does not carry errors forward" in feedback

    again = _grader(env, *common)  # the store's result, scored by the default rule (on)
    assert "1 from the store" in again.stderr or "reused" in again.stderr, again.stderr
    assert _exported(course) == {
        "squares_forward": 0.0,
        "squares_backward": points["squares_backward"],
    }
    feedback = next((course / "feedback").rglob("*.md")).read_text(encoding="utf-8")
    assert f"passed ({KEPT})" in feedback
    assert KEPT in (course / "exports" / "class_report.html").read_text(encoding="utf-8")

    rules = tmp / "course.toml"
    rules.write_text("[grading]\nerrors_carried_forward = false\n", encoding="utf-8")
    _grader(env, *common, "--points", str(rules))
    assert _exported(course) == {"squares_forward": 0.0, "squares_backward": 0.0}


def test_grade_applies_the_rule_too(installed, topic):
    tmp, env = installed
    points = {c.id: float(c.points) for c in topic}
    base = ["grade", str(tmp / "submitted"), "--format", "json", "--no-sandbox", "--no-progress"]
    for flags, expected in (([], points["squares_backward"]), (["--no-carry-forward"], 0.0)):
        (result,) = json.loads(_grader(env, *base, *flags).stdout)
        scores = {t["extra_data"]["check"]: t["score"] for t in result["tests"]}
        assert scores == {"squares_forward": 0.0, "squares_backward": expected}
