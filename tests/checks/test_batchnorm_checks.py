"""The batch-normalization checks are right, sharp and fair.

* Right: every expected value of every public case (the shipped fixtures) and hidden case (several
  salts) agrees with independent evidence: forward outputs with a per-column computation in pure
  Python (``statistics``), the per-feature mean beta and std |gamma| sigma / sqrt(sigma^2 + eps);
  running statistics with the unrolled closed form of the recursion; test-mode outputs with the
  formula; gradients with centred finite differences of an independent forward pass (and, when
  installed, PyTorch's autograd). The finite-difference hidden case agrees with the closed form.
* Sharp: each catalogued mistake, written here as a variant of one parametrised implementation,
  fails exactly the checks it should and is named with exactly the expected ids, on every salt; the
  reference is never diagnosed.
* Fair: answers that work in float32, use np.std / E[x^2] - mu^2, in-place running updates or other
  cache layouts pass every check with no diagnosis, and with a margin below the tolerance; malformed
  answers fail with a message instead of crashing the judge.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from kit_testing import every_case

from grader.checks import batchnorm, checks_for
from grader.checks.base import Case, Returned, run_judge
from grader.checks.cases import fixtures_bytes, load_fixtures
from grader.runner.child import run_case
from grader.runner.judging import judge_event, wire_case
from grader.toolkit.gradcheck import numerical_gradient_array, rel_error

NOTEBOOK = "03_batchnorm"
SALTS = ["dnn-discussion-2-default-salt: set your own with --salt or DNN_KIT_SALT", "a", "course-b"]
CHECK_IDS = [c.id for c in checks_for(NOTEBOOK)]


# --------------------------------------------------------------------------- running the checks
def all_cases(reference, salts=SALTS) -> list[tuple]:
    """(check, case): the public fixtures, and every batch case (salted) of each salt."""
    return every_case(NOTEBOOK, reference, salts)


def run_everywhere(reference, namespace, salts=SALTS) -> dict[str, list]:
    """{check id: [CaseResult]} over the public cases and the hidden cases of every salt."""
    results: dict[str, list] = {cid: [] for cid in CHECK_IDS}
    for check, case in all_cases(reference, salts):
        event = run_case(
            namespace,
            wire_case(f"{check.id}/x", case),
            {k: v.copy() for k, v in case.inputs.items()},
            5000,
        )
        results[check.id].append(judge_event(check, case, event))
    return results


def failed_checks(results) -> list[str]:
    return sorted(cid for cid, cases in results.items() if not all(c.passed for c in cases))


def diagnoses(results) -> set[str]:
    return {d for cases in results.values() for c in cases for d in c.diagnosis}


# --------------------------------------------------------------------------- independent formulas
def column_forward(x, gamma, beta, eps):
    """Training-mode output computed column by column with Python's statistics module."""
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        column = [float(v) for v in x[:, j]]
        mu, var = statistics.fmean(column), statistics.pvariance(column)
        out[:, j] = [gamma[j] * (v - mu) / math.sqrt(var + eps) + beta[j] for v in column]
    return out


def unrolled_running(xs, r0, m, statistic):
    """m^K r0 + (1 - m) sum_k m^(K-1-k) stat(x_k): the recursion written out."""
    k = len(xs)
    return m**k * r0 + (1 - m) * sum(m ** (k - 1 - i) * statistic(x) for i, x in enumerate(xs))


def plain_forward(x, gamma, beta, eps):
    mu = x.mean(axis=0)
    return gamma * (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=0) + eps) + beta


def finite_differences(x, gamma, beta, dout, eps):
    """dx, dgamma, dbeta of sum(plain_forward * dout) by centred differences."""
    return (
        numerical_gradient_array(lambda z: plain_forward(z, gamma, beta, eps), x.copy(), dout),
        numerical_gradient_array(lambda g: plain_forward(x, g, beta, eps), gamma.copy(), dout),
        numerical_gradient_array(lambda b: plain_forward(x, gamma, b, eps), beta.copy(), dout),
    )


def eps_of(case: Case) -> float:
    return 1e-3 if case.params.get("eps") is None else case.params["eps"]


def momentum_of(case: Case) -> float:
    return 0.9 if case.params.get("momentum") is None else case.params["momentum"]


def start_of(case: Case, d: int):
    return case.inputs.get("rm", np.zeros(d)), case.inputs.get("rv", np.ones(d))


# --------------------------------------------------------------------------- right
def test_fixtures_are_up_to_date(reference):
    """The shipped public cases are what the builders make now (rebuild with make_fixtures.py)."""
    fresh = load_fixtures(NOTEBOOK, fixtures_bytes(NOTEBOOK, reference))
    shipped = load_fixtures(NOTEBOOK)
    assert fresh.keys() == shipped.keys()
    for cid in fresh:
        assert [c.name for c in fresh[cid]] == [c.name for c in shipped[cid]]
        for a, b in zip(fresh[cid], shipped[cid], strict=True):
            assert a.plan == b.plan and a.params == b.params
            for name in a.inputs:
                np.testing.assert_allclose(a.inputs[name], b.inputs[name], rtol=1e-12, atol=0)


def test_inputs_can_tell_the_mistakes_apart(reference):
    """gamma != 1 with mixed signs, beta != 0, N >= 4, shifted features, and quiet ones."""
    for _, case in all_cases(reference):
        gamma, beta = case.inputs["gamma"], case.inputs["beta"]
        xs = [v for k, v in case.inputs.items() if k.startswith("x")]
        assert np.all(np.abs(np.abs(gamma) - 1) > 1e-6) and np.all(np.abs(beta) > 1e-6)
        for x in xs:
            assert x.shape[0] >= 4 and x.shape[1] >= 3
            var = x.var(axis=0)
            # quiet features (variance within a few eps: eps moves their output by > 1e-3) and ordinary ones
            assert var.min() < 5e-3 and var.max() > 0.2, case.name
            assert np.abs(x.mean(axis=0)).max() > 1.0, case.name  # shifted
        if "dout" in case.inputs:
            assert np.unique(case.inputs["dout"]).size == case.inputs["dout"].size


def test_expected_forward_values_are_right(reference):
    seen = set()
    for _, case in all_cases(reference):
        kind, eps = case.params["kind"], eps_of(case)
        gamma, beta = case.inputs["gamma"], case.inputs["beta"]
        seen.add(kind)
        if kind in ("train", "backward", "backward_alt"):
            x, out = case.inputs["x"], case.expected["out"]
            np.testing.assert_allclose(
                out, column_forward(x, gamma, beta, eps), rtol=1e-10, atol=1e-12
            )
            sigma2 = x.var(axis=0)
            np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)
            np.testing.assert_allclose(
                out.std(axis=0), np.abs(gamma) * np.sqrt(sigma2 / (sigma2 + eps)), rtol=1e-9
            )
            # where eps matters, the std is measurably below |gamma| (the slides' "unit variance")
            assert np.max(1 - out.std(axis=0) / np.abs(gamma)) > 1e-3
        if kind in ("sequence", "warmup_test"):
            xs = [case.inputs[f"x{i}"] for i in range(case.params["calls"])]
            m = momentum_of(case)
            rm0, rv0 = start_of(case, xs[0].shape[1])
            rm = unrolled_running(xs, rm0, m, lambda x: x.mean(axis=0))
            rv = unrolled_running(xs, rv0, m, lambda x: x.var(axis=0))
            np.testing.assert_allclose(case.expected["running_mean"], rm, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(case.expected["running_var"], rv, rtol=1e-12, atol=1e-14)
            if kind == "sequence":
                np.testing.assert_allclose(
                    case.expected["out"],
                    column_forward(xs[-1], gamma, beta, eps),
                    rtol=1e-10,
                    atol=1e-12,
                )
            else:
                want = gamma * (case.inputs["x_test"] - rm) / np.sqrt(rv + eps) + beta
                np.testing.assert_allclose(case.expected["out"], want, rtol=1e-10, atol=1e-12)
        if kind in ("test", "defaults_test"):
            x = case.inputs["x"]
            rm, rv = start_of(case, x.shape[1])
            want = gamma * (x - rm) / np.sqrt(rv + eps) + beta
            np.testing.assert_allclose(case.expected["out"], want, rtol=1e-10, atol=1e-12)
    assert seen >= {"train", "sequence", "warmup_test", "test", "defaults_test", "backward"}


def test_expected_gradients_match_finite_differences(reference):
    """Every backward case, public and hidden, against finite differences of an independent forward."""
    n_fd = 0
    for _, case in all_cases(reference):
        if not case.params["kind"].startswith("backward"):
            continue
        x, gamma, beta, dout = (case.inputs[k] for k in ("x", "gamma", "beta", "dout"))
        eps = eps_of(case)
        numeric = finite_differences(x, gamma, beta, dout, eps)
        for name, fd in zip(("dx", "dgamma", "dbeta"), numeric, strict=True):
            error = batchnorm._error(case.expected[name], fd)
            # centred differences with h = 1e-5 are good to ~1e-8 on a quiet feature
            assert error < 1e-7, (
                f"{case.name}: {name} differs from finite differences by {error:.1e}"
            )
        if "finite differences" in case.name:
            n_fd += 1
            # the expected values of this case ARE finite differences: compare with the closed form
            mu, var = x.mean(axis=0), x.var(axis=0)
            xhat = (x - mu) / np.sqrt(var + eps)
            dg, db = (dout * xhat).sum(axis=0), dout.sum(axis=0)
            dx = gamma / (len(x) * np.sqrt(var + eps)) * (len(x) * dout - db - xhat * dg)
            for name, exact in (("dx", dx), ("dgamma", dg), ("dbeta", db)):
                assert rel_error(case.expected[name], exact) < 1e-6, name
    assert n_fd == len(SALTS)


def test_expected_values_agree_with_pytorch(reference):
    """PyTorch's batch norm (float64, autograd) as an oracle, eps passed explicitly."""
    torch = pytest.importorskip("torch")
    for _, case in all_cases(reference):
        if not case.params["kind"].startswith("backward"):
            continue
        tensors = {
            k: torch.tensor(case.inputs[k], dtype=torch.float64, requires_grad=k != "dout")
            for k in ("x", "gamma", "beta", "dout")
        }
        out = torch.nn.functional.batch_norm(
            tensors["x"],
            None,
            None,
            tensors["gamma"],
            tensors["beta"],
            training=True,
            eps=eps_of(case),
        )
        (out * tensors["dout"]).sum().backward()
        np.testing.assert_allclose(
            case.expected["out"], out.detach().numpy(), rtol=1e-10, atol=1e-12
        )
        for name, key in (("dx", "x"), ("dgamma", "gamma"), ("dbeta", "beta")):
            assert batchnorm._error(case.expected[name], tensors[key].grad.numpy()) < 1e-8, name


# --------------------------------------------------------------------------- implementations
def make_bn(
    *,
    ddof=0,
    eps_outside=False,
    eps_default=1e-3,
    eps_fixed=None,
    momentum_default=0.9,
    swapped=False,
    written=True,
    in_place=False,
    update_in_test=False,
    test_batch_stats=False,
    axis=0,
    running_ddof=None,
    dtype=np.float64,
    moments=False,
    staged=None,
    alt=None,
):
    """One batch-norm implementation with switches for the catalogued mistakes.

    ``staged`` and ``alt`` are dicts of backward switches: const (mu and var constants), no_mean,
    no_var, no_gamma, param_mean, param_axis.
    """

    def forward(x, gamma, beta, bn_param):
        x, gamma, beta = (np.asarray(a, dtype=dtype) for a in (x, gamma, beta))
        mode = bn_param["mode"]
        eps = dtype(eps_fixed if eps_fixed is not None else bn_param.get("eps", eps_default))
        m = dtype(bn_param.get("momentum", momentum_default))
        D = x.shape[1]
        if in_place:
            bn_param.setdefault("running_mean", np.zeros(D, dtype=dtype))
            bn_param.setdefault("running_var", np.ones(D, dtype=dtype))
        rm = bn_param.get("running_mean", np.zeros(D, dtype=dtype))
        rv = bn_param.get("running_var", np.ones(D, dtype=dtype))
        mu = x.mean(axis=axis, keepdims=True)
        if moments:
            var = (x * x).mean(axis=axis, keepdims=True) - mu**2
        else:
            var = np.std(x, axis=axis, ddof=ddof, keepdims=True) ** 2
        if axis == 0:
            mu, var = mu[0], var[0]
        batch_var = var if running_ddof is None else x.var(axis=0, ddof=running_ddof)
        keep = 1 - m if swapped else m
        if mode == "train" or update_in_test:
            if in_place:
                rm *= keep
                rm += (1 - keep) * mu
                rv *= keep
                rv += (1 - keep) * batch_var
            else:
                new_mean = keep * rm + (1 - keep) * mu
                new_var = keep * rv + (1 - keep) * batch_var
                if written:
                    bn_param["running_mean"], bn_param["running_var"] = new_mean, new_var
        if mode == "test" and not test_batch_stats:
            mu, var = np.asarray(rm, dtype=dtype).copy(), np.asarray(rv, dtype=dtype).copy()
        std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
        xhat = (x - mu) / std
        return gamma * xhat + beta, {"xhat": xhat, "std": std, "gamma": gamma, "mode": mode}

    def make_backward(switches):
        switches = switches or {}

        def backward(dout, cache):
            dout = np.asarray(dout, dtype=dtype)
            xhat, std = cache["xhat"], cache["std"]
            g = 1 if switches.get("no_gamma") else cache["gamma"]
            d = dout * g
            dx = d / std
            if cache["mode"] == "train" and not switches.get("const"):
                if not switches.get("no_mean"):
                    dx = dx - d.mean(axis=0) / std
                if not switches.get("no_var"):
                    dx = dx - xhat * (d * xhat).mean(axis=0) / std
            reduce = np.mean if switches.get("param_mean") else np.sum
            axis_ = switches.get("param_axis", 0)
            return dx, reduce(dout * xhat, axis=axis_), reduce(dout, axis=axis_)

        return backward

    return {
        "np": np,
        "batchnorm_forward": forward,
        "batchnorm_backward": make_backward(staged),
        "batchnorm_backward_alt": make_backward(alt if alt is not None else staged),
    }


FORWARD_CHECKS = [
    "bn_forward_defaults",
    "bn_forward_train",
    "bn_hidden_forward",
    "bn_running_stats",
    "bn_test_mode",
]
# both backward passes wrong the same way: they agree, but bn_alt_matches_staged compares with
# the reference too (two identical wrong answers earn nothing there)
BACKWARD_CHECKS = ["bn_alt_matches_staged", "bn_backward", "bn_backward_alt", "bn_hidden_backward"]
RUNNING = ["bn_forward_defaults", "bn_hidden_forward", "bn_running_stats", "bn_test_mode"]

# variant -> (make_bn switches, checks that must fail, ids that must be named: exactly these)
VARIANTS = {
    "ddof1": (
        {"ddof": 1},
        sorted(FORWARD_CHECKS + BACKWARD_CHECKS),
        {"bn.unbiased_variance", "bn.unbiased_running_var"},
    ),
    "eps_outside": (
        {"eps_outside": True},
        sorted(
            [
                "bn_forward_defaults",
                "bn_forward_train",
                "bn_hidden_forward",
                "bn_test_mode",
                *BACKWARD_CHECKS,
            ]
        ),
        {"bn.eps_outside_sqrt"},
    ),
    "eps_default_1e-5": (
        {"eps_default": 1e-5},
        ["bn_forward_defaults", "bn_hidden_forward"],
        {"bn.wrong_eps"},
    ),
    "eps_fixed_1e-3": (  # ignores bn_param["eps"]: only cases with another eps catch it
        {"eps_fixed": 1e-3},
        sorted(
            [
                "bn_forward_train",
                "bn_hidden_forward",
                "bn_test_mode",
                *BACKWARD_CHECKS,
            ]
        ),
        {"bn.wrong_eps"},
    ),
    "momentum_swapped": ({"swapped": True}, RUNNING, {"bn.momentum_swapped"}),
    "not_written": ({"written": False}, RUNNING, {"bn.running_not_written"}),
    "updated_in_test": (
        {"update_in_test": True},
        ["bn_hidden_forward", "bn_test_mode"],
        {"bn.running_updated_in_test"},
    ),
    "test_batch_stats": (
        {"test_batch_stats": True},
        ["bn_forward_defaults", "bn_hidden_forward", "bn_test_mode"],
        {"bn.test_uses_batch_stats"},
    ),
    "layer_norm": ({"axis": 1}, sorted(FORWARD_CHECKS + BACKWARD_CHECKS), {"bn.wrong_axis"}),
    "unbiased_running": ({"running_ddof": 1}, RUNNING, {"bn.unbiased_running_var"}),
    "constant_stats": (
        {"staged": {"const": True}},
        BACKWARD_CHECKS,
        {"bn.backward_constant_stats"},
    ),
    "no_mean_path": (
        {"staged": {"no_mean": True}, "alt": {}},
        ["bn_alt_matches_staged", "bn_backward", "bn_hidden_backward"],
        {"bn.backward_missing_mean_path"},
    ),
    "no_var_path": (
        {"staged": {"no_var": True}, "alt": {}},
        ["bn_alt_matches_staged", "bn_backward", "bn_hidden_backward"],
        {"bn.backward_missing_var_path"},
    ),
    "no_gamma": ({"staged": {"no_gamma": True}}, BACKWARD_CHECKS, {"bn.backward_no_gamma"}),
    "param_mean": ({"staged": {"param_mean": True}}, BACKWARD_CHECKS, {"bn.param_grad_mean"}),
    "param_axis": ({"staged": {"param_axis": 1}}, BACKWARD_CHECKS, {"bn.param_grad_wrong_axis"}),
    "alt_param_mean": (
        {"staged": {}, "alt": {"param_mean": True}},
        ["bn_alt_matches_staged", "bn_backward_alt", "bn_hidden_backward"],
        {"bn.param_grad_mean"},
    ),
}

CORRECT = {
    "reference-like": {},
    "float32": {"dtype": np.float32},
    "E[x^2] - mu^2": {"moments": True},
    "in-place running updates, setdefault": {"in_place": True},
    "float32 and in place": {"dtype": np.float32, "in_place": True},
}


def test_the_catalogue_is_covered():
    named = set().union(*(ids for _, _, ids in VARIANTS.values()))
    assert named == set(batchnorm.MISCONCEPTIONS)
    for m in batchnorm.MISCONCEPTIONS.values():
        assert m.id.startswith("bn.") and m.title and m.hint
        assert "np." not in m.hint and "def " not in m.hint, m.id  # hints teach, they give no code


def test_reference_passes_everything_and_is_never_diagnosed(reference):
    namespace = {"np": np} | {f: getattr(reference, f) for f in batchnorm.FUNCTIONS}
    results = run_everywhere(reference, namespace)
    assert failed_checks(results) == []
    assert diagnoses(results) == set()


@pytest.mark.parametrize("name", CORRECT)
def test_equivalent_answers_pass_with_a_margin(name, reference):
    results = run_everywhere(reference, make_bn(**CORRECT[name]))
    problems = {cid: [c.message for c in cases if not c.passed] for cid, cases in results.items()}
    assert failed_checks(results) == [], problems
    assert diagnoses(results) == set()
    if CORRECT[name].get("dtype") is np.float32:
        notes = [n for cases in results.values() for c in cases for n in c.notes]
        assert any("float32" in n for n in notes)  # accepted, with a note


def test_float32_round_off_is_well_inside_the_tolerance(reference):
    """The worst error of a float32 answer stays 10x below VALUE_TOL (so the tolerance is not luck)."""
    ns = make_bn(dtype=np.float32)
    worst = 0.0
    for _, case in all_cases(reference):
        if case.params["kind"] not in ("train", "backward", "backward_alt"):
            continue
        out, cache = ns["batchnorm_forward"](
            case.inputs["x"],
            case.inputs["gamma"],
            case.inputs["beta"],
            {"mode": "train", "eps": eps_of(case)},
        )
        worst = max(worst, batchnorm._error(out.astype(np.float64), case.expected["out"]))
        if case.params["kind"].startswith("backward"):
            grads = ns["batchnorm_backward"](case.inputs["dout"], cache)
            for name, g in zip(("dx", "dgamma", "dbeta"), grads, strict=True):
                worst = max(worst, batchnorm._error(g.astype(np.float64), case.expected[name]))
    assert worst < batchnorm.VALUE_TOL / 10, worst


@pytest.mark.parametrize("name", VARIANTS)
def test_each_mistake_fails_its_checks_and_is_named(name, reference):
    switches, must_fail, ids = VARIANTS[name]
    results = run_everywhere(reference, make_bn(**switches))
    assert failed_checks(results) == sorted(must_fail)
    assert diagnoses(results) == ids
    for cid in must_fail:  # on every salt, in every failing check: a message names the error
        for case in results[cid]:
            if not case.passed:
                assert case.message and (
                    "error" in case.message or "shape" in case.message or "bn_param" in case.message
                )


def test_a_wrong_eps_is_blamed_only_where_eps_matters(reference):
    """With a large variance everywhere, eps 1e-5 vs 1e-3 changes nothing measurable: no blame."""
    check = next(c for c in checks_for(NOTEBOOK) if c.id == "bn_forward_train")
    case = load_fixtures(NOTEBOOK)["bn_forward_train"][0]
    x = 5.0 + 40.0 * np.random.default_rng(0).standard_normal(case.inputs["x"].shape)
    loud = Case(case.name, case.plan, case.returns, dict(case.inputs, x=x), params=case.params)
    loud.expected = {
        "out": column_forward(x, case.inputs["gamma"], case.inputs["beta"], eps_of(case))
    }
    out = column_forward(x, case.inputs["gamma"], case.inputs["beta"], 1e-5)
    returned = Returned("ndarray", "ndarray", "float64", out)
    result = check.judge(
        loud, {"out": returned, "x_after": Returned("ndarray", "ndarray", "float64", x)}
    )
    assert (
        result.passed
    )  # the difference is far below the tolerance: nothing to see, nothing to name
    skewed = out.copy()
    skewed[:, 0] *= 1.01  # a failure that is not about eps
    result = run_judge(
        check.judge,
        loud,
        {
            "out": Returned("ndarray", "ndarray", "float64", skewed),
            "x_after": Returned("ndarray", "ndarray", "float64", x),
        },
    )
    assert not result.passed, "a 1 % error in one feature must fail"
    assert "bn.wrong_eps" not in result.diagnosis


def bad(kind):
    def forward(x, gamma, beta, bn_param):
        if kind == "none":
            return None, None
        if kind == "list":
            return x.tolist(), {}
        if kind == "nan":
            return x * np.nan, {}
        if kind == "transpose":
            return x.T.copy(), {}
        raise RuntimeError("boom")

    def backward(dout, cache):
        if kind == "list":
            return [dout.tolist(), [0.0], [0.0]]
        if kind == "none":
            return None, None, None
        if kind == "nan":
            return dout * np.nan, dout[0] * np.nan, dout[0]
        if kind == "transpose":
            return dout.T, dout.T, dout.T
        raise RuntimeError("boom")

    return {
        "np": np,
        "batchnorm_forward": forward,
        "batchnorm_backward": backward,
        "batchnorm_backward_alt": backward,
    }


@pytest.mark.parametrize("kind", ["none", "list", "nan", "transpose", "raises"])
def test_malformed_answers_fail_with_a_message(kind, reference):
    results = run_everywhere(reference, bad(kind), salts=SALTS[:1])
    for cid, cases in results.items():
        for case in cases:
            if cid != "bn_alt_matches_staged" or kind != "transpose":
                assert not case.passed, (cid, case.name)
            assert case.message or case.passed


# --------------------------------------------------------------------------- errors carried forward
CARRIED = {  # catalogued forward mistake -> the make_bn switches of an independent forward
    "bn.unbiased_variance": lambda eps: {"ddof": 1},
    "bn.eps_outside_sqrt": lambda eps: {"eps_outside": True},
    "bn.wrong_axis": lambda eps: {"axis": 1},
}


def independent_forward(variant, eps):
    """make_bn's forward for a carried variant (wrong eps: the value named in its description)."""
    if variant.misconception == "bn.wrong_eps":
        wrong = float(variant.description.split("=")[1].split()[0])
        return make_bn(eps_fixed=wrong)["batchnorm_forward"]
    return make_bn(**CARRIED[variant.misconception](eps))["batchnorm_forward"]


def independent_gradients(forward, eps, x, gamma, beta, dout):
    """The forward's output and dx, dgamma, dbeta of sum(out * dout) by centred differences."""

    def f(x_, g_, b_):
        return forward(x_, g_, b_, {"mode": "train", "eps": eps})[0]

    return f(x, gamma, beta), {
        "dx": numerical_gradient_array(lambda z: f(z, gamma, beta), x.copy(), dout),
        "dgamma": numerical_gradient_array(lambda g: f(x, g, beta), gamma.copy(), dout),
        "dbeta": numerical_gradient_array(lambda b: f(x, gamma, b), beta.copy(), dout),
    }


def test_carried_variants_are_exact_gradients_of_their_forward(reference):
    """Each forward variant's output is an independent implementation of that mistake, and its
    carried dx, dgamma, dbeta are that implementation's gradients (centred differences)."""
    named = set()
    cases = [c for _, c in all_cases(reference, SALTS[:2]) if c.params["kind"].startswith("back")]
    for case in cases[:8]:
        x, gamma, beta, dout = (case.inputs[k] for k in ("x", "gamma", "beta", "dout"))
        eps = eps_of(case)
        for variant in batchnorm._carried_variants(case):
            named.add(variant.misconception)
            out, numeric = independent_gradients(
                independent_forward(variant, eps), eps, x, gamma, beta, dout
            )
            assert batchnorm._error(variant.values["out"], out) < 1e-12
            for name, fd in numeric.items():
                error = batchnorm._error(variant.carried[name], fd)
                assert error < 1e-6, (case.name, variant.description, name, error)
    assert named == {"bn.unbiased_variance", "bn.eps_outside_sqrt", "bn.wrong_axis", "bn.wrong_eps"}


def test_every_variant_is_separated_on_many_salts(reference):
    """The builders assert separation at each case; build every check on many salts (a variant
    within the tolerance of the right answer would raise here, and in a course's batch)."""
    from grader.checks.cases import batch_cases

    built = 0
    for salt in [f"salt-{i}" for i in range(40)]:
        for check in checks_for(NOTEBOOK):
            built += len(batch_cases(check, salt=salt, reference=reference))
    assert built >= 40 * 9


EPS_OUTSIDE_FORWARD = """
def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    rm = bn_param.get("running_mean", np.zeros(D))
    rv = bn_param.get("running_var", np.ones(D))
    if bn_param["mode"] == "train":
        mu, var = x.mean(axis=0), x.var(axis=0)
        bn_param["running_mean"] = momentum * rm + (1 - momentum) * mu
        bn_param["running_var"] = momentum * rv + (1 - momentum) * var
    else:
        mu, var = rm, rv
    root = np.sqrt(var)
    std = root + eps
    xhat = (x - mu) / std
    return gamma * xhat + beta, {"xhat": xhat, "std": std, "root": root, "gamma": gamma}
"""

# exact for the forward above: the variance path goes through sqrt(var), not sqrt(var) + eps
EPS_OUTSIDE_BACKWARD = """
def {name}(dout, cache):
    xhat, std, root, gamma = cache["xhat"], cache["std"], cache["root"], cache["gamma"]
    g = dout * gamma
    dx = (g - g.mean(axis=0)) / std - xhat * (g * xhat).mean(axis=0) / root
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
"""

NO_NORMALISATION = {
    "batchnorm_forward": """
def batchnorm_forward(x, gamma, beta, bn_param):
    return gamma * x + beta, (x, gamma)
""",
    **{
        name: f"""
def {name}(dout, cache):
    x, gamma = cache
    return dout * gamma, (dout * x).sum(axis=0), dout.sum(axis=0)
"""
        for name in ("batchnorm_backward", "batchnorm_backward_alt")
    },
}
EPS_OUTSIDE = {"batchnorm_forward": EPS_OUTSIDE_FORWARD} | {
    name: EPS_OUTSIDE_BACKWARD.format(name=name)
    for name in ("batchnorm_backward", "batchnorm_backward_alt")
}


def graded(tmp_path, reference, functions):
    from kit_testing import write_submission

    from grader.grading import Target, grade_notebook

    result = grade_notebook(
        Target(write_submission(tmp_path, NOTEBOOK, functions)), reference=reference
    )
    assert not result.error, result.error
    return {c.check.id: c for c in result.checks}


def test_eps_outside_with_its_exact_backward_loses_no_backward_points(tmp_path, reference):
    """Issue 10: the ε placement is charged once, in the forward checks; every backward check
    (public and hidden, both passes, their agreement) keeps its points and says where it was
    charged."""
    results = graded(tmp_path, reference, EPS_OUTSIDE)
    for cid in BACKWARD_CHECKS:
        result = results[cid]
        assert result.score == result.check.points, [c.message for c in result.cases]
        carried = [c for c in result.cases if not c.passed]
        assert carried and all(c.carried_forward for c in carried), cid
        for case in carried:
            assert case.charged_in == "bn_forward_train"
            assert "bn_forward_train" in case.message and "bn.eps_outside_sqrt" in case.message
    assert results["bn_forward_train"].score == 0
    assert "bn.eps_outside_sqrt" in results["bn_forward_train"].diagnosis


def test_without_errors_carried_forward_the_same_backward_earns_nothing(
    tmp_path, reference, monkeypatch
):
    monkeypatch.setenv("DNN_KIT_CARRY_FORWARD", "off")
    results = graded(tmp_path, reference, EPS_OUTSIDE)
    for cid in BACKWARD_CHECKS:
        assert results[cid].carry_forward is False
        assert results[cid].score == 0, cid
        assert any(c.carried_forward for c in results[cid].cases)  # both verdicts are stored


def test_no_normalisation_with_its_exact_gradient_earns_no_backward_points(tmp_path, reference):
    """out = gamma * x + beta matches no catalogued variant: its own exact gradient earns nothing."""
    results = graded(tmp_path, reference, NO_NORMALISATION)
    for cid in BACKWARD_CHECKS:
        assert results[cid].score == 0, cid
        assert not any(c.carried_forward for c in results[cid].cases), cid
