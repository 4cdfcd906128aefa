"""The norm and penalty checks are right, sharp and fair.

* Right: every expected value of every public and hidden case (several salts) agrees with an
  independent formula (pure-Python loops with ``math.fsum``) and, for the gradients, with centred
  finite differences of that formula; the finite-difference case agrees with λ·W / λ·sign(W).
* Sharp: each catalogued mistake, written here as a variant, fails the checks it should and is
  named, on every salt; the list/shape/in-place contract of the gradients is enforced.
* Fair: the reference, and answers that work in float32 or return tuples, pass with no diagnosis.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from kit_testing import every_case

from grader.checks import checks_for, get_check, norms
from grader.checks.cases import build_public, hidden_cases, load_fixtures
from grader.runner.child import run_case
from grader.runner.judging import judge_event, wire_case
from grader.toolkit.gradcheck import numerical_gradient, rel_error

NOTEBOOK = "01_norms"
SALTS = ["dnn-discussion-2-default-salt: set your own with --salt or DNN_KIT_SALT", "a", "course-b"]


# --------------------------------------------------------------------------- helpers
def fsum_abs(W) -> float:
    return math.fsum(abs(float(w)) for w in np.asarray(W).flat)


def fsum_sq(W) -> float:
    return math.fsum(float(w) * float(w) for w in np.asarray(W).flat)


def weights_of(case) -> list[np.ndarray]:
    if "W" in case.inputs:
        return [case.inputs["W"]]
    return [case.inputs[f"W{i}"] for i in range(case.params["layers"])]


def all_cases(reference, salts=SALTS):
    """(check, case): the public fixtures, and every batch case (salted) of each salt."""
    return every_case(NOTEBOOK, reference, salts)


def grade(check, cases, namespace):
    """Run cases against functions in ``namespace`` (in-process, as the notebook runner does)."""
    results = []
    for i, case in enumerate(cases):
        event = run_case(
            namespace,
            wire_case(f"{check.id}/{i}", case),
            {k: v.copy() for k, v in case.inputs.items()},
            5000,
        )
        results.append(judge_event(check, case, event))
    return results


def namespace_of(reference, **overrides):
    ns = {name: getattr(reference, name) for name in norms.FUNCTIONS}
    ns.update(overrides)
    return ns


def run_everywhere(reference, namespace, salts=SALTS):
    """{check id: list of CaseResult} over the public fixtures and the batch cases of every salt."""
    out = {check.id: [] for check in checks_for(NOTEBOOK)}
    for check, case in all_cases(reference, salts):
        out[check.id] += grade(check, [case], namespace)
    return out


# --------------------------------------------------------------------------- right
def test_fixtures_are_what_the_builders_make(reference):
    fixtures = load_fixtures(NOTEBOOK)
    for check in checks_for(NOTEBOOK, include_hidden=False):
        built = build_public(check, reference)
        assert [c.name for c in built] == [c.name for c in fixtures[check.id]]
        for a, b in zip(built, fixtures[check.id], strict=True):
            assert a.plan == b.plan and a.returns == b.returns and a.params == b.params
            for name in a.inputs:
                assert np.array_equal(a.inputs[name], b.inputs[name])


def test_expected_values_agree_with_independent_formulas(reference):
    for check, case in all_cases(reference):
        weights = weights_of(case)
        lam = case.params.get("lam")
        for name, value in case.expected.items():
            if name == "l1_norm":
                assert float(value) == pytest.approx(fsum_abs(weights[0]), rel=1e-12)
            elif name == "l2_norm":
                assert float(value) == pytest.approx(math.sqrt(fsum_sq(weights[0])), rel=1e-12)
            elif name == "l1_penalty":
                total = lam * math.fsum(fsum_abs(W) for W in weights)
                assert float(value) == pytest.approx(total, rel=1e-12)
            elif name == "l2_penalty":
                total = lam / 2 * math.fsum(fsum_sq(W) for W in weights)
                assert float(value) == pytest.approx(total, rel=1e-12)
            elif name == "grads":
                l1 = case.params["kind"] == "l1_penalty_grad"
                assert len(value) == len(weights)
                for g, W in zip(value, weights, strict=True):
                    assert g.shape == W.shape
                    formula = lam * ((W > 0).astype(float) - (W < 0)) if l1 else lam * W
                    tol = 1e-7 if case.params["source"] == "finite differences" else 1e-14
                    assert rel_error(g, formula) < tol, (check.id, case.name)
                    if l1:
                        assert np.all(g[W == 0] == 0)
            elif name == "weights_after":  # the reference leaves its inputs alone
                assert all(np.array_equal(a, W) for a, W in zip(value, weights, strict=True))
            else:
                raise AssertionError(f"unexpected expected value {name}")


def _penalty_formula(function):
    if function == "l1_penalty_grad":
        return lambda ws, lam: lam * math.fsum(fsum_abs(W) for W in ws)
    return lambda ws, lam: lam / 2 * math.fsum(fsum_sq(W) for W in ws)


def test_expected_gradients_agree_with_finite_differences(reference):
    """Every gradient case, public and hidden, against finite differences of a loop formula."""
    h = 1e-6
    for check, case in all_cases(reference, SALTS[:1]):
        if "grads" not in case.expected:
            continue
        weights = [W.copy() for W in weights_of(case)]
        lam, function = case.params["lam"], case.params["kind"]
        penalty = _penalty_formula(function)
        for W, g in zip(weights, case.expected["grads"], strict=True):
            numeric = numerical_gradient(
                lambda _, ws=weights, f=penalty, lam=lam: f(ws, lam), W, h=h
            )
            # the central difference of |w| at an exact 0 is 0, like sign(0); skip only entries
            # that are non-zero but closer to the kink than the step
            smooth = (W == 0) | (np.abs(W) > 10 * h)
            assert smooth.mean() > 0.9
            scale = max(1.0, float(np.max(np.abs(g))))
            assert np.max(np.abs(numeric - g)[smooth]) < 1e-6 * scale, (check.id, case.name)


def test_finite_difference_cases_match_the_closed_forms(reference):
    check = get_check("norms_hidden_gradients")
    for salt in SALTS:
        fd = [c for c in hidden_cases(check, salt, reference) if "finite" in c.params["source"]]
        assert {c.params["kind"] for c in fd} == {"l1_penalty_grad", "l2_penalty_grad"}
        for case in fd:
            lam = case.params["lam"]
            for W, g in zip(weights_of(case), case.expected["grads"], strict=True):
                closed = lam * np.sign(W) if "l1" in case.params["kind"] else lam * W
                assert rel_error(g, closed) < 1e-7
                if "l1" in case.params["kind"]:
                    assert np.min(np.abs(W)) >= 0.05  # no kink within the step


def test_the_slides_matrix_is_a_public_case_with_the_corrected_values():
    fixtures = load_fixtures(NOTEBOOK)
    l1 = [c for c in fixtures["norms_l1_norm"] if np.array_equal(c.inputs["W"], norms.SLIDE_W)]
    l2 = [c for c in fixtures["norms_l2_norm"] if np.array_equal(c.inputs["W"], norms.SLIDE_W)]
    assert len(l1) == len(l2) == 1
    # 0.1+0.5+0.3+0.2+0.4+0.2+0.1+0.3+0.3 = 2.4; the slide's 1.2 is the largest column sum
    assert float(l1[0].expected["l1_norm"]) == pytest.approx(2.4, rel=1e-14)
    assert np.linalg.norm(norms.SLIDE_W, 1) == pytest.approx(1.2, rel=1e-14)
    # sum of squares 0.78 (the slide's "L2 norm"); the norm is its square root, about 0.883
    assert float(l2[0].expected["l2_norm"]) == pytest.approx(math.sqrt(0.78), rel=1e-14)
    assert float(l2[0].expected["l2_norm"]) == pytest.approx(0.8832, abs=1e-4)


def test_inputs_can_tell_the_mistakes_apart(reference):
    """Non-square matrices, shifted/scaled entries, several layers of different shapes, λ ≠ 1,
    exact zeros for the L1 subgradient, in the public cases and in every salt's hidden cases."""
    for salt in SALTS:
        cases = all_cases(reference, [salt])
        shapes = [W.shape for _, c in cases for W in weights_of(c)]
        assert any(r != c for r, c in shapes) and all(min(s) >= 2 for s in shapes)
        assert any(abs(float(W.mean())) > 0.5 for _, c in cases for W in weights_of(c))
        for _, case in cases:
            if "W" not in case.inputs:  # layers: penalties and gradients
                ws = weights_of(case)
                assert len(ws) >= 2 and len({W.shape for W in ws}) == len(ws)
                assert case.params["lam"] != 1
        for check_id in ("norms_l1_penalty_grad", "norms_hidden_gradients"):
            zero_cases = [
                c
                for k, c in cases
                if k.id == check_id
                and c.params.get("kind") == "l1_penalty_grad"
                and any(np.any(W == 0) for W in weights_of(c))
            ]
            assert zero_cases, (salt, check_id)


def test_case_inputs_are_not_all_alike_across_salts(reference):
    check = get_check("norms_hidden_penalties")
    a, b = (hidden_cases(check, s, reference) for s in SALTS[:2])
    assert [c.name for c in a] != [c.name for c in b]


# --------------------------------------------------------------------------- fair
def test_the_reference_passes_every_case_without_a_diagnosis(reference):
    for check_id, results in run_everywhere(reference, namespace_of(reference)).items():
        for r in results:
            assert r.passed, (check_id, r.name, r.message)
            assert not r.diagnosis


def test_float32_answers_and_tuples_pass(reference):
    def f32_scalar(name):
        def f(*args):
            args = [[W.astype(np.float32) for W in a] if isinstance(a, list) else a for a in args]
            if isinstance(args[0], np.ndarray):
                args[0] = args[0].astype(np.float32)
            return np.float32(getattr(reference, name)(*args))

        return f

    def f32_grads(name):
        def f(weights, lam):
            return tuple(
                g.astype(np.float32)
                for g in getattr(reference, name)([W.astype(np.float32) for W in weights], lam)
            )

        return f

    ns = namespace_of(
        reference,
        l1_norm=f32_scalar("l1_norm"),
        l2_norm=f32_scalar("l2_norm"),
        l1_penalty=f32_scalar("l1_penalty"),
        l2_penalty=f32_scalar("l2_penalty"),
        l1_penalty_grad=f32_grads("l1_penalty_grad"),
        l2_penalty_grad=f32_grads("l2_penalty_grad"),
    )
    results = run_everywhere(reference, ns)
    for check_id, rs in results.items():
        for r in rs:
            assert r.passed, (check_id, r.name, r.message)
    assert any("float32" in note for rs in results.values() for r in rs for note in r.notes)


# --------------------------------------------------------------------------- sharp
def _sum_over(fn):
    return lambda weights, lam: lam * sum(fn(W) for W in weights)


MISTAKES = {
    # misconception id -> (functions replaced, checks that must fail and name it)
    "norms.l1_max_column_sum": (
        {"l1_norm": lambda W: np.linalg.norm(W, 1)},
        ["norms_l1_norm", "norms_hidden_norms"],
    ),
    "norms.l1_max_column_sum/penalty": (
        {"l1_penalty": _sum_over(lambda W: np.linalg.norm(W, 1))},
        ["norms_l1_penalty", "norms_hidden_penalties"],
    ),
    "norms.l2_spectral": (
        {"l2_norm": lambda W: np.linalg.norm(W, 2)},
        ["norms_l2_norm", "norms_hidden_norms"],
    ),
    "norms.l2_spectral/penalty": (
        {"l2_penalty": lambda ws, lam: lam / 2 * sum(np.linalg.norm(W, 2) ** 2 for W in ws)},
        ["norms_l2_penalty", "norms_hidden_penalties"],
    ),
    "norms.l2_norm_no_sqrt": (
        {"l2_norm": lambda W: np.sum(W**2)},
        ["norms_l2_norm", "norms_hidden_norms"],
    ),
    "norms.l2_penalty_sqrt": (
        {"l2_penalty": lambda ws, lam: lam / 2 * sum(np.linalg.norm(W) for W in ws)},
        ["norms_l2_penalty", "norms_hidden_penalties"],
    ),
    "norms.l2_penalty_sqrt/total": (
        {"l2_penalty": lambda ws, lam: lam / 2 * np.sqrt(sum(np.sum(W**2) for W in ws))},
        ["norms_l2_penalty", "norms_hidden_penalties"],
    ),
    "norms.l2_penalty_sqrt/grad": (
        {"l2_penalty_grad": lambda ws, lam: [lam * W / np.linalg.norm(W) for W in ws]},
        ["norms_l2_penalty_grad", "norms_hidden_gradients"],
    ),
    "norms.l2_missing_half": (
        {"l2_penalty_grad": lambda ws, lam: [2 * lam * W for W in ws]},
        ["norms_l2_penalty_grad", "norms_hidden_gradients"],
    ),
    "norms.l2_missing_half/penalty": (
        {"l2_penalty": lambda ws, lam: lam * sum(np.sum(W**2) for W in ws)},
        ["norms_l2_penalty", "norms_hidden_penalties"],
    ),
    "norms.l1_grad_divide_by_abs": (
        {"l1_penalty_grad": lambda ws, lam: [lam * W / np.abs(W) for W in ws]},
        ["norms_l1_penalty_grad", "norms_hidden_gradients"],
    ),
    "norms.l1_grad_abs": (
        {"l1_penalty_grad": lambda ws, lam: [lam * np.abs(W) for W in ws]},
        ["norms_l1_penalty_grad", "norms_hidden_gradients"],
    ),
}


@pytest.mark.parametrize("label", list(MISTAKES))
def test_each_mistake_fails_exactly_its_checks_and_is_named(label, reference):
    misconception = label.split("/")[0]
    assert misconception in norms.MISCONCEPTIONS
    overrides, must_fail = MISTAKES[label]
    with np.errstate(all="ignore"):
        results = run_everywhere(reference, namespace_of(reference, **overrides))
    failed = sorted(k for k, rs in results.items() if not all(r.passed for r in rs))
    assert failed == sorted(must_fail)
    for check_id in must_fail:
        named = {d for r in results[check_id] for d in r.diagnosis}
        assert misconception in named, (check_id, named)
        # every failing case is named (on every salt), and nothing else is named
        for r in results[check_id]:
            if not r.passed:
                assert misconception in r.diagnosis, (check_id, r.name, r.message)
        assert named <= set(norms.MISCONCEPTIONS)


def test_every_misconception_has_a_detector_test():
    assert {label.split("/")[0] for label in MISTAKES} == set(norms.MISCONCEPTIONS)


def test_the_slides_numbers_are_recognised_in_the_message(reference):
    check = get_check("norms_l1_norm")
    cases = load_fixtures(NOTEBOOK)[check.id]
    results = grade(check, cases, {"l1_norm": lambda W: np.linalg.norm(W, 1)})
    assert "1.2 is what the slide prints" in results[0].message
    check = get_check("norms_l2_norm")
    results = grade(check, load_fixtures(NOTEBOOK)[check.id], {"l2_norm": lambda W: np.sum(W**2)})
    assert "0.78" in results[0].message


@pytest.mark.parametrize(
    ("function", "answer", "words"),
    [
        ("l2_penalty_grad", lambda ws, lam: np.concatenate([W.ravel() for W in ws]), "list"),
        ("l2_penalty_grad", lambda ws, lam: [lam * W for W in ws[:-1]], "one gradient per"),
        ("l2_penalty_grad", lambda ws, lam: [lam * W.T for W in ws], "shape"),
        ("l2_penalty_grad", lambda ws, lam: None, "None"),
        (
            "l1_penalty_grad",
            lambda ws, lam: [lam * np.where(W >= 0, 1.0, -1.0) for W in ws],
            "sign(0) = 0",
        ),
        ("l1_penalty_grad", lambda ws, lam: [np.sign(W) for W in ws], "without the factor λ"),
        ("l2_penalty_grad", lambda ws, lam: [lam * np.sign(W) for W in ws], "L1 gradient"),
    ],
)
def test_gradient_contract_failures_are_explained(function, answer, words, reference):
    check = get_check("norms_l1_penalty_grad" if "l1" in function else "norms_l2_penalty_grad")
    results = grade(check, load_fixtures(NOTEBOOK)[check.id], {function: answer})
    failed = [r for r in results if not r.passed]
    assert failed
    assert all(words in r.message for r in failed), [r.message for r in failed]
    assert not any(r.diagnosis for r in results)  # no catalogued misconception is claimed


def test_in_place_gradients_fail(reference):
    def scale_in_place(weights, lam):
        for W in weights:
            W *= lam
        return weights

    check = get_check("norms_l2_penalty_grad")
    results = grade(check, load_fixtures(NOTEBOOK)[check.id], {"l2_penalty_grad": scale_in_place})
    assert not any(r.passed for r in results)
    assert all("in place" in r.message for r in results)


def test_penalty_message_names_other_slips(reference):
    check = get_check("norms_l1_penalty")
    cases = load_fixtures(NOTEBOOK)[check.id]
    no_lambda = grade(
        check, cases, {"l1_penalty": lambda ws, lam: sum(np.abs(W).sum() for W in ws)}
    )
    assert all("without the factor λ" in r.message for r in no_lambda)
    first_only = grade(check, cases, {"l1_penalty": lambda ws, lam: lam * np.abs(ws[0]).sum()})
    assert all("first layer only" in r.message for r in first_only)
