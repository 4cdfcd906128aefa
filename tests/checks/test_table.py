"""The table API (grader/checks/table.py) on a toy topic: square and its gradient.

Expected values come from running the plan on a reference namespace; the toy student functions
run through the real plan runner (grader.runner.child.run_plan) and the real judging path.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from grader.checks.base import CheckResult, Misconception, call, given, var
from grader.checks.table import Carry, Kind, Row, Spec, Topic, Variant, compare
from grader.runner.child import run_plan
from grader.runner.judging import judge_event


def _forward(x):
    return x**2, x


def _backward(dout, cache):
    return 2.0 * cache * dout


REFERENCE = types.SimpleNamespace(sq_forward=_forward, sq_backward=_backward)


def _cube_variants(case):
    """The catalogued mistake "cubes instead of squares", with its exact gradient."""
    x = case.inputs["x"]
    carried = {"dx": 3.0 * x**2 * case.inputs["dout"]} if "dout" in case.inputs else {}
    return [Variant("toy.cube", "x cubed", {"out": x**3}, carried)]


def _make(rng, n, with_dout=False):
    inputs = {"x": 2.0 + rng.standard_normal((n, 3))}
    if with_dout:
        inputs["dout"] = rng.standard_normal((n, 3))
    return inputs


FORWARD = Kind(
    "forward",
    ("sq_forward",),
    make=_make,
    plan=lambda s: [call("sq_forward", given("x"), out=["out", "cache"])],
    returns={"out": var("out")},
    judge=compare(variants=_cube_variants),
    title=lambda s: f"x of shape ({s['n']}, 3)",
)
BACKWARD = Kind(
    "backward",
    ("sq_forward", "sq_backward"),
    make=lambda rng, n: _make(rng, n, with_dout=True),
    plan=lambda s: [
        call("sq_forward", given("x"), out=["out", "cache"]),
        call("sq_backward", given("dout"), var("cache"), out="dx"),
    ],
    returns={"out": var("out"), "dx": var("dx")},
    judge=compare(names=("dx",), carry=Carry("toy_forward", _cube_variants)),
)
TOPIC = Topic(
    "00_toy",
    ("sq_forward", "sq_backward"),
    [Misconception("toy.cube", "cubes", "square, do not cube")],
    [FORWARD, BACKWARD],
    [
        Row("toy_forward", "square", 4, [Spec("forward", n=4), Spec("forward", n=6, points=3)]),
        Row("toy_backward", "its gradient", 2, [Spec("backward", n=5)]),
        Row(
            "toy_hidden",
            "hidden",
            1,
            lambda rng: [Spec("backward", n=int(rng.integers(4, 9)))],
            True,
        ),
    ],
)
CHECKS = {c.id: c for c in TOPIC.checks()}


def _grade(student, check_id, seed=11, carry_forward=True) -> CheckResult:
    check = CHECKS[check_id]
    results = []
    for case in check.build(seed, REFERENCE):
        outputs = run_plan(vars(student), case.plan, case.returns, case.inputs)
        results.append(judge_event(check, case, {"outputs": outputs}))
    return CheckResult(check, results, carry_forward=carry_forward)


RIGHT = types.SimpleNamespace(sq_forward=_forward, sq_backward=_backward)
CUBE = types.SimpleNamespace(
    sq_forward=lambda x: (x**3, x), sq_backward=lambda dout, x: 3.0 * x**2 * dout
)
IDENTITY = types.SimpleNamespace(sq_forward=lambda x: (x, x), sq_backward=lambda dout, x: dout)


def test_expected_values_are_the_reference_run_on_the_same_plan():
    for case in CHECKS["toy_backward"].build(3, REFERENCE):
        x, dout = case.inputs["x"], case.inputs["dout"]
        np.testing.assert_array_equal(case.expected["out"], x**2)
        np.testing.assert_array_equal(case.expected["dx"], 2.0 * x * dout)


def test_expected_values_are_copied_when_the_call_returns():
    def forward_then_tamper(x):
        out = x**2
        return out, out  # the backward below rewrites the forward's output in place

    def backward(dout, cache):
        cache[...] = 0.0
        return dout

    sneaky = types.SimpleNamespace(sq_forward=forward_then_tamper, sq_backward=backward)
    case = CHECKS["toy_backward"].build(3, sneaky)[0]
    np.testing.assert_array_equal(case.expected["out"], case.inputs["x"] ** 2)


def test_cases_are_made_from_the_seed():
    a = CHECKS["toy_hidden"].build(5, REFERENCE)
    b = CHECKS["toy_hidden"].build(5, REFERENCE)
    c = CHECKS["toy_hidden"].build(6, REFERENCE)
    np.testing.assert_array_equal(a[0].inputs["x"], b[0].inputs["x"])
    assert not np.array_equal(a[0].inputs["x"], c[0].inputs["x"])
    assert CHECKS["toy_hidden"].hidden and CHECKS["toy_hidden"].functions == TOPIC.functions


def test_a_right_answer_earns_every_point_and_weights_count():
    result = _grade(RIGHT, "toy_forward")
    assert result.passed and result.score == CHECKS["toy_forward"].points
    assert [c.points for c in result.cases] == [1.0, 3.0]


def test_a_catalogued_mistake_is_named_and_costs_the_forward():
    result = _grade(CUBE, "toy_forward")
    assert result.score == 0 and result.diagnosis == ["toy.cube"]
    assert "x cubed" in result.cases[0].message


def test_errors_carried_forward_keep_a_backward_right_for_the_mistaken_forward():
    result = _grade(CUBE, "toy_backward")
    (case,) = result.cases
    assert not case.passed and case.carried_forward and case.charged_in == "toy_forward"
    assert "toy_forward" in case.message and case.diagnosis == ()  # charged once, not twice
    assert result.score == CHECKS["toy_backward"].points
    off = _grade(CUBE, "toy_backward", carry_forward=False)
    assert off.score == 0 and not off.passed


def test_a_forward_matching_no_variant_earns_nothing_for_its_own_gradient():
    result = _grade(IDENTITY, "toy_backward")
    assert result.score == 0 and not result.cases[0].carried_forward


def test_a_variant_within_the_tolerance_of_the_answer_is_refused_at_build():
    blind = Kind(
        "blind",
        ("sq_forward",),
        make=_make,
        plan=FORWARD.plan,
        returns={"out": var("out")},
        judge=compare(
            variants=lambda case: [Variant("toy.cube", "same", {"out": case.expected["out"]})]
        ),
    )
    topic = Topic(
        "00_blind", ("sq_forward",), [], [blind], [Row("blind", "b", 1, [Spec("blind", n=3)])]
    )
    with pytest.raises(AssertionError, match="within the tolerance"):
        topic.checks()[0].build(1, REFERENCE)
