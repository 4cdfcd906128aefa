"""The capstone checks are right, sharp and fair.

* Right: every expected value of every public case (the shipped fixtures) and hidden case (several
  salts) agrees with independent evidence: scores, loss and running statistics with a forward pass
  written here from the equations (no caches, no reference code); every expected gradient with
  centred finite differences of that independent loss. The finite-difference cases are built so that
  no ReLU input can cross 0 (|beta| > 3 |gamma| + margin with N = 10), which is verified here for every
  point the plan evaluates.
* Sharp: every sample answer of the class (data/sample_class/answers/04_capstone), each written the
  way a student would, fails exactly the checks it declares and is named with its misconception, on
  the public cases and on the hidden cases of every salt; the reference is never diagnosed.
* Fair: the correct answers (float32 inside, other formulas, dropout called with p = 0) pass every
  check even with tolerances five times tighter than the real ones; malformed answers fail with a
  message, never a crash of the judge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from kit_testing import every_case, read_answer, write_submission

from grader.checks import capstone, checks_for
from grader.checks.cases import fixtures_bytes, load_fixtures
from grader.grading import Target, grade_notebook
from grader.runner.child import run_case
from grader.runner.judging import judge_event, wire_case
from grader.toolkit.gradcheck import numerical_gradient

NOTEBOOK = "04_capstone"
SALTS = ["dnn-discussion-2-default-salt: set your own with --salt or DNN_KIT_SALT", "a", "course-b"]
CHECK_IDS = [c.id for c in checks_for(NOTEBOOK)]
ANSWERS = Path(__file__).resolve().parents[2] / "data" / "sample_class" / "answers" / NOTEBOOK


# --------------------------------------------------------------------------- running the checks
def all_cases(reference, salts=SALTS) -> list[tuple]:
    return every_case(NOTEBOOK, reference, salts)


@pytest.fixture(scope="module")
def cases(reference):
    return all_cases(reference)


def run_everywhere(cases, namespace) -> dict[str, list]:
    results: dict[str, list] = {cid: [] for cid in CHECK_IDS}
    for check, case in cases:
        event = run_case(
            namespace,
            wire_case(f"{check.id}/x", case),
            {k: v.copy() for k, v in case.inputs.items()},
            5000,
        )
        results[check.id].append(judge_event(check, case, event))
    return results


def failed_checks(results, carry_forward: bool = True) -> list[str]:
    """Checks that lose points (errors carried forward on, the default, or off)."""
    return sorted(
        cid for cid, cases in results.items() if not all(c.earned(carry_forward) for c in cases)
    )


def diagnoses(results) -> set[str]:
    return {d for cases in results.values() for c in cases for d in c.diagnosis}


def answer_namespace(path: Path) -> dict:
    namespace = {"np": np, "numpy": np, "__name__": "__main__"}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)  # noqa: S102
    return namespace


def declared(path: Path) -> tuple[str, list[str]]:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    expect = next(
        line.split(":", 1)[1].strip() for line in doc.splitlines() if line.startswith("expect:")
    )
    fails = next(
        (line.split(":", 1)[1].split() for line in doc.splitlines() if line.startswith("fails:")),
        [],
    )
    return expect, sorted(fails)


def reference_namespace(reference) -> dict:
    return {name: getattr(reference, name) for name in capstone.FUNCTIONS}


# --------------------------------------------------------------------------- independent network
def keys_of(case):
    return case.params["keys"].split(",")


def params_of(case, keys=None, replace=None):
    replace = replace or {}
    return {k: case.inputs[replace.get(k, k)] for k in keys or keys_of(case)}


def forward(params, X, mode, running=None):
    """Scores written from the equations, no dropout; returns scores and the batch statistics."""
    n_layers = sum(k.startswith("W") for k in params)
    h, stats = X, []
    for layer in range(1, n_layers):
        a = h @ params[f"W{layer}"] + params[f"b{layer}"]
        if f"gamma{layer}" in params:
            if mode == "train":
                mu, var = a.mean(axis=0), ((a - a.mean(axis=0)) ** 2).mean(axis=0)
            else:
                mu, var = running[layer - 1]
            stats.append((a.mean(axis=0), ((a - a.mean(axis=0)) ** 2).mean(axis=0)))
            a = params[f"gamma{layer}"] * (a - mu) / np.sqrt(var + 1e-3) + params[f"beta{layer}"]
        h = np.where(a > 0, a, 0.0)
    return h @ params[f"W{n_layers}"] + params[f"b{n_layers}"], stats


def objective(params, X, y, lam):
    scores, _ = forward(params, X, "train")
    top = scores.max(axis=1)
    log_norm = top + np.log(np.exp(scores - top[:, None]).sum(axis=1))
    data = float(np.mean(log_norm - scores[np.arange(len(y)), y]))
    return data + lam / 2 * sum(float(np.sum(v**2)) for k, v in params.items() if k[0] == "W")


def running_inputs(case):
    hidden = sum(k.startswith("rm") for k in case.inputs)
    return [(case.inputs[f"rm{i}"], case.inputs[f"rv{i}"]) for i in range(1, hidden + 1)]


# --------------------------------------------------------------------------- right
def test_fixtures_are_built_from_the_current_builders(reference):
    fresh = load_fixtures(NOTEBOOK, fixtures_bytes(NOTEBOOK, reference))
    shipped = load_fixtures(NOTEBOOK)
    assert set(fresh) == set(shipped)
    for check_id, cases in fresh.items():
        for new, old in zip(cases, shipped[check_id], strict=True):
            assert new.name == old.name and new.plan == old.plan and new.params == old.params
            for name, value in new.inputs.items():
                np.testing.assert_allclose(value, old.inputs[name], rtol=1e-12, atol=0)


def test_expected_scores_and_running_statistics_are_right(cases):
    seen = 0
    for _check, case in cases:
        kind = case.params.get("kind")
        if kind == "dropout_test":
            scores, _ = forward(params_of(case), case.inputs["X"], "test")
            for name in ("scores_a", "scores_b"):
                np.testing.assert_allclose(case.expected[name], scores, rtol=1e-12, atol=1e-10)
        elif kind == "bn_test":
            running = running_inputs(case)
            params = params_of(case)
            X = case.inputs["X"]
            scores, _ = forward(params, X, "test", running)
            np.testing.assert_allclose(case.expected["scores"], scores, rtol=1e-12, atol=1e-10)
            head = case.params["head"]
            np.testing.assert_allclose(
                forward(params, case.inputs["X_head"], "test", running)[0],
                scores[:head],
                rtol=1e-12,
            )
            batch, _ = forward(params, X, "train")
            np.testing.assert_allclose(case.expected["batch_stats"], batch, rtol=1e-12, atol=1e-10)
            default = [(np.zeros_like(m), np.ones_like(v)) for m, v in running]
            np.testing.assert_allclose(
                case.expected["default_stats"],
                forward(params, X, "test", default)[0],
                rtol=1e-12,
                atol=1e-10,
            )
            assert capstone._error(batch, scores) > 1e-2  # the variants are far from the answer
            assert capstone._error(forward(params, X, "test", default)[0], scores) > 1e-2
        elif kind == "bn_train":
            scores, stats = forward(params_of(case), case.inputs["X"], "train")
            np.testing.assert_allclose(case.expected["scores"], scores, rtol=1e-12, atol=1e-10)
            for i, (mu, var) in enumerate(stats, start=1):
                rm, rv = case.inputs[f"rm{i}"], case.inputs[f"rv{i}"]
                np.testing.assert_allclose(case.expected[f"rm{i}"], 0.9 * rm + 0.1 * mu, rtol=1e-12)
                np.testing.assert_allclose(
                    case.expected[f"rv{i}"], 0.9 * rv + 0.1 * var, rtol=1e-12
                )
        else:
            continue
        seen += 1
    assert seen >= 3 + 3 * len(SALTS)


def test_expected_loss_and_gradients_match_finite_differences(cases):
    seen = 0
    for _check, case in cases:
        kind = case.params.get("kind")
        if kind not in ("loss", "grads"):
            continue
        seen += 1
        params = {k: v.copy() for k, v in params_of(case).items()}
        X, y, lam = case.inputs["X"], case.inputs["y"], case.params["lam"]
        if kind == "loss":
            assert float(case.expected["loss"]) == pytest.approx(
                objective(params, X, y, lam), rel=1e-12
            )
            assert float(case.expected["data_loss"]) == pytest.approx(
                objective(params, X, y, 0.0), rel=1e-12
            )
            continue
        bn = "gamma1" in params

        def at(lam_, params=params, X=X, y=y):
            return lambda _: objective(params, X, y, lam_)

        for key, value in params.items():
            numeric = numerical_gradient(at(lam), value)
            data = numerical_gradient(at(0.0), value)
            expected, expected_data = case.expected[f"d{key}"], case.expected[f"data_d{key}"]
            pre_bn_bias = (
                bn and key[0] == "b" and not key.startswith("beta") and f"gamma{key[1:]}" in params
            )
            if (
                pre_bn_bias
            ):  # exactly zero: compare sizes (see tests/reference/test_reference_capstone.py)
                assert np.abs(expected).max() <= 1e-12 and np.abs(numeric).max() <= 1e-8, key
                continue
            scale = np.abs(numeric).max()
            np.testing.assert_allclose(expected, numeric, rtol=1e-6, atol=1e-7 * scale, err_msg=key)
            np.testing.assert_allclose(
                expected_data, data, rtol=1e-6, atol=1e-7 * scale, err_msg=key
            )
    assert seen >= 5 + 3 * len(SALTS)


def test_finite_difference_cases_never_cross_a_relu_kink(cases, reference):
    """|x_hat| <= sqrt(N - 1) = 3 for any input, so |beta| > 3 |gamma| keeps every unit's sign."""
    seen = 0
    for _check, case in cases:
        if case.params.get("kind") != "gradcheck":
            continue
        seen += 1
        assert case.inputs["X"].shape[0] == 10
        keys = keys_of(case)
        points = [{}] + [{k: f"{k}{s}"} for k in keys for s in "+-"]
        points += [{k: f"{k}@{s}" for k in keys} for s in "+-"]
        for replace in points:
            params = params_of(case, keys, replace)
            for layer in range(1, sum(k.startswith("W") for k in keys)):
                gamma, beta = params[f"gamma{layer}"], params[f"beta{layer}"]
                assert np.all(np.abs(beta) - 3.0 * np.abs(gamma) > 0.15)
        # and empirically, with masks: the batch-normalised values never come near 0
        params = params_of(case, keys)
        for seed in range(5):
            h = case.inputs["X"]
            rng = np.random.default_rng(seed)
            for layer in range(1, sum(k.startswith("W") for k in keys)):
                a = h @ params[f"W{layer}"] + params[f"b{layer}"]
                z = (
                    params[f"gamma{layer}"] * (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-3)
                    + params[f"beta{layer}"]
                )
                assert np.abs(z).min() > 0.15
                h = (
                    np.maximum(z, 0)
                    * (rng.random(z.shape) >= case.params["p_drop"])
                    / (1 - case.params["p_drop"])
                )
    assert seen == 1 + 2 * len(SALTS)  # the public fixture; per salt, the public and the hidden one


# --------------------------------------------------------------------------- sharp and fair
def test_reference_passes_everything_without_diagnosis(cases, reference):
    results = run_everywhere(cases, reference_namespace(reference))
    assert failed_checks(results) == []
    assert diagnoses(results) == set()


@pytest.mark.parametrize("path", sorted(ANSWERS.glob("*.py")), ids=lambda p: p.stem)
def test_sample_answer_on_every_salt(path, cases, monkeypatch):
    expect, fails = declared(path)
    if expect == "full marks":  # fair with a margin: five times tighter tolerances still pass
        for name in ("VALUE_TOL", "GRAD_TOL", "FD_RTOL", "FD_ATOL"):
            monkeypatch.setattr(capstone, name, getattr(capstone, name) / 5)
    results = run_everywhere(cases, answer_namespace(path))
    if expect == "full marks":
        assert failed_checks(results) == [], {
            cid: [c.message for c in cs if not c.passed] for cid, cs in results.items()
        }
        assert diagnoses(results) == set()
    else:
        assert failed_checks(results) == fails
        assert expect in diagnoses(results), diagnoses(results)


def test_every_capstone_misconception_has_a_sample_answer():
    expected = {declared(p)[0] for p in ANSWERS.glob("*.py")}
    assert set(capstone.MISCONCEPTIONS) | {capstone.PENALTY_HALF, capstone.PENALTY_SQRT} <= expected


def _malformed(kind):
    def mlp_loss(params, X, y=None, **kwargs):
        if y is None:
            return None if kind == "none" else [[0.0]]
        if kind == "list":
            return 1.0, [np.zeros_like(v) for v in params.values()]
        if kind == "missing":
            return 1.0, {"W1": np.zeros_like(params["W1"])}
        if kind == "nan":
            return float("nan"), {k: np.full_like(v, np.nan) for k, v in params.items()}
        return np.array([1.0]), {k: np.zeros((1,)) for k in params}

    return mlp_loss


@pytest.mark.parametrize("kind", ["none", "list", "missing", "nan", "shapes"])
def test_malformed_answers_fail_with_a_message(kind, cases, reference):
    namespace = reference_namespace(reference) | {"mlp_loss": _malformed(kind)}
    results = run_everywhere(cases, namespace)
    for check_id, case_results in results.items():
        if check_id == "capstone_layers":
            assert all(c.passed for c in case_results)
            continue
        assert not any(c.passed for c in case_results), check_id
        assert all(c.message for c in case_results)


def test_a_constant_loss_with_zero_gradients_earns_no_gradient_check(cases, reference):
    """Issue 10's degenerate pair: a constant loss agrees perfectly with its own (zero) finite
    differences. The gate asks for the right loss with dropout off first."""

    def mlp_loss(params, X, y=None, **kwargs):
        if y is None:
            return np.zeros((X.shape[0], 3))
        return 1.0, {k: np.zeros_like(v) for k, v in params.items()}

    results = run_everywhere(cases, reference_namespace(reference) | {"mlp_loss": mlp_loss})
    kinds: dict[str, list] = {cid: [] for cid in CHECK_IDS}
    for check, case in cases:  # run_everywhere keeps the order of the cases within each check
        kinds[check.id].append(case.params.get("kind"))
    judged = [
        result
        for cid in CHECK_IDS
        for kind, result in zip(kinds[cid], results[cid], strict=True)
        if kind == "gradcheck"
    ]
    assert len(judged) == 1 + 2 * len(SALTS)
    assert not any(r.passed for r in judged)
    assert all("proves nothing about the gradients" in r.message for r in judged)


# --------------------------------------------------------------------------- errors carried forward
CARRIED = ["delia_penalty_on_biases", "enzo_penalty_on_everything", "fatima_no_half"]


@pytest.mark.parametrize("stem", CARRIED)
def test_a_loss_mistake_is_charged_once_and_carried_forward(stem, cases):
    """A loss with a catalogued mistake and the exact gradients of that loss: the gradient
    checks keep their points, say which check charged the mistake, and store both verdicts, so
    a course that turns errors carried forward off charges them again."""
    path = ANSWERS / f"{stem}.py"
    _expect, fails = declared(path)
    results = run_everywhere(cases, answer_namespace(path))
    carried = {cid for cid, cs in results.items() for c in cs if c.carried_forward}
    assert "capstone_gradients" in carried and "capstone_loss" in fails
    for cs in results.values():
        for c in cs:
            if c.carried_forward:
                assert not c.passed and c.charged_in == capstone.LOSS_CHECK
                assert f"charged in {capstone.LOSS_CHECK}" in c.message
    assert not carried & set(fails)
    assert failed_checks(results, carry_forward=False) == sorted(set(fails) | carried)


def test_right_gradients_of_a_wrong_loss_pass_the_finite_difference_check(cases):
    """goran's loss uses the norms (charged in capstone_loss), his gradients are the right ones:
    the finite differences of his loss, with the mistake's analytic part taken out, agree."""
    path = ANSWERS / "goran_penalty_norm.py"
    results = run_everywhere(cases, answer_namespace(path))
    judged = [
        c
        for cid in ("capstone_gradcheck_dropout", "capstone_hidden_backward")
        for c in results[cid]
    ]
    assert all(c.passed for c in judged)
    assert any("once that mistake's part is taken out" in c.message for c in judged)
    assert failed_checks(results, carry_forward=False) == declared(path)[1]


def test_the_gate_holds_through_the_real_runner(tmp_path, reference):
    """A constant loss with zero gradients, graded end to end (grade_notebook on a written
    submission, hidden checks included): no gradient-check points, carried forward or not."""
    functions, _ = read_answer(ANSWERS / "amara_correct.py")
    functions["mlp_loss"] = (
        "def mlp_loss(params, X, y=None, *, p_drop=0.0, lam=0.0, mode='train', bn_params=None,"
        " rng=None):\n"
        "    if y is None:\n"
        "        return np.zeros((X.shape[0], 3))\n"
        "    return 1.0, {k: np.zeros_like(v) for k, v in params.items()}\n"
    )
    notebook = write_submission(tmp_path, NOTEBOOK, functions)
    result = grade_notebook(Target(notebook), reference=reference)
    assert not result.error, result.error
    by_id = {c.check.id: c for c in result.checks}
    for check_id in (
        "capstone_gradients",
        "capstone_gradcheck_dropout",
        "capstone_hidden_backward",
    ):
        check = by_id[check_id]
        assert check.score == 0.0 and not any(c.earned() for c in check.cases), check_id
    gate = [c for c in by_id["capstone_gradcheck_dropout"].cases]
    gate += [c for c in by_id["capstone_hidden_backward"].cases if "finite differences" in c.name]
    assert len(gate) == 2
    assert all("proves nothing about the gradients" in c.message for c in gate)
    assert by_id["capstone_layers"].score == by_id["capstone_layers"].check.points
