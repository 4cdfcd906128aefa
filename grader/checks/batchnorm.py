r"""Checks for notebook 03: batch normalization, forward (train and test mode) and backward.

Expected values come from the reference solution (``needs_reference=True``), computed in the
trusted process; the tests in ``tests/checks/test_batchnorm_checks.py`` confirm them with
independent formulas and finite differences. Every student function is called through a plan, so
the student's cache stays opaque: a backward case calls the student's own ``batchnorm_forward``
and then their ``batchnorm_backward`` on the cache it returned, and compares the gradients with
the reference's for the same inputs.

Inputs are made to tell the catalogued mistakes apart: ``gamma`` random with mixed signs (never
1), ``beta`` random (never 0), a random upstream gradient, ``N >= 4``, features shifted and
scaled, and in every case a few *quiet* features whose batch variance is comparable to
:math:`\epsilon` (about 1e-3), so that a wrong or misplaced :math:`\epsilon` changes the output
by far more than the tolerance. Where :math:`\epsilon` cannot matter, it is not blamed.

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
    Check,
    Misconception,
    Mismatch,
    Returned,
    as_array,
    call,
    given,
    let,
    var,
)
from grader.toolkit.gradcheck import numerical_gradient_array

NOTEBOOK = "03_batchnorm"
FUNCTIONS = ("batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt")

VALUE_TOL = 1e-5  # see the module docstring: float32 passes, every catalogued mistake fails
DIAG_TOL = 1e-5  # a buggy variant "explains" an answer within this (float32 answers included)
DISTINCT = 5e-5  # a variant is only blamed if it differs from the right answer by more than this
DEFAULT_EPS = 1e-3  # the slides' value, the contract's default
DEFAULT_MOMENTUM = 0.9  # running = momentum * running + (1 - momentum) * batch
OTHER_EPS = (0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)

MISCONCEPTIONS = {
    m.id: m
    for m in [
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
}


# --------------------------------------------------------------------------- formulas for judging
def _stats(x, *, ddof=0, axis=0):
    return x.mean(axis=axis, keepdims=True), x.var(axis=axis, ddof=ddof, keepdims=True)


def _normalised(x, mu, v, gamma, beta, eps, *, eps_outside=False):
    std = np.sqrt(v) + eps if eps_outside else np.sqrt(v + eps)
    return gamma * (x - mu) / std + beta


def _train_out(x, gamma, beta, eps, *, ddof=0, axis=0, eps_outside=False):
    mu, v = _stats(x, ddof=ddof, axis=axis)
    return _normalised(x, mu, v, gamma, beta, eps, eps_outside=eps_outside)


def _running(xs, rm, rv, momentum, *, swapped=False, ddof=0):
    """Running statistics after training calls on the batches ``xs`` (a variant's recursion)."""
    keep = 1.0 - momentum if swapped else momentum
    for x in xs:
        rm = keep * rm + (1.0 - keep) * x.mean(axis=0)
        rv = keep * rv + (1.0 - keep) * x.var(axis=0, ddof=ddof)
    return rm, rv


def _error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference relative to the size of its column ((N, D)) or of the array ((D,)).

    Per column, because features differ in scale (dx of a quiet feature is ~30 times that of an
    ordinary one); per array for (D,) vectors, because an entry of dgamma or dbeta is a sum of N
    terms that can cancel, and float32 round-off is relative to the terms, not to their sum.
    """
    diff = np.abs(a - b)
    if diff.size == 0:
        return 0.0
    if diff.ndim == 2:
        scale = np.abs(a).max(axis=0) + np.abs(b).max(axis=0)
        return float(np.max(diff.max(axis=0) / np.maximum(scale, 1e-8)))
    return float(diff.max() / max(1e-8, float(np.abs(a).max() + np.abs(b).max())))


def _explained(answer, expected, variants) -> list[tuple[str, str]]:
    """The (id, description) of every buggy variant that explains ``answer``."""
    best: dict = {}  # per id, the closest variant (several epsilons can fit equally well)
    for mid, description, value in variants:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != answer.shape or not np.all(np.isfinite(value)):
            continue
        error = _error(answer, value)
        if _error(value, expected) > DISTINCT and error <= DIAG_TOL:
            if mid not in best or error < best[mid][0]:
                best[mid] = (error, description)
    return [(mid, description) for mid, (_, description) in best.items()]


def _raise(what: str, error: float, found: list[tuple[str, str]], extra: str = "") -> None:
    message = (
        f"{what} differs from the expected values: error {error:.2e} > tolerance {VALUE_TOL:.0e}"
    )
    if found:
        message += "; it matches " + " / ".join(dict.fromkeys(d for _, d in found))
    if extra:
        message += f". {extra}"
    raise Mismatch(message, tuple(dict.fromkeys(i for i, _ in found if i)))


def _eps_variants(x, gamma, beta, eps, make) -> list:
    return [
        ("bn.wrong_eps", f"epsilon = {e:g} instead of {eps:g}", make(e))
        for e in OTHER_EPS
        if e != eps
    ]


def _train_variants(x, gamma, beta, eps) -> list:
    return [
        (
            "bn.unbiased_variance",
            "the batch variance divided by N - 1",
            _train_out(x, gamma, beta, eps, ddof=1),
        ),
        (
            "bn.eps_outside_sqrt",
            "dividing by sqrt(var) + eps",
            _train_out(x, gamma, beta, eps, eps_outside=True),
        ),
        (
            "bn.wrong_axis",
            "statistics over axis 1 (per example)",
            _train_out(x, gamma, beta, eps, axis=1),
        ),
        *_eps_variants(x, gamma, beta, eps, lambda e: _train_out(x, gamma, beta, e)),
    ]


def _test_variants(x, gamma, beta, rm, rv, eps) -> list:
    return [
        (
            "bn.test_uses_batch_stats",
            "normalising with the batch's own mean and variance",
            _train_out(x, gamma, beta, eps),
        ),
        (
            "bn.eps_outside_sqrt",
            "dividing by sqrt(running_var) + eps",
            _normalised(x, rm, rv, gamma, beta, eps, eps_outside=True),
        ),
        *_eps_variants(x, gamma, beta, eps, lambda e: _normalised(x, rm, rv, gamma, beta, e)),
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


def _stat(value: Returned | None, key: str, n: int, d: int, notes: list, when: str) -> np.ndarray:
    """A running statistic read back from ``bn_param`` after the calls."""
    if value is None or value.kind == "none":
        raise Mismatch(
            f'bn_param has no "{key}" {when}: store the updated running statistics back into '
            "bn_param",
            ("bn.running_not_written",),
        )
    shape = value.array.shape if value.array is not None else None
    if shape is not None and shape != (d,) and shape in ((n,), (n, 1), (n, d)):
        raise Mismatch(
            f'bn_param["{key}"] {when} has shape {shape}; expected ({d},), one entry per feature',
            ("bn.wrong_axis",),
        )
    return as_array(value, f'bn_param["{key}"] {when}', (d,), notes)


# --------------------------------------------------------------------------- inputs
def _features(rng: np.random.Generator, n: int, d: int):
    """x shifted and scaled per feature, a few quiet features (variance ~ eps), gamma, beta."""
    loc = rng.uniform(-4.0, 6.0, size=d)
    scale = rng.uniform(0.5, 3.0, size=d)
    quiet = rng.choice(d, size=max(1, d // 5), replace=False)
    loc[quiet] = rng.uniform(-0.5, 0.5, size=quiet.size)  # near 0: float32 keeps their digits
    scale[quiet] = rng.uniform(0.02, 0.045, size=quiet.size)
    x = loc + scale * rng.standard_normal((n, d))
    gamma = rng.choice([-1.0, 1.0], size=d) * rng.uniform(0.5, 2.0, size=d)
    beta = rng.uniform(-2.0, 2.0, size=d)
    return x, gamma, beta, loc, scale


def _batches(rng, loc, scale, n, k):
    return [loc + scale * rng.standard_normal((n, loc.size)) for _ in range(k)]


def _start_stats(rng, d):
    return rng.uniform(-1.0, 1.0, size=d), rng.uniform(0.5, 2.0, size=d)


def _bn_param(mode, eps, momentum, rm=True):
    """A plan expression for bn_param; eps/momentum None means the key is absent."""
    entries: dict = {"mode": mode}
    if eps is not None:
        entries["eps"] = eps
    if momentum is not None:
        entries["momentum"] = momentum
    if rm:
        entries["running_mean"] = given("rm")
        entries["running_var"] = given("rv")
    return {"dict": entries}


def _ref_param(mode, eps, momentum, rm=None, rv=None) -> dict:
    p: dict = {"mode": mode}
    if eps is not None:
        p["eps"] = eps
    if momentum is not None:
        p["momentum"] = momentum
    if rm is not None:
        p["running_mean"], p["running_var"] = rm.copy(), rv.copy()
    return p


def _describe(n, d, eps, momentum) -> str:
    e = "eps absent (default)" if eps is None else f"eps={eps:g}"
    m = "" if momentum is None else f", momentum={momentum:g}"
    return f"x of shape ({n}, {d}), {e}{m}"


# --------------------------------------------------------------------------- case makers
def _train_case(rng, reference, n, d, eps, momentum=0.9) -> Case:
    x, gamma, beta, _, _ = _features(rng, n, d)
    rm, rv = _start_stats(rng, d)
    out, _ = reference.batchnorm_forward(x, gamma, beta, _ref_param("train", eps, momentum, rm, rv))
    return Case(
        name=f"train mode: {_describe(n, d, eps, momentum)}",
        plan=[
            let("x", given("x")),
            let("bn", _bn_param("train", eps, momentum)),
            call(
                "batchnorm_forward",
                var("x"),
                given("gamma"),
                given("beta"),
                var("bn"),
                out=["out", "cache"],
            ),
        ],
        returns={"out": var("out"), "x_after": var("x")},
        inputs={"x": x, "gamma": gamma, "beta": beta, "rm": rm, "rv": rv},
        expected={"out": out},
        params={"kind": "train", "eps": eps, "momentum": momentum},
    )


def _sequence_case(rng, reference, n, d, k, eps, momentum, start=True) -> Case:
    """k training calls on one bn_param; the running statistics afterwards."""
    _, gamma, beta, loc, scale = _features(rng, n, d)
    xs = _batches(rng, loc, scale, n, k)
    inputs = {f"x{i}": x for i, x in enumerate(xs)} | {"gamma": gamma, "beta": beta}
    rm = rv = None
    if start:
        rm, rv = _start_stats(rng, d)
        inputs |= {"rm": rm, "rv": rv}
    bn = _ref_param("train", eps, momentum, rm, rv)
    for x in xs:
        out, _ = reference.batchnorm_forward(x, gamma, beta, bn)
    plan = [let("bn", _bn_param("train", eps, momentum, rm=start))]
    for i in range(k):
        plan.append(
            call(
                "batchnorm_forward",
                given(f"x{i}"),
                given("gamma"),
                given("beta"),
                var("bn"),
                out=[f"out{i}", f"cache{i}"],
            )
        )
    start_text = "given running statistics" if start else "no running statistics (defaults)"
    return Case(
        name=f"{k} training call{'s' if k > 1 else ''} from {start_text}: "
        f"{_describe(n, d, eps, momentum)}",
        plan=plan,
        returns={
            "out": var(f"out{k - 1}"),
            "running_mean": {"item": ["bn", "running_mean"]},
            "running_var": {"item": ["bn", "running_var"]},
        },
        inputs=inputs,
        expected={
            "out": out,
            "running_mean": bn["running_mean"],
            "running_var": bn["running_var"],
        },
        params={"kind": "sequence", "eps": eps, "momentum": momentum, "calls": k},
    )


def _test_case(rng, reference, n, d, eps, momentum=0.9) -> Case:
    """Test mode with given running statistics, which must not change."""
    x, gamma, beta, loc, scale = _features(rng, n, d)
    # running statistics unlike the batch's own, so batch statistics give a different output
    rm = loc + scale * rng.uniform(-1.5, 1.5, size=d)
    rv = scale**2 * rng.uniform(0.3, 3.0, size=d)
    out, _ = reference.batchnorm_forward(x, gamma, beta, _ref_param("test", eps, momentum, rm, rv))
    return Case(
        name=f"test mode with given running statistics: {_describe(n, d, eps, momentum)}",
        plan=[
            let("bn", _bn_param("test", eps, momentum)),
            call(
                "batchnorm_forward",
                given("x"),
                given("gamma"),
                given("beta"),
                var("bn"),
                out=["out", "cache"],
            ),
        ],
        returns={
            "out": var("out"),
            "running_mean": {"item": ["bn", "running_mean"]},
            "running_var": {"item": ["bn", "running_var"]},
        },
        inputs={"x": x, "gamma": gamma, "beta": beta, "rm": rm, "rv": rv},
        expected={"out": out},
        params={"kind": "test", "eps": eps, "momentum": momentum},
    )


def _warmup_case(rng, reference, n, d, k, eps, momentum) -> Case:
    """k training calls, then test mode on a new batch with the running statistics they left."""
    case = _sequence_case(rng, reference, n, d, k, eps, momentum)
    loc, scale = case.inputs["x0"].mean(axis=0), case.inputs["x0"].std(axis=0)
    x_test = loc + scale * (0.7 + 0.5 * rng.standard_normal((n, d)))  # a batch of its own
    bn = _ref_param(
        "test", eps, momentum, case.expected["running_mean"], case.expected["running_var"]
    )
    out, _ = reference.batchnorm_forward(x_test, case.inputs["gamma"], case.inputs["beta"], bn)
    case.plan += [
        let(
            "bn_test",
            {
                "dict": {
                    "mode": "test",
                    "eps": eps,
                    "momentum": momentum,
                    "running_mean": {"item": ["bn", "running_mean"]},
                    "running_var": {"item": ["bn", "running_var"]},
                }
            },
        ),
        call(
            "batchnorm_forward",
            given("x_test"),
            given("gamma"),
            given("beta"),
            var("bn_test"),
            out=["out_test", "cache_test"],
        ),
    ]
    case.name = f"test mode after {k} training calls: {_describe(n, d, eps, momentum)}"
    case.returns = {"out": var("out_test")}
    case.inputs["x_test"] = x_test
    case.expected = {
        "out": out,
        "running_mean": case.expected["running_mean"],
        "running_var": case.expected["running_var"],
    }
    case.params["kind"] = "warmup_test"
    return case


def _defaults_test_case(rng, reference, n, d) -> Case:
    x, gamma, beta, _, _ = _features(rng, n, d)
    out, _ = reference.batchnorm_forward(x, gamma, beta, {"mode": "test"})
    return Case(
        name=f'test mode with bn_param = {{"mode": "test"}} only: x of shape ({n}, {d})',
        plan=[
            let("bn", {"dict": {"mode": "test"}}),
            call(
                "batchnorm_forward",
                given("x"),
                given("gamma"),
                given("beta"),
                var("bn"),
                out=["out", "cache"],
            ),
        ],
        returns={"out": var("out")},
        inputs={"x": x, "gamma": gamma, "beta": beta},
        expected={"out": out},
        params={"kind": "defaults_test", "eps": None, "momentum": None},
    )


def _backward_case(rng, reference, function, n, d, eps, finite_differences=False) -> Case:
    x, gamma, beta, _, _ = _features(rng, n, d)
    dout = rng.standard_normal((n, d))
    bn = _ref_param("train", eps, None)
    out, cache = reference.batchnorm_forward(x, gamma, beta, dict(bn))
    if finite_differences:

        def f(x_, g_, b_):
            return reference.batchnorm_forward(x_, g_, b_, dict(bn))[0]

        grads = (
            numerical_gradient_array(lambda z: f(z, gamma, beta), x.copy(), dout),
            numerical_gradient_array(lambda g: f(x, g, beta), gamma.copy(), dout),
            numerical_gradient_array(lambda b: f(x, gamma, b), beta.copy(), dout),
        )
        source = "finite differences"
    else:
        grads = reference.batchnorm_backward(dout, cache)
        source = "the reference"
    what = "staged backward" if function == "batchnorm_backward" else "closed-form backward"
    return Case(
        name=f"{what} vs {source}: {_describe(n, d, eps, None)}, random gamma, beta and dout",
        plan=[
            let("bn", _bn_param("train", eps, None, rm=False)),
            call(
                "batchnorm_forward",
                given("x"),
                given("gamma"),
                given("beta"),
                var("bn"),
                out=["out", "cache"],
            ),
            call(function, given("dout"), var("cache"), out=["dx", "dgamma", "dbeta"]),
        ],
        returns={
            "out": var("out"),
            "dx": var("dx"),
            "dgamma": var("dgamma"),
            "dbeta": var("dbeta"),
        },
        inputs={"x": x, "gamma": gamma, "beta": beta, "dout": dout},
        expected={"out": out, "dx": grads[0], "dgamma": grads[1], "dbeta": grads[2]},
        params={"kind": "backward", "eps": eps, "function": function},
    )


def _consistency_case(rng, reference, n, d, eps) -> Case:
    """Both backward passes on one cache; expected values are the reference gradient."""
    x, gamma, beta, _, _ = _features(rng, n, d)
    dout = rng.standard_normal((n, d))
    _, cache = reference.batchnorm_forward(x, gamma, beta, _ref_param("train", eps, None))
    dx, dgamma, dbeta = reference.batchnorm_backward(dout, cache)
    return Case(
        name=f"closed form vs your staged backward: {_describe(n, d, eps, None)}, random dout",
        plan=[
            let("bn", _bn_param("train", eps, None, rm=False)),
            call(
                "batchnorm_forward",
                given("x"),
                given("gamma"),
                given("beta"),
                var("bn"),
                out=["out", "cache"],
            ),
            call("batchnorm_backward", given("dout"), var("cache"), out=["dx", "dgamma", "dbeta"]),
            call(
                "batchnorm_backward_alt",
                given("dout"),
                var("cache"),
                out=["dx_alt", "dgamma_alt", "dbeta_alt"],
            ),
        ],
        returns={
            name: var(name)
            for name in ("dx", "dgamma", "dbeta", "dx_alt", "dgamma_alt", "dbeta_alt")
        },
        inputs={"x": x, "gamma": gamma, "beta": beta, "dout": dout},
        expected={"dx": dx, "dgamma": dgamma, "dbeta": dbeta},
        params={"kind": "consistency", "eps": eps},
    )


# --------------------------------------------------------------------------- builders
def build_forward_train(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _train_case(rng, reference, n, d, eps)
        for n, d, eps in [
            (8, 5, 1e-3),
            (16, 12, 1e-5),
            (4, 7, 1e-3),
            (30, 30, 1e-4),
            (64, 20, 1e-3),
        ]
    ]


def build_defaults(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _sequence_case(rng, reference, 10, 6, 1, None, None, start=False),
        _sequence_case(rng, reference, 12, 8, 3, None, None, start=True),
        _defaults_test_case(rng, reference, 6, 9),
    ]


def build_running(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _sequence_case(rng, reference, 6, 5, 4, 1e-3, 0.8),
        _sequence_case(rng, reference, 10, 12, 5, 1e-5, 0.9),
        _sequence_case(rng, reference, 8, 7, 3, 1e-3, 0.95),
    ]


def build_test_mode(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _test_case(rng, reference, 8, 6, 1e-3),
        _test_case(rng, reference, 5, 11, 1e-5),
        _warmup_case(rng, reference, 16, 8, 5, 1e-3, 0.9),
    ]


def build_backward(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _backward_case(rng, reference, "batchnorm_backward", n, d, eps)
        for n, d, eps in [(4, 3, 1e-3), (10, 6, 1e-5), (50, 20, 1e-3)]
    ]


def build_backward_alt(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _backward_case(rng, reference, "batchnorm_backward_alt", n, d, eps)
        for n, d, eps in [(5, 4, 1e-3), (32, 10, 1e-4), (64, 24, 1e-3)]
    ]


def build_consistency(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _consistency_case(rng, reference, n, d, eps) for n, d, eps in [(6, 4, 1e-3), (40, 16, 1e-5)]
    ]


def build_hidden_forward(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)

    def shape():
        return int(rng.integers(4, 60)), int(rng.integers(3, 40))

    eps1, eps2 = (float(e) for e in rng.choice([1e-5, 1e-4, 1e-3, 3e-3], size=2, replace=False))
    momentum = float(rng.choice([0.7, 0.8, 0.85, 0.95]))
    return [
        _train_case(rng, reference, *shape(), eps1),
        _train_case(rng, reference, *shape(), None),
        _sequence_case(rng, reference, *shape(), int(rng.integers(2, 6)), eps2, momentum),
        _test_case(rng, reference, *shape(), eps2),
    ]


def build_hidden_backward(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    eps = float(rng.choice([1e-5, 1e-4, 1e-3]))
    return [
        _backward_case(
            rng,
            reference,
            "batchnorm_backward",
            int(rng.integers(4, 40)),
            int(rng.integers(3, 30)),
            eps,
        ),
        _backward_case(
            rng,
            reference,
            "batchnorm_backward",
            int(rng.integers(4, 9)),
            int(rng.integers(3, 7)),
            1e-3,
            finite_differences=True,
        ),
        _backward_case(
            rng,
            reference,
            "batchnorm_backward_alt",
            int(rng.integers(4, 40)),
            int(rng.integers(3, 30)),
            eps,
        ),
    ]


# --------------------------------------------------------------------------- judges
def _eps(case: Case) -> float:
    eps = case.params.get("eps")
    return DEFAULT_EPS if eps is None else float(eps)


def _momentum(case: Case) -> float:
    m = case.params.get("momentum")
    return DEFAULT_MOMENTUM if m is None else float(m)


def _passed(case: Case, message: str, notes: list) -> CaseResult:
    return CaseResult(case.name, True, message, notes=tuple(notes))


def judge_train(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x, gamma, beta = (case.inputs[k] for k in ("x", "gamma", "beta"))
    eps = _eps(case)
    out = as_array(outputs.get("out"), "out", x.shape, notes)
    expected = case.expected["out"]
    error = _error(out, expected)
    if error > VALUE_TOL:
        found = _explained(out, expected, _train_variants(x, gamma, beta, eps))
        _raise("out", error, found, _properties(out, x, gamma, beta, eps))
    if "x_after" in outputs:
        x_after = as_array(outputs.get("x_after"), "x after the call", x.shape)
        if not np.array_equal(x_after, x):
            raise Mismatch("batchnorm_forward changed its input x in place; compute a new array")
    return _passed(case, "out matches, per feature mean beta and std |γ|σ/√(σ²+ε)", notes)


def _running_variants(case: Case, xs) -> list:
    m = _momentum(case)
    rm0 = case.inputs.get("rm", np.zeros(xs[0].shape[1]))
    rv0 = case.inputs.get("rv", np.ones(xs[0].shape[1]))
    variants = []
    for mid, description, kw in [
        (
            "bn.momentum_swapped",
            f"running statistics updated with momentum {1 - m:g} in place of {m:g}",
            {"swapped": True},
        ),
        (
            "bn.unbiased_running_var",
            "a running variance averaged from the unbiased (N - 1) batch variance",
            {"ddof": 1},
        ),
    ]:
        variants.append((mid, description, _running(xs, rm0, rv0, m, **kw)))
    if m != DEFAULT_MOMENTUM and case.params.get("momentum") is not None:
        variants.append(
            (
                None,
                f"running statistics updated with momentum 0.9, not bn_param's {m:g}",
                _running(xs, rm0, rv0, DEFAULT_MOMENTUM),
            )
        )
    variants.append(
        (
            "bn.running_not_written",
            "running statistics left unchanged by the training calls",
            (rm0, rv0),
        )
    )
    return variants


def judge_sequence(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    k = case.params["calls"]
    xs = [case.inputs[f"x{i}"] for i in range(k)]
    d = xs[0].shape[1]
    when = f"after {k} training call{'s' * (k > 1)}"
    n = xs[0].shape[0]
    rm = _stat(outputs.get("running_mean"), "running_mean", n, d, notes, when)
    rv = _stat(outputs.get("running_var"), "running_var", n, d, notes, when)
    errors = {
        "running_mean": _error(rm, case.expected["running_mean"]),
        "running_var": _error(rv, case.expected["running_var"]),
    }
    if max(errors.values()) <= VALUE_TOL:
        return _passed(case, "running mean and variance match", notes)
    found = []
    want_m, want_v = case.expected["running_mean"], case.expected["running_var"]
    for mid, description, (vm, vv) in _running_variants(case, xs):
        m_hit, v_hit = _error(rm, vm) <= DIAG_TOL, _error(rv, vv) <= DIAG_TOL
        m_new, v_new = _error(vm, want_m) > DISTINCT, _error(vv, want_v) > DISTINCT
        if m_hit and v_hit and (m_new or v_new):
            found.append((mid, description))
        elif mid == "bn.running_not_written" and ((m_hit and m_new) or (v_hit and v_new)):
            found.append((mid, "one running statistic left unchanged by the training calls"))
    if "out" in outputs and outputs["out"] is not None and outputs["out"].kind == "ndarray":
        out = np.asarray(outputs["out"].array, dtype=np.float64)
        if out.shape == xs[-1].shape:
            mid, _, value = _train_variants(
                xs[-1], case.inputs["gamma"], case.inputs["beta"], _eps(case)
            )[0]
            if _explained(out, case.expected["out"], [(mid, "", value)]):
                found.append((mid, "(and your normalisation also divides the variance by N - 1)"))
    worst = max(errors, key=errors.get)
    message = (
        f'bn_param["{worst}"] {when} differs from the expected value: error '
        f"{errors[worst]:.2e} > tolerance {VALUE_TOL:.0e} (expected running = momentum * running "
        f"+ (1 - momentum) * batch statistic, momentum {_momentum(case):g})"
    )
    if found:
        message += "; it matches " + " / ".join(dict.fromkeys(d for _, d in found))
    raise Mismatch(message, tuple(dict.fromkeys(i for i, _ in found if i)))


def judge_test(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x, gamma, beta, rm, rv = (case.inputs[k] for k in ("x", "gamma", "beta", "rm", "rv"))
    d = x.shape[1]
    out = as_array(outputs.get("out"), "out", x.shape, notes)
    expected = case.expected["out"]
    problems, found = [], []
    error = _error(out, expected)
    if error > VALUE_TOL:
        found = _explained(out, expected, _test_variants(x, gamma, beta, rm, rv, _eps(case)))
        problems.append(
            f"out differs from gamma * (x - running_mean) / sqrt(running_var + eps) + beta: "
            f"error {error:.2e} > tolerance {VALUE_TOL:.0e}"
            + ("; it matches " + " / ".join(dict.fromkeys(t for _, t in found)) if found else "")
        )
    for key, sent in (("running_mean", rm), ("running_var", rv)):
        value = outputs.get(key)
        if value is None or value.kind == "none":
            problems.append(f'test mode removed bn_param["{key}"]; leave bn_param unchanged')
            found.append(("bn.running_updated_in_test", ""))
            continue
        after = as_array(value, f'bn_param["{key}"] after the test-mode call', (d,), notes)
        if not np.allclose(after, sent, rtol=1e-12, atol=0):
            problems.append(
                f'test mode changed bn_param["{key}"] (largest change '
                f"{np.max(np.abs(after - sent)):.3g}); test mode must only read it"
            )
            found.append(("bn.running_updated_in_test", ""))
    if problems:
        raise Mismatch("; ".join(problems), tuple(dict.fromkeys(i for i, _ in found)))
    return _passed(case, "out uses the running statistics; bn_param unchanged", notes)


def judge_warmup_test(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x, gamma, beta = (case.inputs[k] for k in ("x_test", "gamma", "beta"))
    out = as_array(outputs.get("out"), "test-mode out", x.shape, notes)
    expected = case.expected["out"]
    error = _error(out, expected)
    if error <= VALUE_TOL:
        return _passed(case, "test mode uses the running statistics the training calls left", notes)
    eps, k = _eps(case), case.params["calls"]
    rm, rv = case.expected["running_mean"], case.expected["running_var"]
    variants = _test_variants(x, gamma, beta, rm, rv, eps)
    xs = [case.inputs[f"x{i}"] for i in range(k)]
    for mid, description, (vm, vv) in _running_variants(case, xs):
        variants.append(
            (
                mid,
                f"the test-mode formula with {description}",
                _normalised(x, vm, vv, gamma, beta, eps),
            )
        )
    _raise("test-mode out after the training calls", error, _explained(out, expected, variants))
    raise AssertionError("unreachable: _raise always raises")


def judge_defaults_test(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x, gamma, beta = (case.inputs[k] for k in ("x", "gamma", "beta"))
    out = as_array(outputs.get("out"), "out", x.shape, notes)
    expected = case.expected["out"]
    error = _error(out, expected)
    if error > VALUE_TOL:
        rm, rv = np.zeros(x.shape[1]), np.ones(x.shape[1])
        found = _explained(out, expected, _test_variants(x, gamma, beta, rm, rv, DEFAULT_EPS))
        _raise(
            "out (default running statistics: mean 0, variance 1; default eps 1e-3)", error, found
        )
    return _passed(case, "defaults: running mean 0, variance 1, eps 1e-3", notes)


def _gradient_variants(case: Case) -> dict[str, list]:
    x, gamma, dout = case.inputs["x"], case.inputs["gamma"], case.inputs["dout"]
    mu, v = _stats(x)
    istd = 1.0 / np.sqrt(v + _eps(case))
    xhat = (x - mu) * istd
    direct = dout * gamma * istd
    mean_path = (dout * gamma * istd).mean(axis=0, keepdims=True)
    var_path = xhat * (dout * gamma * istd * xhat).mean(axis=0, keepdims=True)
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    n = x.shape[0]
    return {
        "dx": [
            ("bn.backward_constant_stats", "the direct path only, dout * gamma / std", direct),
            (
                "bn.backward_missing_mean_path",
                "dx without the path through the batch mean",
                direct - var_path,
            ),
            (
                "bn.backward_missing_var_path",
                "dx without the path through the batch variance",
                direct - mean_path,
            ),
            ("bn.backward_no_gamma", "dx without the factor gamma", case.expected["dx"] / gamma),
        ],
        "dgamma": [
            ("bn.param_grad_mean", "the mean over the batch instead of the sum", dgamma / n)
        ],
        "dbeta": [("bn.param_grad_mean", "the mean over the batch instead of the sum", dbeta / n)],
    } | (
        {}
        if n != x.shape[1]
        else {
            "dgamma": [
                ("bn.param_grad_mean", "the mean over the batch instead of the sum", dgamma / n),
                ("bn.param_grad_wrong_axis", "a sum over axis 1", (dout * xhat).sum(axis=1)),
            ],
            "dbeta": [
                ("bn.param_grad_mean", "the mean over the batch instead of the sum", dbeta / n),
                ("bn.param_grad_wrong_axis", "a sum over axis 1", dout.sum(axis=1)),
            ],
        }
    )


def judge_backward(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x = case.inputs["x"]
    n, d = x.shape
    problems, found = [], []
    arrays = {}
    for name, shape in (("dx", (n, d)), ("dgamma", (d,)), ("dbeta", (d,))):
        value = outputs.get(name)
        got = value.array.shape if value is not None and value.array is not None else None
        if name != "dx" and got is not None and got != shape and got in ((n,), (), (1,), (n, 1)):
            raise Mismatch(
                f"{name} has shape {got}; expected ({d},), one entry per feature",
                ("bn.param_grad_wrong_axis",),
            )
        arrays[name] = as_array(value, name, shape, notes)
    variants = _gradient_variants(case)
    for name, answer in arrays.items():
        expected = case.expected[name]
        error = _error(answer, expected)
        if error <= VALUE_TOL:
            continue
        hit = _explained(answer, expected, variants[name])
        if name != "dx":
            other = "dbeta" if name == "dgamma" else "dgamma"
            if _error(answer, case.expected[other]) <= DIAG_TOL:
                hit.append((None, f"the expected {other}: check the order (dx, dgamma, dbeta)"))
        found += hit
        problems.append(
            f"{name}: error {error:.2e} > tolerance {VALUE_TOL:.0e}"
            + ("; it matches " + " / ".join(t for _, t in hit) if hit else "")
        )
    if problems:
        out = outputs.get("out")
        if out is not None and out.array is not None and out.array.shape == x.shape:
            if _error(np.asarray(out.array, dtype=np.float64), case.expected["out"]) > VALUE_TOL:
                problems.append(
                    "note: your forward output differs too (see the forward checks); the "
                    "gradients are compared with those of the correct forward pass"
                )
        raise Mismatch("; ".join(problems), tuple(dict.fromkeys(i for i, _ in found if i)))
    return _passed(case, "dx, dgamma and dbeta match", notes)


def judge_consistency(case: Case, outputs) -> CaseResult:
    """The two backward passes agree with each other **and** with the reference gradient.

    Agreement alone proves nothing: two stubs returning the same zeros agree. What cannot be told
    from outside without timing is ``batchnorm_backward_alt = batchnorm_backward`` (an alias of a
    correct staged pass): it returns the right numbers, so it earns this point (and
    ``bn_backward_alt``'s) exactly as a correct closed form would. Only the notebook's timing
    experiment shows the difference; no check here pretends to.
    """
    notes: list[str] = []
    disagree, wrong = [], []
    for name in ("dx", "dgamma", "dbeta"):
        expected = case.expected[name]
        staged = as_array(outputs.get(name), f"{name} of batchnorm_backward", None, notes)
        alt = as_array(outputs.get(f"{name}_alt"), f"{name} of batchnorm_backward_alt", None, notes)
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
        raise Mismatch(
            "your closed form and your staged backward agree with each other but not with the "
            "correct gradient (agreeing on a wrong answer earns nothing): " + "; ".join(wrong)
        )
    return _passed(case, "closed form and staged backward agree, and both are right", notes)


JUDGES = {
    "train": judge_train,
    "sequence": judge_sequence,
    "test": judge_test,
    "warmup_test": judge_warmup_test,
    "defaults_test": judge_defaults_test,
    "backward": judge_backward,
    "consistency": judge_consistency,
}


def judge(case: Case, outputs: dict[str, Returned]) -> CaseResult:
    """Every batch-norm case says which kind it is; one judge per kind."""
    return JUDGES[case.params["kind"]](case, outputs)


def _check(cid, title, points, hidden, functions, build, needs_reference=True) -> Check:
    return Check(cid, NOTEBOOK, title, points, hidden, functions, build, judge, needs_reference)


FORWARD = ("batchnorm_forward",)
CHECKS = [
    _check(
        "bn_forward_train",
        "train mode matches the reference",
        3,
        False,
        FORWARD,
        build_forward_train,
    ),
    _check(
        "bn_forward_defaults",
        "defaults: eps 1e-3, momentum 0.9, running mean 0 and variance 1",
        1,
        False,
        FORWARD,
        build_defaults,
    ),
    _check(
        "bn_running_stats",
        "running statistics after a sequence of training calls",
        2,
        False,
        FORWARD,
        build_running,
    ),
    _check(
        "bn_test_mode",
        "test mode uses the running statistics and leaves bn_param unchanged",
        2,
        False,
        FORWARD,
        build_test_mode,
    ),
    _check(
        "bn_backward",
        "staged backward: dx, dgamma, dbeta",
        3,
        False,
        ("batchnorm_forward", "batchnorm_backward"),
        build_backward,
    ),
    _check(
        "bn_backward_alt",
        "closed-form backward: dx, dgamma, dbeta",
        2,
        False,
        ("batchnorm_forward", "batchnorm_backward_alt"),
        build_backward_alt,
    ),
    _check(
        "bn_alt_matches_staged",
        "closed form equals your staged backward and the correct gradient",
        1,
        False,
        FUNCTIONS,
        build_consistency,
    ),
    _check(
        "bn_hidden_forward",
        "train and test mode, running statistics, on hidden shapes",
        2,
        True,
        FORWARD,
        build_hidden_forward,
    ),
    _check(
        "bn_hidden_backward",
        "both backward passes on hidden shapes, one against finite differences",
        2,
        True,
        FUNCTIONS,
        build_hidden_backward,
    ),
]
