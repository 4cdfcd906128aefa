r"""Checks for notebook 03: batch normalization, forward (train and test mode) and backward.

The topic is a table (:mod:`grader.checks.table`): seven case kinds, each declared once (inputs,
call plan, returns, judge), and nine rows (the checks). Expected values come from running the
same plan on the reference in the trusted process; the tests in
``tests/checks/test_batchnorm_checks.py`` confirm them with independent formulas and finite
differences. The student's cache stays opaque: a backward case calls the student's own
``batchnorm_forward`` and then their backward on the cache it returned.

**Errors carried forward.** A backward case also returns the student's forward ``out``. When it
fails the reference but matches a catalogued forward mistake (N - 1 variance, ε outside the root,
another ε, statistics per example), and the gradients are the exact gradients *of that mistaken
forward* at the case's inputs (analytic,
:func:`~grader.checks.normalisation.variant_backward`), the case keeps its points:
the mistake was charged in ``bn_forward_train``.

Inputs are made to tell the catalogued mistakes apart: ``gamma`` random with mixed signs (never
1), ``beta`` random (never 0), a random upstream gradient, ``N >= 4``, features shifted and
scaled, and in every case a few *quiet* features whose batch variance is comparable to
:math:`\epsilon` (about 1e-3), so that a wrong or misplaced :math:`\epsilon` changes the output
by far more than the tolerance; every builder asserts that each named variant is separated from
the right answer at each case.

Comparisons (``_error``): for an (N, D) array, the largest difference in a column relative to the
size of that column (max |a| + max |b| over the column); for a (D,) array, relative to the size of
the whole array. Correct float64 answers give ~1e-15, float32 ones below 1e-6; the tolerance is
1e-5, and every catalogued mistake is off by more than 1e-4 (most by more than 1e-2).
"""

from __future__ import annotations

import numpy as np

from grader.checks.base import (
    Case,
    CaseResult,
    Misconception,
    Mismatch,
    as_array,
    call,
    given,
    let,
    var,
)
from grader.checks.normalisation import variant_backward, variant_forward
from grader.checks.table import Carry, Kind, Row, Spec, Topic, Variant, compare, slice_error
from grader.toolkit.gradcheck import numerical_gradient_array

VALUE_TOL = 1e-5  # see the module docstring: float32 passes, every catalogued mistake fails
DIAG_TOL = 1e-5  # a buggy variant "explains" an answer within this (float32 answers included)
DISTINCT = 5e-5  # a variant is only blamed if it differs from the right answer by more than this
DEFAULT_EPS = 1e-3  # the slides' value, the contract's default
DEFAULT_MOMENTUM = 0.9  # running = momentum * running + (1 - momentum) * batch
OTHER_EPS = (0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)

CATALOGUE = [
    Misconception(
        "bn.unbiased_variance",
        "batch variance divided by N - 1",
        "Batch norm normalises with the biased batch variance, the mean of (x - mu)^2 over "
        "the N examples (divide by N, ddof=0, NumPy's default), not by N - 1.",
    ),
    Misconception(
        "bn.eps_outside_sqrt",
        "epsilon added after the square root",
        "Epsilon goes inside the square root: divide by sqrt(var + eps), not by "
        "sqrt(var) + eps. The two differ most for features whose variance is small.",
    ),
    Misconception(
        "bn.wrong_eps",
        "epsilon other than bn_param's eps (default 1e-3)",
        'Read epsilon from bn_param["eps"] and use 1e-3 (the slides\' value) only when the '
        "key is missing; 1e-5 is PyTorch's default, not this course's.",
    ),
    Misconception(
        "bn.momentum_swapped",
        "momentum convention swapped",
        "Here running = momentum * running + (1 - momentum) * batch, with momentum 0.9 by "
        "default: the old average keeps most of the weight. PyTorch's momentum=0.1 is the "
        "weight of the new batch, the opposite convention.",
    ),
    Misconception(
        "bn.running_not_written",
        "running statistics not stored back in bn_param",
        "Updating a local variable does not change the dictionary: after a training call, "
        'bn_param["running_mean"] and bn_param["running_var"] must hold the new averages '
        "(also when they were missing and you started from the defaults).",
    ),
    Misconception(
        "bn.running_updated_in_test",
        "running statistics changed in test mode",
        "Test mode only reads the running statistics; update them in training mode only, "
        "otherwise every evaluation drifts the averages towards the test data.",
    ),
    Misconception(
        "bn.test_uses_batch_stats",
        "test mode normalises with the batch's own statistics",
        "In test mode normalise with bn_param's running mean and variance, so that an "
        "example's output does not depend on the other examples in the batch.",
    ),
    Misconception(
        "bn.wrong_axis",
        "statistics taken over the wrong axis (per example, like layer norm)",
        "Rows are examples and columns are features: batch norm takes each feature's mean "
        "and variance over the batch, axis=0, giving arrays of shape (D,).",
    ),
    Misconception(
        "bn.backward_constant_stats",
        "backward treats the batch mean and variance as constants",
        "In training mode mu and var are functions of x: the gradient flows through them "
        "too, not only through the direct path dout * gamma / sqrt(var + eps).",
    ),
    Misconception(
        "bn.backward_missing_mean_path",
        "backward misses the gradient through the batch mean",
        "x reaches the output through x - mu as well: add the gradient that flows through "
        "mu = mean(x) (it removes the batch mean of the direct gradient).",
    ),
    Misconception(
        "bn.backward_missing_var_path",
        "backward misses the gradient through the batch variance",
        "x also reaches the output through var = mean((x - mu)^2) and then 1/sqrt(var + eps):"
        " add that path (it removes the part of the gradient along x-hat).",
    ),
    Misconception(
        "bn.backward_no_gamma",
        "dx forgets the factor gamma",
        "out = gamma * x_hat + beta, so the gradient reaching x_hat is dout * gamma; every "
        "term of dx carries the factor gamma.",
    ),
    Misconception(
        "bn.param_grad_mean",
        "dgamma or dbeta averaged over the batch instead of summed",
        "gamma and beta are shared by all N examples: their gradients add up the "
        "contributions of every example (a sum over axis 0, not a mean).",
    ),
    Misconception(
        "bn.param_grad_wrong_axis",
        "dgamma or dbeta reduced over the wrong axis",
        "gamma and beta have one entry per feature, so their gradients have shape (D,): sum "
        "over the examples, axis=0.",
    ),
    Misconception(
        "bn.unbiased_running_var",
        "running variance stored unbiased (N - 1)",
        "In this course the running variance averages the same biased batch variance used "
        "for normalising (divide by N); storing the unbiased one is PyTorch's convention.",
    ),
]


# --------------------------------------------------------------------------- formulas for judging
def _normalised(x, mu, v, gamma, beta, eps):
    return gamma * (x - mu) / np.sqrt(v + eps) + beta


def _running(xs, rm, rv, momentum, *, swapped=False, ddof=0):
    """Running statistics after training calls on the batches ``xs`` (a variant's recursion)."""
    keep = 1.0 - momentum if swapped else momentum
    for x in xs:
        rm = keep * rm + (1.0 - keep) * x.mean(axis=0)
        rv = keep * rv + (1.0 - keep) * x.var(axis=0, ddof=ddof)
    return rm, rv


#: Largest difference relative to the size of its column ((N, D)) or of the array ((D,)). Per
#: column, because features differ in scale (dx of a quiet feature is ~30 times that of an
#: ordinary one); per array for (D,) vectors, because an entry of dgamma or dbeta is a sum of N
#: terms that can cancel, and float32 round-off is relative to the terms, not to their sum.
_error = slice_error(axis=0)


def _eps(case: Case) -> float:
    eps = case.params.get("eps")
    return DEFAULT_EPS if eps is None else float(eps)


def _momentum(case: Case) -> float:
    m = case.params.get("momentum")
    return DEFAULT_MOMENTUM if m is None else float(m)


def _train_variants(x, gamma, beta, eps, dout=None) -> list[Variant]:
    """Training-mode forward mistakes at these inputs; with ``dout``, each carries the exact
    gradients of the mistaken forward (for errors carried forward in the backward checks)."""
    mistakes = [
        ("bn.unbiased_variance", "the batch variance divided by N - 1", eps, {"ddof": 1}),
        ("bn.eps_outside_sqrt", "dividing by sqrt(var) + eps", eps, {"outside": True}),
        ("bn.wrong_axis", "statistics over axis 1 (per example)", eps, {"axis": 1}),
        *(("bn.wrong_eps", f"epsilon = {e:g} instead of {eps:g}", e, {}) for e in OTHER_EPS),
    ]
    variants = []
    for mid, description, e, how in mistakes:
        if mid == "bn.wrong_eps" and e == eps:
            continue
        out = variant_forward(x, gamma, beta, e, **how)
        carried = {} if dout is None else variant_backward(x, gamma, dout, e, **how)
        variants.append(Variant(mid, description, {"out": out}, carried))
    return variants


def _test_variants(x, gamma, beta, rm, rv, eps) -> list[Variant]:
    """Test-mode mistakes with the running statistics ``rm``, ``rv``."""
    batch = variant_forward(x, gamma, beta, eps)
    outside = gamma * (x - rm) / (np.sqrt(rv) + eps) + beta
    return [
        Variant(
            "bn.test_uses_batch_stats",
            "normalising with the batch's own mean and variance",
            {"out": batch},
        ),
        Variant("bn.eps_outside_sqrt", "dividing by sqrt(running_var) + eps", {"out": outside}),
        *(
            Variant(
                "bn.wrong_eps",
                f"epsilon = {e:g} instead of {eps:g}",
                {"out": _normalised(x, rm, rv, gamma, beta, e)},
            )
            for e in OTHER_EPS
            if e != eps
        ),
    ]


def _properties(out, x, gamma, beta, eps) -> str:
    """What the per-feature mean and std of a training output should be, and what they are."""
    sigma2 = x.var(axis=0)
    want_std = np.abs(gamma) * np.sqrt(sigma2 / (sigma2 + eps))
    mean_off = float(np.max(np.abs(out.mean(axis=0) - beta) / (np.abs(beta) + np.abs(gamma))))
    ratio = out.std(axis=0) / want_std
    parts = [
        "each feature's output mean should be beta"
        + (" (yours are)" if mean_off < 1e-4 else f" (yours are off by up to {mean_off:.1%})"),
        "and its std |gamma| * sigma / sqrt(sigma^2 + eps), a little below |gamma| where sigma^2 "
        "is comparable to eps"
        + (
            " (yours are)"
            if np.all(np.abs(ratio - 1) < 1e-4)
            else f" (yours are {ratio.min():.4g} to {ratio.max():.4g} times that)"
        ),
    ]
    return "In training mode " + ", ".join(parts)


# --------------------------------------------------------------------------- inputs
def _features(rng: np.random.Generator, n: int, d: int):
    """x shifted and scaled per feature, a few quiet features (variance ~ eps), gamma, beta."""
    loc = rng.uniform(-4.0, 6.0, size=d)
    scale = rng.uniform(0.5, 3.0, size=d)
    quiet = rng.choice(d, size=max(1, d // 5), replace=False)
    loc[quiet] = rng.uniform(-0.25, 0.25, size=quiet.size)  # near 0: float32 keeps their digits
    scale[quiet] = rng.uniform(0.02, 0.045, size=quiet.size)
    x = loc + scale * rng.standard_normal((n, d))
    gamma = rng.choice([-1.0, 1.0], size=d) * rng.uniform(0.5, 2.0, size=d)
    beta = rng.uniform(-2.0, 2.0, size=d)
    return x, gamma, beta, loc, scale


def _start_stats(rng, d):
    return rng.uniform(-1.0, 1.0, size=d), rng.uniform(0.5, 2.0, size=d)


def make_train(rng, n, d, **_):
    x, gamma, beta, _, _ = _features(rng, n, d)
    rm, rv = _start_stats(rng, d)
    return {"x": x, "gamma": gamma, "beta": beta, "rm": rm, "rv": rv}


def make_sequence(rng, n, d, calls, start=True, **_):
    _, gamma, beta, loc, scale = _features(rng, n, d)
    inputs = {"gamma": gamma, "beta": beta}
    inputs |= {f"x{i}": loc + scale * rng.standard_normal((n, d)) for i in range(calls)}
    if start:
        inputs["rm"], inputs["rv"] = _start_stats(rng, d)
    return inputs


def make_test(rng, n, d, **_):
    x, gamma, beta, loc, scale = _features(rng, n, d)
    # running statistics unlike the batch's own, so batch statistics give a different output
    rm = loc + scale * rng.uniform(-1.5, 1.5, size=d)
    rv = scale**2 * rng.uniform(0.3, 3.0, size=d)
    return {"x": x, "gamma": gamma, "beta": beta, "rm": rm, "rv": rv}


def make_warmup(rng, n, d, calls, **_):
    _, gamma, beta, loc, scale = _features(rng, n, d)
    inputs = {"gamma": gamma, "beta": beta}
    inputs |= {f"x{i}": loc + scale * rng.standard_normal((n, d)) for i in range(calls)}
    # starting statistics on the batches' scale, so that quiet features keep a running variance
    # comparable to eps (a wrong eps shows in the test-mode output)
    inputs["rm"] = loc + scale * rng.uniform(-1.5, 1.5, size=d)
    inputs["rv"] = scale**2 * rng.uniform(0.3, 3.0, size=d)
    inputs["x_test"] = loc + scale * (0.7 + 0.5 * rng.standard_normal((n, d)))  # its own batch
    return inputs


def make_defaults_test(rng, n, d, **_):
    x, gamma, beta, _, _ = _features(rng, n, d)
    return {"x": x, "gamma": gamma, "beta": beta}


def make_backward(rng, n, d, **_):
    x, gamma, beta, _, _ = _features(rng, n, d)
    return {"x": x, "gamma": gamma, "beta": beta, "dout": rng.standard_normal((n, d))}


# --------------------------------------------------------------------------- call plans
GRADS = ("dx", "dgamma", "dbeta")
RUNNING = {k: {"item": ["bn", k]} for k in ("running_mean", "running_var")}


def _bn_param(mode, eps, momentum, stats=True):
    """A plan expression for bn_param; eps/momentum None means the key is absent."""
    entries: dict = {"mode": mode}
    if eps is not None:
        entries["eps"] = eps
    if momentum is not None:
        entries["momentum"] = momentum
    if stats:
        entries["running_mean"] = given("rm")
        entries["running_var"] = given("rv")
    return {"dict": entries}


def _forward(x, bn="bn", tag=""):
    return call(
        "batchnorm_forward",
        x,
        given("gamma"),
        given("beta"),
        var(bn),
        out=[f"out{tag}", f"cache{tag}"],
    )


def plan_train(s):
    bn = _bn_param("train", s["eps"], s["momentum"])
    return [let("x", given("x")), let("bn", bn), _forward(var("x"))]


def plan_sequence(s):
    plan = [let("bn", _bn_param("train", s["eps"], s["momentum"], s.get("start", True)))]
    return plan + [_forward(given(f"x{i}"), tag=str(i)) for i in range(s["calls"])]


def plan_test(s):
    return [let("bn", _bn_param("test", s["eps"], s["momentum"])), _forward(given("x"))]


def plan_warmup(s):
    test = {"mode": "test", "eps": s["eps"], "momentum": s["momentum"]} | RUNNING
    return plan_sequence(s) + [
        let("bn_test", {"dict": test}),
        _forward(given("x_test"), "bn_test", "_test"),
    ]


def plan_defaults_test(s):
    return [let("bn", {"dict": {"mode": "test"}}), _forward(given("x"))]


def plan_backward(function):
    def plan(s):
        return [
            let("bn", _bn_param("train", s["eps"], None, stats=False)),
            _forward(given("x")),
            call(function, given("dout"), var("cache"), out=list(GRADS)),
        ]

    return plan


def plan_consistency(s):
    alt = call(
        "batchnorm_backward_alt", given("dout"), var("cache"), out=[f"{g}_alt" for g in GRADS]
    )
    return plan_backward("batchnorm_backward")(s) + [alt]


def _describe(s) -> str:
    eps, momentum = s.get("eps"), s.get("momentum")
    e = "eps absent (default)" if eps is None else f"eps={eps:g}"
    m = "" if momentum is None else f", momentum={momentum:g}"
    return f"x of shape ({s['n']}, {s['d']}), {e}{m}"


def _title_sequence(s) -> str:
    k = s["calls"]
    start = (
        "given running statistics" if s.get("start", True) else "no running statistics (defaults)"
    )
    return f"{k} training call{'s' if k > 1 else ''} from {start}: {_describe(s)}"


def _title_backward(function, s) -> str:
    what = "staged backward" if function == "batchnorm_backward" else "closed-form backward"
    source = "finite differences" if s.get("fd") else "the reference"
    return f"{what} vs {source}: {_describe(s)}, random gamma, beta and dout"


# --------------------------------------------------------------------------- judges
def _judge(names, variants, labels=None, carry=None) -> compare:
    """The comparison every kind shares: the metric, the tolerance and when a variant is blamed."""
    return compare(
        names=names,
        tol=VALUE_TOL,
        error=_error,
        distinct=DISTINCT,
        variants=variants,
        labels=labels or {},
        carry=carry,
    )


_TRAIN = _judge(
    ("out",),
    lambda c: _train_variants(*(c.inputs[k] for k in ("x", "gamma", "beta")), _eps(c)),
)


def judge_train(case: Case, got) -> CaseResult:
    result = _TRAIN(case, got)
    x = case.inputs["x"]
    if not result.passed:
        out = got.get("out")
        if out is not None and out.array is not None and out.array.shape == x.shape:
            out = np.asarray(out.array, dtype=np.float64)
            properties = _properties(out, x, case.inputs["gamma"], case.inputs["beta"], _eps(case))
            result.message += f". {properties}"
        return result
    x_after = as_array(got.get("x_after"), "x after the call", x.shape)
    if not np.array_equal(x_after, x):
        raise Mismatch("batchnorm_forward changed its input x in place; compute a new array")
    result.message = "out matches, per feature mean beta and std |γ|σ/√(σ²+ε)"
    return result


judge_train.assert_separated = _TRAIN.assert_separated


def _running_variants(case: Case) -> list[Variant]:
    xs = [case.inputs[f"x{i}"] for i in range(case.params["calls"])]
    m = _momentum(case)
    rm0 = case.inputs.get("rm", np.zeros(xs[0].shape[1]))
    rv0 = case.inputs.get("rv", np.ones(xs[0].shape[1]))
    mistakes = [
        (
            "bn.momentum_swapped",
            f"running statistics updated with momentum {1 - m:g} in place of {m:g}",
            _running(xs, rm0, rv0, m, swapped=True),
        ),
        (
            "bn.unbiased_running_var",
            "a running variance averaged from the unbiased (N - 1) batch variance",
            _running(xs, rm0, rv0, m, ddof=1),
        ),
        ("bn.running_not_written", "running statistics left unchanged by the calls", (rm0, rv0)),
    ]
    if m != DEFAULT_MOMENTUM and case.params.get("momentum") is not None:
        text = f"running statistics updated with momentum 0.9, not bn_param's {m:g}"
        mistakes.append(("", text, _running(xs, rm0, rv0, DEFAULT_MOMENTUM)))
    unchanged = "bn.running_not_written", "{} left unchanged by the training calls"
    return [
        *(Variant(i, t, dict(zip(RUNNING, v, strict=True))) for i, t, v in mistakes),
        Variant(unchanged[0], unchanged[1].format("the running mean"), {"running_mean": rm0}),
        Variant(unchanged[0], unchanged[1].format("the running variance"), {"running_var": rv0}),
    ]


_SEQUENCE = _judge(
    tuple(RUNNING),
    _running_variants,
    {k: f'bn_param["{k}"] after the training calls' for k in RUNNING},
)


def judge_sequence(case: Case, got) -> CaseResult:
    n, d = case.inputs["x0"].shape
    for key in RUNNING:
        value = got.get(key)
        if value is None or value.kind == "none":
            raise Mismatch(
                f'bn_param has no "{key}" after the training calls: store the updated running '
                "statistics back into bn_param",
                ("bn.running_not_written",),
            )
        shape = value.array.shape if value.array is not None else None
        if shape is not None and shape != (d,) and shape in ((n,), (n, 1), (n, d)):
            raise Mismatch(
                f'bn_param["{key}"] has shape {shape}; expected ({d},), one entry per feature',
                ("bn.wrong_axis",),
            )
    result = _SEQUENCE(case, got)
    if not result.passed:
        result.message += (
            " (expected running = momentum * running + (1 - momentum) * batch statistic, "
            f"momentum {_momentum(case):g})"
        )
    return result


judge_sequence.assert_separated = _SEQUENCE.assert_separated


def _test_mode_variants(case: Case) -> list[Variant]:
    x, gamma, beta = (case.inputs[k] for k in ("x", "gamma", "beta"))
    d = x.shape[1]
    rm, rv = case.inputs.get("rm", np.zeros(d)), case.inputs.get("rv", np.ones(d))
    return _test_variants(x, gamma, beta, rm, rv, _eps(case))


_TEST = _judge(("out",), _test_mode_variants, {"out": "out (with the running statistics)"})


def judge_test(case: Case, got) -> CaseResult:
    result, problems = _TEST(case, got), []
    for key, sent in (("running_mean", case.inputs["rm"]), ("running_var", case.inputs["rv"])):
        value = got.get(key)
        if value is None or value.kind == "none":
            problems.append(f'test mode removed bn_param["{key}"]; leave bn_param unchanged')
            continue
        after = as_array(value, f'bn_param["{key}"] after the test-mode call', sent.shape)
        if not np.allclose(after, sent, rtol=1e-12, atol=0):
            problems.append(
                f'test mode changed bn_param["{key}"] (largest change '
                f"{np.max(np.abs(after - sent)):.3g}); test mode must only read it"
            )
    if problems:
        message = "; ".join([result.message] * (not result.passed) + problems)
        raise Mismatch(message, (*result.diagnosis, "bn.running_updated_in_test"))
    return result


judge_test.assert_separated = _TEST.assert_separated


def _warmup_variants(case: Case) -> list[Variant]:
    x, gamma, beta = (case.inputs[k] for k in ("x_test", "gamma", "beta"))
    eps = _eps(case)
    rm, rv = case.expected["running_mean"], case.expected["running_var"]
    variants = _test_variants(x, gamma, beta, rm, rv, eps)
    for v in (v for v in _running_variants(case) if len(v.values) == 2):
        vm, vv = v.values["running_mean"], v.values["running_var"]
        out = _normalised(x, vm, vv, gamma, beta, eps)
        variants.append(
            Variant(v.misconception, f"the test-mode formula with {v.description}", {"out": out})
        )
    return variants


_WARMUP = _judge(("out",), _warmup_variants, {"out": "test-mode out after the training calls"})
_DEFAULTS = _judge(
    ("out",),
    _test_mode_variants,
    {"out": "out (default running statistics: mean 0, variance 1; default eps 1e-3)"},
)


def _gradient_variants(case: Case) -> list[Variant]:
    x, gamma, dout = case.inputs["x"], case.inputs["gamma"], case.inputs["dout"]
    n, d = x.shape
    istd = 1.0 / np.sqrt(x.var(axis=0) + _eps(case))
    xhat = (x - x.mean(axis=0)) * istd
    direct = dout * gamma * istd
    mean_path = direct.mean(axis=0, keepdims=True)
    var_path = xhat * (direct * xhat).mean(axis=0, keepdims=True)
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    want = case.expected
    variants = [
        Variant(
            "bn.backward_constant_stats", "the direct path only, dout * gamma / std", {"dx": direct}
        ),
        Variant(
            "bn.backward_missing_mean_path",
            "dx without the path through the batch mean",
            {"dx": direct - var_path},
        ),
        Variant(
            "bn.backward_missing_var_path",
            "dx without the path through the batch variance",
            {"dx": direct - mean_path},
        ),
        Variant("bn.backward_no_gamma", "dx without the factor gamma", {"dx": want["dx"] / gamma}),
        Variant(
            "bn.param_grad_mean",
            "the mean over the batch instead of the sum",
            {"dgamma": dgamma / n, "dbeta": dbeta / n},
        ),
        Variant(
            "", "the expected dbeta: check the order (dx, dgamma, dbeta)", {"dgamma": want["dbeta"]}
        ),
        Variant(
            "",
            "the expected dgamma: check the order (dx, dgamma, dbeta)",
            {"dbeta": want["dgamma"]},
        ),
    ]
    if n == d:  # otherwise a sum over axis 1 has the wrong shape, caught before comparing
        variants.append(
            Variant(
                "bn.param_grad_wrong_axis",
                "a sum over axis 1",
                {"dgamma": (dout * xhat).sum(axis=1), "dbeta": dout.sum(axis=1)},
            )
        )
    return variants


def _carried_variants(case: Case) -> list[Variant]:
    """The training forward's mistakes at this case, each with its exact gradients."""
    x, gamma, beta, dout = (case.inputs[k] for k in ("x", "gamma", "beta", "dout"))
    return _train_variants(x, gamma, beta, _eps(case), dout)


_CARRY = Carry("bn_forward_train", _carried_variants)
_BACKWARD = _judge(GRADS, _gradient_variants, carry=_CARRY)
_CARRIED_ONLY = compare(names=GRADS, tol=VALUE_TOL, error=_error, carry=_CARRY)


def _forward_differs(case: Case, got) -> bool:
    out = got.get("out")
    if out is None or out.array is None or out.array.shape != case.inputs["x"].shape:
        return False
    return _error(np.asarray(out.array, dtype=np.float64), case.expected["out"]) > VALUE_TOL


def judge_backward(case: Case, got) -> CaseResult:
    n, d = case.inputs["x"].shape
    for name in ("dgamma", "dbeta"):
        value = got.get(name)
        shape = value.array.shape if value is not None and value.array is not None else None
        if shape is not None and shape != (d,) and shape in ((n,), (), (1,), (n, 1)):
            raise Mismatch(
                f"{name} has shape {shape}; expected ({d},), one entry per feature",
                ("bn.param_grad_wrong_axis",),
            )
    result = _BACKWARD(case, got)
    if result.passed:
        result.message = "dx, dgamma and dbeta match"
    elif not result.carried_forward and _forward_differs(case, got):
        result.message += (
            "; note: your forward output differs too (see the forward checks); the gradients are "
            "compared with those of the correct forward pass and of its catalogued mistakes"
        )
    return result


judge_backward.assert_separated = _BACKWARD.assert_separated


def judge_consistency(case: Case, got) -> CaseResult:
    """The two backward passes agree with each other **and** with the reference gradient (or,
    errors carried forward, both with the exact gradient of the student's catalogued forward).

    Agreement alone proves nothing: two stubs returning the same zeros agree. What cannot be told
    from outside without timing is ``batchnorm_backward_alt = batchnorm_backward`` (an alias of a
    correct staged pass): it returns the right numbers, so it earns this point (and
    ``bn_backward_alt``'s) exactly as a correct closed form would. Only the notebook's timing
    experiment shows the difference; no check here pretends to.
    """
    notes: list[str] = []
    disagree, wrong = [], []
    for name in GRADS:
        expected = case.expected[name]
        staged = as_array(got.get(name), f"{name} of batchnorm_backward", None, notes)
        alt = as_array(got.get(f"{name}_alt"), f"{name} of batchnorm_backward_alt", None, notes)
        if staged.shape != alt.shape:
            disagree.append(
                f"{name} has shape {staged.shape} (staged) but {alt.shape} (closed form)"
            )
            continue
        error = _error(alt, staged)
        if error > VALUE_TOL:
            disagree.append(f"{name}: error {error:.2e} > tolerance {VALUE_TOL:.0e}")
        for function, answer in (("closed form", alt), ("staged", staged)):
            if answer.shape != expected.shape:
                wrong.append(f"{name} of the {function} has shape {answer.shape}")
            elif (error := _error(answer, expected)) > VALUE_TOL:
                wrong.append(f"{name} of the {function}: error {error:.2e} > {VALUE_TOL:.0e}")
    if disagree:
        raise Mismatch(
            "your closed form and your staged backward disagree on the same cache: "
            + "; ".join(disagree)
        )
    if wrong:
        carried = _CARRIED_ONLY(case, got)
        alt = _CARRIED_ONLY(case, got | {n: got.get(f"{n}_alt") for n in GRADS})
        if carried.carried_forward and alt.carried_forward:
            carried.message = carried.message.replace(
                "this backward is", "both backward passes are"
            )
            return carried
        raise Mismatch(
            "your closed form and your staged backward agree with each other but not with the "
            "correct gradient (agreeing on a wrong answer earns nothing): " + "; ".join(wrong)
        )
    message = "closed form and staged backward agree, and both are right"
    return CaseResult(case.name, True, message, notes=tuple(notes))


def _finite_differences(case: Case, reference) -> dict:
    """The hidden check's finite-difference case: expected gradients by centred differences of
    the reference forward (the closed form is compared with them in the tests)."""
    if not case.params.get("fd"):
        return {}
    x, gamma, beta, dout = (case.inputs[k] for k in ("x", "gamma", "beta", "dout"))
    bn = {"mode": "train"} | ({} if case.params.get("eps") is None else {"eps": case.params["eps"]})

    def f(x_, g_, b_):
        return reference.batchnorm_forward(x_, g_, b_, dict(bn))[0]

    return {
        "dx": numerical_gradient_array(lambda z: f(z, gamma, beta), x.copy(), dout),
        "dgamma": numerical_gradient_array(lambda g: f(x, g, beta), gamma.copy(), dout),
        "dbeta": numerical_gradient_array(lambda b: f(x, gamma, b), beta.copy(), dout),
    }


# --------------------------------------------------------------------------- the table
FORWARD = ("batchnorm_forward",)
KINDS = [
    Kind(
        "train",
        FORWARD,
        make_train,
        plan_train,
        {"out": var("out"), "x_after": var("x")},
        judge_train,
        title=lambda s: f"train mode: {_describe(s)}",
    ),
    Kind(
        "sequence",
        FORWARD,
        make_sequence,
        plan_sequence,
        lambda s: {"out": var(f"out{s['calls'] - 1}")} | RUNNING,
        judge_sequence,
        title=_title_sequence,
    ),
    Kind(
        "test",
        FORWARD,
        make_test,
        plan_test,
        {"out": var("out")} | RUNNING,
        judge_test,
        title=lambda s: f"test mode with given running statistics: {_describe(s)}",
    ),
    Kind(
        "warmup_test",
        FORWARD,
        make_warmup,
        plan_warmup,
        {"out": var("out_test")} | RUNNING,
        _WARMUP,
        title=lambda s: f"test mode after {s['calls']} training calls: {_describe(s)}",
    ),
    Kind(
        "defaults_test",
        FORWARD,
        make_defaults_test,
        plan_defaults_test,
        {"out": var("out")},
        _DEFAULTS,
        title=lambda s: f'test mode with bn_param = {{"mode": "test"}} only: {_describe(s)}',
    ),
    *(
        Kind(
            name,
            ("batchnorm_forward", function),
            make_backward,
            plan_backward(function),
            {"out": var("out")} | {g: var(g) for g in GRADS},
            judge_backward,
            title=lambda s, f=function: _title_backward(f, s),
            derive=_finite_differences,
        )
        for name, function in (
            ("backward", "batchnorm_backward"),
            ("backward_alt", "batchnorm_backward_alt"),
        )
    ),
    Kind(
        "consistency",
        ("batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt"),
        make_backward,
        plan_consistency,
        {"out": var("out")}
        | {g: var(g) for g in GRADS}
        | {f"{g}_alt": var(f"{g}_alt") for g in GRADS},
        judge_consistency,
        title=lambda s: f"closed form vs your staged backward: {_describe(s)}, random dout",
    ),
]


def _train(n, d, eps, momentum=DEFAULT_MOMENTUM):
    return Spec("train", n=n, d=d, eps=eps, momentum=momentum)


def _sequence(n, d, calls, eps, momentum, start=True):
    return Spec("sequence", n=n, d=d, calls=calls, eps=eps, momentum=momentum, start=start)


def _test_mode(n, d, eps, momentum=DEFAULT_MOMENTUM):
    return Spec("test", n=n, d=d, eps=eps, momentum=momentum)


def _backward(n, d, eps, kind="backward", fd=False):
    return Spec(kind, n=n, d=d, eps=eps, fd=fd)


def _hidden_forward(rng) -> list[Spec]:
    def shape():
        return int(rng.integers(4, 60)), int(rng.integers(3, 40))

    eps1, eps2 = (float(e) for e in rng.choice([1e-5, 1e-4, 1e-3, 3e-3], size=2, replace=False))
    momentum = float(rng.choice([0.7, 0.8, 0.85, 0.95]))
    return [
        _train(*shape(), eps1),
        _train(*shape(), None),
        _sequence(*shape(), int(rng.integers(2, 6)), eps2, momentum),
        _test_mode(*shape(), eps2),
    ]


def _hidden_backward(rng) -> list[Spec]:
    eps = float(rng.choice([1e-5, 1e-4, 1e-3]))
    return [
        _backward(int(rng.integers(4, 40)), int(rng.integers(3, 30)), eps),
        _backward(int(rng.integers(4, 9)), int(rng.integers(3, 7)), 1e-3, fd=True),
        _backward(int(rng.integers(4, 40)), int(rng.integers(3, 30)), eps, "backward_alt"),
    ]


ROWS = [
    Row(
        "bn_forward_train",
        "train mode matches the reference",
        3,
        [
            _train(8, 5, 1e-3),
            _train(16, 12, 1e-5),
            _train(4, 7, 1e-3),
            _train(30, 30, 1e-4),
            _train(64, 20, 1e-3),
        ],
    ),
    Row(
        "bn_forward_defaults",
        "defaults: eps 1e-3, momentum 0.9, running mean 0 and variance 1",
        1,
        [
            _sequence(10, 6, 1, None, None, start=False),
            _sequence(12, 8, 3, None, None),
            Spec("defaults_test", n=6, d=9, eps=None, momentum=None),
        ],
    ),
    Row(
        "bn_running_stats",
        "running statistics after a sequence of training calls",
        2,
        [
            _sequence(6, 5, 4, 1e-3, 0.8),
            _sequence(10, 12, 5, 1e-5, 0.9),
            _sequence(8, 7, 3, 1e-3, 0.95),
        ],
    ),
    Row(
        "bn_test_mode",
        "test mode uses the running statistics and leaves bn_param unchanged",
        2,
        [
            _test_mode(8, 6, 1e-3),
            _test_mode(5, 11, 1e-5),
            Spec("warmup_test", n=16, d=8, calls=5, eps=1e-3, momentum=0.9),
        ],
    ),
    Row(
        "bn_backward",
        "staged backward: dx, dgamma, dbeta",
        3,
        [_backward(4, 3, 1e-3), _backward(10, 6, 1e-5), _backward(50, 20, 1e-3)],
    ),
    Row(
        "bn_backward_alt",
        "closed-form backward: dx, dgamma, dbeta",
        2,
        [
            _backward(n, d, eps, "backward_alt")
            for n, d, eps in [(5, 4, 1e-3), (32, 10, 1e-4), (64, 24, 1e-3)]
        ],
    ),
    Row(
        "bn_alt_matches_staged",
        "closed form equals your staged backward and the correct gradient",
        1,
        [Spec("consistency", n=6, d=4, eps=1e-3), Spec("consistency", n=40, d=16, eps=1e-5)],
    ),
    Row(
        "bn_hidden_forward",
        "train and test mode, running statistics, on hidden shapes",
        2,
        _hidden_forward,
        hidden=True,
    ),
    Row(
        "bn_hidden_backward",
        "both backward passes on hidden shapes, one against finite differences",
        2,
        _hidden_backward,
        hidden=True,
    ),
]

TOPIC = Topic(
    notebook="03_batchnorm",
    functions=("batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt"),
    misconceptions=CATALOGUE,
    kinds=KINDS,
    rows=ROWS,
)
NOTEBOOK = TOPIC.notebook
FUNCTIONS = TOPIC.functions
MISCONCEPTIONS = TOPIC.catalogue
CHECKS = TOPIC.checks()
