"""Independent evidence that the batch-normalization references are right.

* Both backward passes (staged and closed form) against centred finite differences in float64,
  with a random upstream gradient (not ones), gamma != 1 (some negative), beta != 0, N >= 4 and
  inputs shifted and scaled, in train and in test mode.
* The forward pass against properties that follow from the definition (per-feature mean beta,
  std |gamma| sigma / sqrt(sigma^2 + eps) with the biased sigma^2), a per-column computation
  with Python's ``statistics`` module, and the running averages against the unrolled closed form
  of the recursion.
"""

import copy
import math
import statistics

import numpy as np
import pytest
from reference import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward

from grader.toolkit.gradcheck import numerical_gradient_array, rel_error

BACKWARDS = pytest.mark.parametrize(
    "backward", [batchnorm_backward, batchnorm_backward_alt], ids=["staged", "alt"]
)


def make_case(seed, N=6, D=5, loc=5.0, scale=3.0):
    """x shifted and scaled, gamma != 1 with mixed signs, beta != 0, random dout."""
    rng = np.random.default_rng(seed)
    x = loc + scale * rng.standard_normal((N, D))
    gamma = rng.choice([-1.0, 1.0], size=D) * rng.uniform(0.5, 2.0, size=D)
    beta = rng.uniform(-2.0, 2.0, size=D)
    dout = rng.standard_normal((N, D))
    return x, gamma, beta, dout


def running_stats_param(seed, D):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(D), rng.uniform(0.5, 3.0, size=D)


def fd_grads(x, gamma, beta, dout, make_param):
    """Finite-difference dx, dgamma, dbeta; ``make_param()`` gives a fresh bn_param per call."""

    def out_of(x_, g_, b_):
        return batchnorm_forward(x_, g_, b_, make_param())[0]

    dx = numerical_gradient_array(lambda z: out_of(z, gamma, beta), x, dout)
    dgamma = numerical_gradient_array(lambda g: out_of(x, g, beta), gamma, dout)
    dbeta = numerical_gradient_array(lambda b: out_of(x, gamma, b), beta, dout)
    return dx, dgamma, dbeta


# --- backward against finite differences ---------------------------------------------------


@BACKWARDS
@pytest.mark.parametrize(
    ("N", "D", "loc", "scale", "eps"),
    [
        (4, 3, 5.0, 3.0, 1e-3),
        (6, 5, 5.0, 3.0, 1e-3),
        (10, 4, -2.0, 0.05, 1e-3),
        (7, 6, 1.0, 2.0, 1e-5),
    ],
)
def test_train_backward_matches_finite_differences(backward, N, D, loc, scale, eps):
    """rel_error is per entry, so an entry of dx that happens to be near 0 (a few 1e-3) shows
    the finite differences' own round-off (~4e-10 absolute) as ~5e-8; over seeds 1-5 the
    worst case was 4e-8. Seed 2 gives at most 1e-8 on these cases: a 10x margin."""
    x, gamma, beta, dout = make_case(2, N, D, loc, scale)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    dx, dgamma, dbeta = backward(dout, cache)
    assert dx.shape == x.shape and dgamma.shape == gamma.shape and dbeta.shape == beta.shape
    assert dx.dtype == dgamma.dtype == dbeta.dtype == np.float64
    num = fd_grads(x, gamma, beta, dout, lambda: {"mode": "train", "eps": eps})
    for name, ana, fd in zip(("dx", "dgamma", "dbeta"), (dx, dgamma, dbeta), num, strict=True):
        err = rel_error(ana, fd)
        assert err <= 1e-7, f"{name}: rel_error {err:.2e}"


@BACKWARDS
def test_test_mode_backward_matches_finite_differences(backward):
    """In test mode the running statistics are constants: dx = dout * gamma / sqrt(rv + eps)."""
    N, D = 6, 5
    x, gamma, beta, dout = make_case(21, N, D)
    rm, rv = running_stats_param(22, D)

    def make_param():
        return {"mode": "test", "running_mean": rm, "running_var": rv, "eps": 1e-3}

    _, cache = batchnorm_forward(x, gamma, beta, make_param())
    dx, dgamma, dbeta = backward(dout, cache)
    num = fd_grads(x, gamma, beta, dout, make_param)
    for name, ana, fd in zip(("dx", "dgamma", "dbeta"), (dx, dgamma, dbeta), num, strict=True):
        err = rel_error(ana, fd)
        assert err <= 1e-7, f"{name}: rel_error {err:.2e}"
    np.testing.assert_allclose(dx, dout * gamma / np.sqrt(rv + 1e-3), rtol=1e-13)


@pytest.mark.parametrize("shape", [(4, 3), (64, 32), (257, 100)])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_alt_equals_staged(shape, mode):
    N, D = shape
    x, gamma, beta, dout = make_case(31 + N, N, D)
    rm, rv = running_stats_param(32, D)
    param = {"mode": mode, "running_mean": rm, "running_var": rv}
    _, cache = batchnorm_forward(x, gamma, beta, param)
    staged = batchnorm_backward(dout, cache)
    alt = batchnorm_backward_alt(dout, cache)
    for a, s in zip(alt, staged, strict=True):
        # relative to the size of the gradient: entries near 0 make per-entry ratios noisy
        np.testing.assert_allclose(a, s, rtol=1e-12, atol=1e-12 * np.max(np.abs(s)))


def test_backward_does_not_modify_inputs():
    x, gamma, beta, dout = make_case(41)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    snapshot = copy.deepcopy(cache), dout.copy()
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        backward(dout, cache)
        np.testing.assert_array_equal(dout, snapshot[1])
        for k, v in snapshot[0].items():
            np.testing.assert_array_equal(cache[k], v)


# --- forward, train mode -------------------------------------------------------------------


@pytest.mark.parametrize(("loc", "scale"), [(5.0, 3.0), (5.0, 0.05), (-3.0, 0.5)])
def test_train_output_mean_is_beta_and_std_is_gamma_sigma_over_sqrt_var_plus_eps(loc, scale):
    """With the biased batch variance sigma^2 (ddof=0): mean(out) = beta and
    std(out) = |gamma| sigma / sqrt(sigma^2 + eps), which is noticeably below |gamma| when
    sigma^2 is comparable with eps (the scale=0.05 case, sigma^2 ~ 2.5e-3 vs eps = 1e-3)."""
    eps = 1e-3
    x, gamma, beta, _ = make_case(51, N=16, D=7, loc=loc, scale=scale)
    x0, g0, b0 = x.copy(), gamma.copy(), beta.copy()
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    for a, a0 in ((x, x0), (gamma, g0), (beta, b0)):
        np.testing.assert_array_equal(a, a0)
    assert out.shape == x.shape and out.dtype == np.float64
    sigma2 = x.var(axis=0)  # ddof=0
    np.testing.assert_allclose(out.mean(axis=0), beta, rtol=0, atol=1e-12)
    expected_std = np.abs(gamma) * np.sqrt(sigma2) / np.sqrt(sigma2 + eps)
    np.testing.assert_allclose(out.std(axis=0), expected_std, rtol=1e-10)


def test_train_output_matches_per_column_statistics_module():
    """An independent per-feature computation with Python's ``statistics`` (exact rationals)."""
    eps = 1e-3
    x, gamma, beta, _ = make_case(52, N=5, D=4, loc=2.0, scale=0.1)
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    for j in range(x.shape[1]):
        col = [float(v) for v in x[:, j]]
        mu = statistics.fmean(col)
        var = statistics.pvariance(col)  # population (biased) variance
        expected = [gamma[j] * (v - mu) / math.sqrt(var + eps) + beta[j] for v in col]
        np.testing.assert_allclose(out[:, j], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("momentum", [0.9, 0.8, 0.0])
def test_running_stats_follow_the_recursion(momentum):
    """After K train calls (batches of different sizes), with m the momentum,
    running_K = m^K running_0 + (1 - m) sum_k m^(K-1-k) stat_k  (the recursion unrolled),
    where stat_k is the batch mean, or the biased batch variance (ddof=0)."""
    D = 4
    rng = np.random.default_rng(61)
    rm0, rv0 = running_stats_param(62, D)
    param = {"mode": "train", "momentum": momentum, "running_mean": rm0, "running_var": rv0}
    gamma, beta = rng.uniform(0.5, 2.0, D), rng.standard_normal(D)
    batches = [3.0 + 2.0 * rng.standard_normal((n, D)) for n in (4, 9, 5, 16, 6, 4)]
    for xb in batches:
        batchnorm_forward(xb, gamma, beta, param)
    K = len(batches)
    w = [(1 - momentum) * momentum ** (K - 1 - k) for k in range(K)]
    rm = momentum**K * rm0 + sum(wk * xb.mean(axis=0) for wk, xb in zip(w, batches, strict=True))
    rv = momentum**K * rv0 + sum(wk * xb.var(axis=0) for wk, xb in zip(w, batches, strict=True))
    np.testing.assert_allclose(param["running_mean"], rm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(param["running_var"], rv, rtol=1e-12, atol=1e-14)
    assert param["mode"] == "train" and param["momentum"] == momentum


def test_defaults_eps_1e_3_momentum_0_9_zeros_and_ones():
    D = 5
    x, gamma, beta, _ = make_case(71, N=8, D=D, loc=5.0, scale=0.05)
    param = {"mode": "train"}
    out, _ = batchnorm_forward(x, gamma, beta, param)
    sigma2 = x.var(axis=0)
    # eps = 1e-3 (as on the slides), inside the square root: visible since sigma^2 ~ 2.5e-3
    expected = gamma * (x - x.mean(axis=0)) / np.sqrt(sigma2 + 1e-3) + beta
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    # running stats start at zeros / ones, momentum 0.9, and are stored back into bn_param
    np.testing.assert_allclose(param["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(param["running_var"], 0.9 + 0.1 * sigma2, rtol=1e-13)
    assert param["running_mean"].shape == (D,) and param["running_var"].shape == (D,)

    # test mode with no running stats uses the defaults zeros / ones, and adds nothing
    tparam = {"mode": "test"}
    out_t, _ = batchnorm_forward(x, gamma, beta, tparam)
    np.testing.assert_allclose(out_t, gamma * x / np.sqrt(1.0 + 1e-3) + beta, rtol=1e-13)
    assert tparam == {"mode": "test"}


# --- forward, test mode --------------------------------------------------------------------


def test_test_mode_uses_running_stats_and_leaves_bn_param_alone():
    N, D = 6, 5
    x, gamma, beta, _ = make_case(81, N, D)
    rm, rv = running_stats_param(82, D)
    param = {"mode": "test", "eps": 1e-4, "momentum": 0.7, "running_mean": rm, "running_var": rv}
    snapshot = copy.deepcopy(param)
    out, _ = batchnorm_forward(x, gamma, beta, param)
    np.testing.assert_allclose(out, gamma * (x - rm) / np.sqrt(rv + 1e-4) + beta, rtol=1e-13)
    # deep compare: same keys, same values, arrays unchanged in place and not replaced
    assert param.keys() == snapshot.keys()
    for k, v in snapshot.items():
        if isinstance(v, np.ndarray):
            assert param[k] is (rm if k == "running_mean" else rv)
            assert param[k].dtype == v.dtype
            np.testing.assert_array_equal(param[k], v)
        else:
            assert param[k] == v
    # each example is normalised on its own: a batch of one gives the same row
    for i in range(N):
        out_i, _ = batchnorm_forward(x[i : i + 1], gamma, beta, param)
        np.testing.assert_allclose(out_i[0], out[i], rtol=1e-14, atol=1e-14)


# --- bad bn_param --------------------------------------------------------------------------


def test_missing_mode_raises_key_error():
    with pytest.raises(KeyError, match="mode"):
        batchnorm_forward(np.ones((4, 2)), np.ones(2), np.zeros(2), {})


def test_unknown_mode_raises_value_error():
    with pytest.raises(ValueError, match="train.*test"):
        batchnorm_forward(np.ones((4, 2)), np.ones(2), np.zeros(2), {"mode": "eval"})
