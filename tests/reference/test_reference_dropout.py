r"""Independent evidence that the inverted-dropout reference is right.

Dropout is random, so its forward pass is checked by statistics, each with a stated false-fail
probability, and its backward pass by consistency with the mask the forward pass used (finite
differences with the mask held fixed by re-seeding the generator). Nothing depends on the order
of the random calls inside the function beyond "same seed, same output".

Every statistical test below uses a fixed seed, so it is deterministic; the false-fail
probability is over the choice of that seed: the chance that a *correct* implementation fails
the test for a seed picked at random. Each test item keeps it at or below ``DELTA = 1e-9``.
"""

import math

import numpy as np
import pytest
from reference import dropout_backward, dropout_forward

from grader.toolkit.gradcheck import numerical_gradient_array, rel_error

DELTA = 1e-9  # false-fail probability allowed per statistical test item
P_VALUES = [0.3, 0.5, 0.8]  # asymmetric p first: 0.3 tells "drop" from "keep" probability


def nonzero_input(rng, shape, low=0.5, high=2.0):
    """Entries with |x| in [low, high] and random signs: no exact zeros, so out == 0 <=> dropped."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def hoeffding_t(n, delta):
    r"""Half-width t with P(|k/n - p| >= t) <= 2 exp(-2 n t^2) = delta."""
    return math.sqrt(math.log(2.0 / delta) / (2.0 * n))


# --- test mode -----------------------------------------------------------------------------


def test_test_mode_is_exact_identity_and_returns_new_array():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 9))
    x0 = x.copy()
    out, cache = dropout_forward(x, 0.3, mode="test", rng=np.random.default_rng(1))
    np.testing.assert_array_equal(out, x0)
    assert out.dtype == np.float64
    assert out is not x and not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, x0)
    dout = rng.standard_normal(x.shape)
    dx = dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout)
    assert not np.shares_memory(dx, dout)


def test_p_zero_in_train_mode_is_identity():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 6))
    out, cache = dropout_forward(x, 0.0, rng=rng)
    np.testing.assert_array_equal(out, x)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


@pytest.mark.parametrize("bad_p", [-0.1, 1.0, 1.5])
def test_invalid_p_raises(bad_p):
    with pytest.raises(ValueError, match="p_drop"):
        dropout_forward(np.ones((2, 2)), bad_p)


def test_invalid_mode_raises():
    with pytest.raises(ValueError, match="mode"):
        dropout_forward(np.ones((2, 2)), 0.3, mode="eval")


# --- train mode: the rule out = x * mask / (1 - p) -----------------------------------------


@pytest.mark.parametrize("p", P_VALUES)
def test_kept_units_scaled_by_exactly_one_over_one_minus_p(p):
    """Every output is either exactly 0 (dropped) or x / (1 - p) up to one rounding (kept).

    Both groups are non-empty unless all 2000 units fall on one side: probability
    p^2000 + (1-p)^2000 < 1e-300 for these p.
    """
    rng = np.random.default_rng(3)
    x = nonzero_input(rng, (50, 40))
    x0 = x.copy()
    out, _ = dropout_forward(x, p, rng=rng)
    np.testing.assert_array_equal(x, x0)  # input untouched
    assert out.shape == x.shape and out.dtype == np.float64
    kept = out != 0
    assert kept.any() and (~kept).any()
    np.testing.assert_allclose(out[kept], x[kept] / (1.0 - p), rtol=1e-15, atol=0)


@pytest.mark.parametrize("p", P_VALUES)
def test_dropped_fraction_within_hoeffding_bound(p):
    r"""The fraction of dropped units k/n is within t of p.

    The n units are dropped independently with probability p, so by Hoeffding
    P(|k/n - p| >= t) <= 2 exp(-2 n t^2). With n = 100,000 and t = sqrt(ln(2/1e-9) / (2n))
    (about 0.0104) the false-fail probability is at most 1e-9. Swapping the drop and keep
    probabilities moves k/n by |1 - 2p| = 0.4 at p = 0.3.
    """
    rng = np.random.default_rng(4)
    x = nonzero_input(rng, (400, 250))
    out, _ = dropout_forward(x, p, rng=rng)
    n = x.size
    t = hoeffding_t(n, DELTA)
    assert 2 * math.exp(-2 * n * t * t) <= DELTA * (1 + 1e-12)
    frac = np.count_nonzero(out == 0) / n
    assert abs(frac - p) < t, f"dropped fraction {frac:.4f}, expected {p} +- {t:.4f}"


@pytest.mark.parametrize("p", P_VALUES)
def test_mean_preserved_within_hoeffding_bound(p):
    r"""E[out] = x, so the overall mean and every per-feature mean of out match those of x.

    Each out_ij is independent and lies in an interval of length c_ij = |x_ij| / (1 - p), so
    Hoeffding for bounded variables gives P(|sum out - sum x| >= s) <= 2 exp(-2 s^2 / sum c^2),
    i.e. s = sqrt(ln(2/delta) * sum c^2 / 2). We spend delta/2 on the overall sum and
    delta/(2D) on each of the D column sums (union bound): total false-fail probability <= 1e-9.
    A missing 1/(1-p) scale shifts the mean by p * mean(x), about 0.3, while the overall bound is
    about 0.016 (p = 0.3); one mask shared by all examples moves whole columns to 0.
    """
    rng = np.random.default_rng(5)
    N, D = 400, 250
    x = rng.uniform(0.5, 1.5, size=(N, D))
    out, _ = dropout_forward(x, p, rng=rng)
    c2 = (np.abs(x) / (1.0 - p)) ** 2

    s_all = math.sqrt(math.log(2.0 / (DELTA / 2)) * c2.sum() / 2.0)
    assert abs(out.sum() - x.sum()) < s_all, (out.mean(), x.mean(), s_all / x.size)

    s_col = np.sqrt(math.log(2.0 / (DELTA / (2 * D))) * c2.sum(axis=0) / 2.0)
    dev = np.abs(out.sum(axis=0) - x.sum(axis=0))
    assert np.all(dev < s_col), f"worst column: {np.max(dev / s_col):.3f} x its bound"


# --- randomness: fresh masks, reproducible with a seed -------------------------------------


@pytest.mark.parametrize("shared_rng", [True, False], ids=["same-generator", "rng=None"])
def test_two_calls_give_different_masks(shared_rng):
    r"""A new mask every call.

    Two independent masks of n units are equal with probability (p^2 + (1-p)^2)^n; for
    n = 600 and p = 0.3 that is 0.58^600 < 1e-140. With ``rng=None`` each call must draw from a
    fresh (OS-seeded) generator, so the same bound applies.
    """
    p = 0.3
    x = nonzero_input(np.random.default_rng(6), (20, 30))
    rng = np.random.default_rng(7) if shared_rng else None
    out1, _ = dropout_forward(x, p, rng=rng)
    out2, _ = dropout_forward(x, p, rng=rng)
    assert (p**2 + (1 - p) ** 2) ** x.size < 1e-140
    assert not np.array_equal(out1 == 0, out2 == 0)


def test_units_dropped_independently_not_one_mask_per_row_or_column():
    r"""Rows (examples) and columns (features) get different masks.

    All N rows equal the first row's mask with probability (p^2+(1-p)^2)^(D(N-1)), and all D
    columns equal the first column's with probability (p^2+(1-p)^2)^(N(D-1)); for N=20, D=30,
    p=0.3 both are below 1e-120.
    """
    p = 0.3
    x = nonzero_input(np.random.default_rng(8), (20, 30))
    out, _ = dropout_forward(x, p, rng=np.random.default_rng(9))
    dropped = out == 0
    assert not np.all(dropped == dropped[0:1, :])
    assert not np.all(dropped == dropped[:, 0:1])


def test_same_seed_same_output():
    x = np.random.default_rng(10).standard_normal((30, 40))
    out1, c1 = dropout_forward(x, 0.3, rng=np.random.default_rng(123))
    out2, c2 = dropout_forward(x, 0.3, rng=np.random.default_rng(123))
    np.testing.assert_array_equal(out1, out2)
    dout = np.random.default_rng(11).standard_normal(x.shape)
    np.testing.assert_array_equal(dropout_backward(dout, c1), dropout_backward(dout, c2))


# --- backward ------------------------------------------------------------------------------


@pytest.mark.parametrize("p", P_VALUES)
def test_backward_is_dout_times_mask_over_one_minus_p(p):
    rng = np.random.default_rng(12)
    x = nonzero_input(rng, (30, 20))
    out, cache = dropout_forward(x, p, rng=rng)
    kept = out != 0  # the mask, read off the output (x has no zeros)
    dout = rng.standard_normal(x.shape)
    dout0 = dout.copy()
    dx = dropout_backward(dout, cache)
    np.testing.assert_array_equal(dout, dout0)
    assert dx.shape == x.shape and dx.dtype == np.float64
    np.testing.assert_allclose(dx, dout * kept / (1.0 - p), rtol=1e-15, atol=0)
    assert np.all(dx[~kept] == 0.0)


@pytest.mark.parametrize("p", P_VALUES)
def test_backward_matches_finite_differences_with_fixed_mask(p):
    """Re-seeding the generator for every evaluation holds the mask fixed, so the forward pass
    is a fixed linear map of x whose vector-Jacobian product the backward must equal."""
    seed = 13
    rng = np.random.default_rng(14)
    x = rng.standard_normal((8, 10))
    dout = rng.standard_normal(x.shape)
    _, cache = dropout_forward(x, p, rng=np.random.default_rng(seed))
    dx = dropout_backward(dout, cache)

    def f(z):
        return dropout_forward(z, p, rng=np.random.default_rng(seed))[0]

    dx_num = numerical_gradient_array(f, x, dout)
    assert rel_error(dx, dx_num) <= 1e-7
