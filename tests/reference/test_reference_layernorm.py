"""Independent evidence that the layer-normalization reference is right.

* The backward pass against centred finite differences in float64, with a random upstream
  gradient (not ones), gamma != 1 (some negative), beta != 0, N >= 4, D >= 4 and inputs shifted
  and scaled per row and per column, for several eps.
* The forward pass against a per-row computation with Python's ``statistics`` module, against
  batch normalization of the transposed input (layer norm is batch norm over the other axis,
  before gamma and beta), and against the properties the definition implies: an example's output
  does not depend on the rest of the batch, and ``ln_param`` is read, never written.
"""

import copy
import math
import statistics

import numpy as np
import pytest
from reference import batchnorm_forward, layernorm_backward, layernorm_forward

from grader.toolkit.gradcheck import numerical_gradient_array, rel_error


def make_case(seed, N=6, D=5):
    """Rows with their own offsets and spreads, gamma with mixed signs, beta != 0, random dout."""
    rng = np.random.default_rng(seed)
    row_loc = rng.uniform(-5.0, 5.0, size=(N, 1))
    row_scale = rng.uniform(0.5, 4.0, size=(N, 1))
    x = row_loc + row_scale * rng.standard_normal((N, D)) + rng.uniform(-1, 1, size=D)
    gamma = rng.choice([-1.0, 1.0], size=D) * rng.uniform(0.5, 2.0, size=D)
    beta = rng.uniform(-2.0, 2.0, size=D)
    dout = rng.standard_normal((N, D))
    return x, gamma, beta, dout


@pytest.mark.parametrize(
    ("N", "D", "eps"), [(4, 4, 1e-3), (6, 5, 1e-5), (8, 10, 1e-1), (2, 7, 1e-3), (5, 3, 0.0)]
)
def test_backward_matches_finite_differences(N, D, eps):
    x, gamma, beta, dout = make_case(10 * N + D, N, D)
    params = {"eps": eps}
    out, cache = layernorm_forward(x, gamma, beta, params)
    dx, dgamma, dbeta = layernorm_backward(dout, cache)

    def out_of(x_, g_, b_):
        return layernorm_forward(x_, g_, b_, dict(params))[0]

    num_dx = numerical_gradient_array(lambda z: out_of(z, gamma, beta), x, dout)
    # Per entry (rel_error) an entry of dx near 0 shows the finite differences' own round-off;
    # relative to the largest entry the worst case over five seeds per shape was 8e-10.
    assert np.max(np.abs(dx - num_dx)) <= 1e-8 * np.max(np.abs(num_dx))
    num_dgamma = numerical_gradient_array(lambda g: out_of(x, g, beta), gamma, dout)
    num_dbeta = numerical_gradient_array(lambda b: out_of(x, gamma, b), beta, dout)
    assert rel_error(dgamma, num_dgamma) < 1e-8
    assert rel_error(dbeta, num_dbeta) < 1e-8
    assert dx.shape == x.shape and dgamma.shape == gamma.shape and dbeta.shape == beta.shape


def test_forward_matches_a_per_row_computation():
    x, gamma, beta, _ = make_case(1, N=5, D=7)
    eps = 1e-3
    out, _ = layernorm_forward(x, gamma, beta, {"eps": eps})
    for i, row in enumerate(x.tolist()):
        mu = statistics.fmean(row)
        var = statistics.pvariance(row, mu)  # biased: divide by D
        expected = [
            g * (v - mu) / math.sqrt(var + eps) + b
            for v, g, b in zip(row, gamma, beta, strict=True)
        ]
        np.testing.assert_allclose(out[i], expected, rtol=1e-12, atol=1e-12)


def test_default_eps_is_the_courses():
    x, gamma, beta, _ = make_case(2)
    default, _ = layernorm_forward(x, gamma, beta, {})
    explicit, _ = layernorm_forward(x, gamma, beta, {"eps": 1e-3})
    other, _ = layernorm_forward(x, gamma, beta, {"eps": 1e-5})
    np.testing.assert_array_equal(default, explicit)
    assert np.max(np.abs(default - other)) > 1e-6  # the default is really 1e-3, not 1e-5


def test_is_batch_norm_of_the_transpose_before_gamma_and_beta():
    x, _, _, _ = make_case(3, N=6, D=4)
    N, D = x.shape
    ln, _ = layernorm_forward(x, np.ones(D), np.zeros(D), {"eps": 1e-3})
    bn, _ = batchnorm_forward(x.T, np.ones(N), np.zeros(N), {"mode": "train", "eps": 1e-3})
    np.testing.assert_allclose(ln, bn.T, rtol=1e-12, atol=1e-12)


def test_an_example_does_not_depend_on_the_rest_of_the_batch():
    x, gamma, beta, _ = make_case(4, N=8, D=6)
    whole, _ = layernorm_forward(x, gamma, beta, {})
    for i in range(len(x)):
        alone, _ = layernorm_forward(x[i : i + 1], gamma, beta, {})
        np.testing.assert_allclose(alone[0], whole[i], rtol=1e-13, atol=1e-13)
    # batch norm, for contrast, does depend on it
    bn_whole, _ = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    bn_half, _ = batchnorm_forward(x[:4], gamma, beta, {"mode": "train"})
    assert np.max(np.abs(bn_whole[:4] - bn_half)) > 1e-3


def test_normalised_rows_have_mean_zero_and_the_shrunk_variance():
    x, gamma, beta, _ = make_case(5, N=6, D=9)
    eps = 1e-1
    _, cache = layernorm_forward(x, gamma, beta, {"eps": eps})
    xhat, var = cache["xhat"], np.var(x, axis=1, keepdims=True)
    np.testing.assert_allclose(xhat.mean(axis=1), 0.0, atol=1e-12)
    # exactly sigma^2 / (sigma^2 + eps), not 1: eps sits inside the square root
    np.testing.assert_allclose(xhat.var(axis=1, keepdims=True), var / (var + eps), rtol=1e-12)


def test_ln_param_is_read_and_never_written():
    x, gamma, beta, _ = make_case(6)
    params = {"eps": 1e-4}
    before = copy.deepcopy(params)
    layernorm_forward(x, gamma, beta, params)
    assert params == before
