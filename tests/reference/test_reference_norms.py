"""Independent evidence that the norm and penalty references are right.

Expected values come from independent formulas (pure-Python loops with ``math.fsum``,
``np.linalg.norm(W, "fro")``) and from centred finite differences; the only literals are the
slide's worked example, whose sums are exact hand arithmetic shown next to them.
"""

import math

import numpy as np
import pytest
from reference import l1_norm, l1_penalty, l1_penalty_grad, l2_norm, l2_penalty, l2_penalty_grad

from grader.toolkit.gradcheck import numerical_gradient, rel_error

SLIDE_W = np.array([[0.1, 0.5, -0.3], [-0.2, 0.4, 0.2], [-0.1, 0.3, 0.3]])
SHAPES = [(4, 3), (3, 5), (5, 2), (1, 7)]


def loop_l1(W):
    """Entry-wise L1 norm by an explicit loop (independent of the reference)."""
    return math.fsum(abs(float(w)) for w in np.asarray(W).flat)


def loop_sq(W):
    """Sum of squares by an explicit loop (independent of the reference)."""
    return math.fsum(float(w) * float(w) for w in np.asarray(W).flat)


def make_weights(seed, away_from_zero=False):
    rng = np.random.default_rng(seed)
    if away_from_zero:
        # |w| in [0.1, 1]: far from the kink of |w| relative to the finite-difference step
        return [rng.choice([-1.0, 1.0], size=s) * rng.uniform(0.1, 1.0, size=s) for s in SHAPES]
    return [rng.standard_normal(s) for s in SHAPES]


# --- the slide's worked example -----------------------------------------------------------


def test_slide_example_l1_is_2_4_not_1_2():
    # |0.1| + |0.5| + |-0.3| + |-0.2| + |0.4| + |0.2| + |-0.1| + |0.3| + |0.3| = 2.4 (slide: 1.2)
    assert l1_norm(SLIDE_W) == pytest.approx(2.4, rel=1e-14)
    # the slide's 1.2 is the largest absolute column sum (0.5+0.4+0.3), i.e. the induced 1-norm
    # that np.linalg.norm(W, 1) returns: the wrong function for an entry-wise L1 penalty.
    assert np.linalg.norm(SLIDE_W, 1) == pytest.approx(1.2, rel=1e-14)
    assert abs(l1_norm(SLIDE_W) - np.linalg.norm(SLIDE_W, 1)) > 1.0


def test_slide_example_l2_sum_of_squares_is_0_78():
    # 0.01 + 0.25 + 0.09 + 0.04 + 0.16 + 0.04 + 0.01 + 0.09 + 0.09 = 0.78 = ||W||_2^2
    assert l2_norm(SLIDE_W) ** 2 == pytest.approx(0.78, rel=1e-14)
    assert l2_norm(SLIDE_W) == pytest.approx(math.sqrt(0.78), rel=1e-14)  # ~0.883
    # the slide's "L2 norm" is the squared norm, which the L2 penalty uses: (lam/2) * 0.78
    assert l2_penalty([SLIDE_W], 2.0) == pytest.approx(0.78, rel=1e-14)
    # the spectral norm is something else
    assert abs(l2_norm(SLIDE_W) - np.linalg.norm(SLIDE_W, 2)) > 0.05


# --- norms against independent formulas --------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 7), (50, 20)])
def test_norms_match_independent_formulas(shape):
    W = np.random.default_rng(sum(shape)).standard_normal(shape) * 3.0
    n1, n2 = l1_norm(W), l2_norm(W)
    assert isinstance(n1, float) and isinstance(n2, float)
    assert n1 == pytest.approx(loop_l1(W), rel=1e-13)
    assert n2 == pytest.approx(math.sqrt(loop_sq(W)), rel=1e-13)
    assert n2 == pytest.approx(np.linalg.norm(W, "fro"), rel=1e-13)


def test_norms_are_not_the_induced_matrix_norms():
    W = np.random.default_rng(1).standard_normal((6, 5))
    assert l1_norm(W) > np.linalg.norm(W, 1) * 1.5  # entry-wise vs largest column sum
    assert l2_norm(W) > np.linalg.norm(W, 2) * 1.05  # Frobenius vs largest singular value


def test_norms_do_not_modify_input():
    W = np.random.default_rng(2).standard_normal((4, 3))
    W0 = W.copy()
    l1_norm(W)
    l2_norm(W)
    np.testing.assert_array_equal(W, W0)


# --- penalties over several layers -------------------------------------------------------


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.07, 2.5])
def test_penalties_sum_over_layers(lam):
    weights = make_weights(3)
    copies = [W.copy() for W in weights]
    p1, p2 = l1_penalty(weights, lam), l2_penalty(weights, lam)
    assert isinstance(p1, float) and isinstance(p2, float)
    assert p1 == pytest.approx(lam * math.fsum(loop_l1(W) for W in weights), rel=1e-13, abs=0)
    assert p2 == pytest.approx(lam / 2 * math.fsum(loop_sq(W) for W in weights), rel=1e-13, abs=0)
    for W, W0 in zip(weights, copies, strict=True):
        np.testing.assert_array_equal(W, W0)


def test_penalty_is_additive_over_layers():
    weights = make_weights(4)
    lam = 0.3
    assert l1_penalty(weights, lam) == pytest.approx(
        math.fsum(l1_penalty([W], lam) for W in weights), rel=1e-13
    )
    assert l2_penalty(weights, lam) == pytest.approx(
        math.fsum(l2_penalty([W], lam) for W in weights), rel=1e-13
    )
    assert l1_penalty([], lam) == 0.0 and l2_penalty([], lam) == 0.0


# --- gradients against finite differences ------------------------------------------------


@pytest.mark.parametrize(
    ("penalty", "penalty_grad", "away_from_zero"),
    [(l1_penalty, l1_penalty_grad, True), (l2_penalty, l2_penalty_grad, False)],
    ids=["l1", "l2"],
)
@pytest.mark.parametrize("lam", [0.05, 1.7])
def test_penalty_grads_match_finite_differences(penalty, penalty_grad, away_from_zero, lam):
    weights = make_weights(5, away_from_zero=away_from_zero)
    grads = penalty_grad(weights, lam)
    assert len(grads) == len(weights)
    for W, G in zip(weights, grads, strict=True):
        assert G.shape == W.shape and G.dtype == np.float64
        assert G is not W and not np.shares_memory(G, W)
        # numerical_gradient perturbs W in place, and W is the object inside `weights`
        num = numerical_gradient(lambda _: penalty(weights, lam), W)
        assert rel_error(G, num) <= 1e-7


def test_l1_grad_is_exactly_zero_at_zero():
    rng = np.random.default_rng(6)
    W = rng.standard_normal((5, 6))
    W[rng.random(W.shape) < 0.4] = 0.0
    W[0, 0] = -0.0
    W[0, 1] = 0.0
    weights = [W, np.zeros((2, 3)), rng.standard_normal((3, 2))]
    lam = 0.2
    with np.errstate(all="raise"):
        grads = l1_penalty_grad(weights, lam)
    for Wl, G in zip(weights, grads, strict=True):
        assert not np.any(np.isnan(G))
        zero = Wl == 0
        assert np.all(G[zero] == 0.0)
        assert np.all(G[Wl > 0] == lam) and np.all(G[Wl < 0] == -lam)
    # the penalty itself is fine with zeros too
    assert l1_penalty(weights, lam) == pytest.approx(lam * sum(loop_l1(Wl) for Wl in weights))


def test_l2_grad_is_lambda_w():
    weights = make_weights(7)
    lam = 0.4
    for W, G in zip(weights, l2_penalty_grad(weights, lam), strict=True):
        np.testing.assert_allclose(G, lam * W, rtol=1e-15, atol=0)
