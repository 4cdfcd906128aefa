"""The layer-normalization checks (a table, grader/checks/layernorm.py) are right and fair.

* Right: the mistaken layers' analytic gradients, used for errors carried forward, agree with
  centred finite differences; the expected values of every public and hidden case agree with an
  independent per-row computation.
* Errors carried forward: a forward with a catalogued mistake plus a backward exact for it loses
  only the forward's points; a forward that does not normalise at all, with its own exact
  gradient, earns no backward points.
(Each catalogued mistake, written by a student, is graded in tests/checks/test_sample_answers.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from kit_testing import every_case

from grader.checks import checks_for, layernorm
from grader.checks.base import CheckResult
from grader.runner.child import run_case
from grader.runner.judging import judge_event, wire_case
from grader.toolkit.gradcheck import numerical_gradient_array, rel_error

SALTS = ["dnn-discussion-2-default-salt: set your own with --salt or DNN_KIT_SALT", "course-b"]
OPTIONS = [{}, {"axis": 0}, {"ddof": 1}, {"outside": True}, {"use_gamma": False}]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_variant_gradients_agree_with_finite_differences(options):
    rng = np.random.default_rng(3)
    x, gamma, beta = rng.normal(1, 2, (5, 6)), rng.normal(size=6), rng.normal(size=6)
    dout, eps = rng.normal(size=(5, 6)), 1e-2

    def out(x=x, gamma=gamma, beta=beta):
        return layernorm.variant_forward(x, gamma, beta, eps, **options)

    got = layernorm.variant_backward(x, gamma, dout, eps, **options)
    numeric = {
        "dx": numerical_gradient_array(lambda v: out(x=v), x.copy(), dout),
        "dgamma": numerical_gradient_array(lambda v: out(gamma=v), gamma.copy(), dout),
        "dbeta": numerical_gradient_array(lambda v: out(beta=v), beta.copy(), dout),
    }
    for name, value in numeric.items():
        assert rel_error(got[name], value) < 1e-7, name


def test_expected_values_agree_with_a_per_row_computation(reference):
    cases = every_case(layernorm.NOTEBOOK, reference, SALTS)
    assert {check.id for check, _ in cases} == {c.id for c in checks_for(layernorm.NOTEBOOK)}
    for _, case in cases:
        x, gamma, beta = (case.inputs[k] for k in ("x", "gamma", "beta"))
        eps = case.params.get("eps") or 1e-3
        rows = [
            (r - r.sum() / r.size) / np.sqrt(((r - r.mean()) ** 2).sum() / r.size + eps) for r in x
        ]
        np.testing.assert_allclose(case.expected["out"], gamma * np.array(rows) + beta, rtol=1e-12)
        if "dout" in case.inputs:
            np.testing.assert_allclose(case.expected["dbeta"], case.inputs["dout"].sum(axis=0))


def _grade(namespace, reference, check_id) -> CheckResult:
    check = next(c for c in checks_for(layernorm.NOTEBOOK) if c.id == check_id)
    results = []
    for case in check.build(17, reference):
        wired = wire_case(f"{check.id}/x", case)
        event = run_case(namespace, wired, {k: v.copy() for k, v in case.inputs.items()}, 5000)
        results.append(judge_event(check, case, event))
    return CheckResult(check, results, carry_forward=True)


def _student(forward_options):
    """A student whose forward makes the mistake ``forward_options`` and whose backward is exact
    for that forward."""

    def layernorm_forward(x, gamma, beta, ln_param):
        eps = ln_param.get("eps", 1e-3)
        out = layernorm.variant_forward(x, gamma, beta, eps, **forward_options)
        return out, (x, gamma, eps)

    def layernorm_backward(dout, cache):
        x, gamma, eps = cache
        grads = layernorm.variant_backward(x, gamma, dout, eps, **forward_options)
        return grads["dx"], grads["dgamma"], grads["dbeta"]

    return {"layernorm_forward": layernorm_forward, "layernorm_backward": layernorm_backward}


@pytest.mark.parametrize("options", OPTIONS[1:4], ids=str)
def test_a_backward_exact_for_a_catalogued_forward_keeps_its_points(reference, options):
    student = _student(options)
    assert _grade(student, reference, "ln_forward").score == 0
    backward = _grade(student, reference, "ln_backward")
    assert all(c.carried_forward and c.charged_in == "ln_forward" for c in backward.cases)
    assert backward.score == backward.check.points
    off = CheckResult(backward.check, backward.cases, carry_forward=False)
    assert off.score == 0


def test_no_normalisation_with_its_exact_gradient_earns_no_backward_points(reference):
    student = {
        "layernorm_forward": lambda x, gamma, beta, p: (gamma * x + beta, (x, gamma)),
        "layernorm_backward": lambda dout, c: (dout * c[1], (dout * c[0]).sum(0), dout.sum(0)),
    }
    for check_id in ("ln_backward", "ln_hidden_backward"):
        result = _grade(student, reference, check_id)
        assert result.score == 0 and not any(c.carried_forward for c in result.cases)
