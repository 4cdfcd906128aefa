"""Tests of grader.toolkit.layers, by finite differences in float64."""

import warnings

import numpy as np
import pytest

from grader.toolkit import (
    affine_backward,
    affine_forward,
    numerical_gradient,
    numerical_gradient_array,
    rel_error,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)

TOL = 1e-7


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_affine_forward_values(rng):
    x = rng.standard_normal((5, 4)) * 3 + 1
    W = rng.standard_normal((4, 3))
    b = rng.standard_normal(3)
    out, _ = affine_forward(x, W, b)
    expected = np.array(
        [[sum(x[n, d] * W[d, m] for d in range(4)) + b[m] for m in range(3)] for n in range(5)]
    )
    assert out.shape == (5, 3) and out.dtype == np.float64
    assert rel_error(out, expected) < 1e-12


def test_affine_backward_matches_finite_differences(rng):
    x = rng.standard_normal((6, 5)) * 2 - 1
    W = rng.standard_normal((5, 4))
    b = rng.standard_normal(4)
    dout = rng.standard_normal((6, 4))
    _, cache = affine_forward(x, W, b)
    dx, dW, db = affine_backward(dout, cache)
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == b.shape
    assert (
        rel_error(dx, numerical_gradient_array(lambda v: affine_forward(v, W, b)[0], x, dout)) < TOL
    )
    assert (
        rel_error(dW, numerical_gradient_array(lambda v: affine_forward(x, v, b)[0], W, dout)) < TOL
    )
    assert (
        rel_error(db, numerical_gradient_array(lambda v: affine_forward(x, W, v)[0], b, dout)) < TOL
    )


def test_affine_flattens_extra_dimensions(rng):
    x = rng.standard_normal((4, 2, 3))
    W = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    out, cache = affine_forward(x, W, b)
    assert np.allclose(out, x.reshape(4, 6) @ W + b)
    dout = rng.standard_normal((4, 5))
    dx, _, _ = affine_backward(dout, cache)
    assert dx.shape == x.shape
    assert (
        rel_error(dx, numerical_gradient_array(lambda v: affine_forward(v, W, b)[0], x, dout)) < TOL
    )


def test_relu_forward_and_backward(rng):
    # keep inputs away from the kink at 0, where finite differences are meaningless
    x = rng.standard_normal((5, 7))
    x += np.sign(x) * 0.1
    out, cache = relu_forward(x)
    assert np.array_equal(out, np.where(x > 0, x, 0.0))
    dout = rng.standard_normal(x.shape)
    dx = relu_backward(dout, cache)
    assert rel_error(dx, numerical_gradient_array(lambda v: relu_forward(v)[0], x, dout)) < TOL
    assert relu_backward(np.ones(3), relu_forward(np.array([-1.0, 0.0, 2.0]))[1]).tolist() == [
        0,
        0,
        1,
    ]


def test_softmax_loss_is_log_c_for_tiny_scores(rng):
    scores = 1e-3 * rng.standard_normal((50, 10))
    y = rng.integers(0, 10, 50)
    loss, dscores = softmax_cross_entropy(scores, y)
    assert isinstance(loss, float)
    assert abs(loss - np.log(10)) < 1e-2
    assert dscores.shape == scores.shape and dscores.dtype == np.float64
    assert np.allclose(dscores.sum(axis=1), 0)


def test_softmax_matches_naive_formula_and_finite_differences(rng):
    # moderate scores: no probability is tiny, so no gradient entry is lost in the O(h^2)
    # finite-difference error
    scores = rng.standard_normal((7, 5)) * 0.5 + 0.3
    y = rng.integers(0, 5, 7)
    loss, dscores = softmax_cross_entropy(scores, y)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    assert abs(loss - -np.mean(np.log(p[np.arange(7), y]))) < 1e-12
    num = numerical_gradient(lambda s: softmax_cross_entropy(s, y)[0], scores)
    assert rel_error(dscores, num) < TOL


def test_softmax_is_numerically_stable(rng):
    scores = rng.standard_normal((4, 3))
    y = np.array([0, 1, 2, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big_loss, big_d = softmax_cross_entropy(scores + 1e4, y)
        loss, d = softmax_cross_entropy(scores, y)
        # a hopeless prediction has a large but finite loss (no log(0))
        huge, _ = softmax_cross_entropy(np.array([[0.0, 2000.0]]), np.array([0]))
    assert abs(big_loss - loss) < 1e-9 and np.allclose(big_d, d)
    assert huge == pytest.approx(2000.0)


def test_two_layer_network_gradients(rng):
    """affine -> relu -> affine -> softmax, checked end to end.

    Some entries of the weight gradients are sums that nearly cancel (1e-5 or less), where
    the finite difference's own error (about 1e-11) is already a relative 1e-6 entry-wise, so
    the error is measured relative to the largest entry; the layers themselves are checked
    entry-wise at 1e-7 above.
    """
    N, D, H, C = 5, 4, 6, 3
    X = rng.standard_normal((N, D))
    y = rng.integers(0, C, N)
    W1, b1 = rng.standard_normal((D, H)), rng.standard_normal(H)
    W2, b2 = rng.standard_normal((H, C)), rng.standard_normal(C)

    def loss_and_grads():
        h, c1 = affine_forward(X, W1, b1)
        a, c2 = relu_forward(h)
        s, c3 = affine_forward(a, W2, b2)
        loss, ds = softmax_cross_entropy(s, y)
        da, dW2, db2 = affine_backward(ds, c3)
        dX, dW1, db1 = affine_backward(relu_backward(da, c2), c1)
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    _, grads = loss_and_grads()
    for name, p in (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2)):
        num = numerical_gradient(lambda _: loss_and_grads()[0], p)
        err = np.max(np.abs(grads[name] - num)) / np.max(np.abs(num))
        assert err < TOL, (name, err)
