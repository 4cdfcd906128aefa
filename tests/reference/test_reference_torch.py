r"""PyTorch as an independent oracle for the references (float64, autograd).

Skipped when torch is not installed. The conventions differ; this is the mapping used below.

Batch normalization (``torch.nn.BatchNorm1d``, input (N, D))
    * ``eps``: the same meaning (inside the square root); pass ours explicitly, since torch's
      default is 1e-5 and ours (the slides') is 1e-3.
    * ``momentum``: torch updates ``running = (1 - mom_t) * running + mom_t * batch``, ours
      ``running = m * running + (1 - m) * batch``, so ``mom_t = 1 - m`` (torch's default 0.1 is
      our default 0.9).
    * Normalising in training mode: both use the biased batch variance :math:`v_B` (divide by N),
      so outputs and gradients agree directly; in eval mode both use the running statistics.
    * Running mean: identical under the momentum mapping.
    * Running variance: torch stores the *unbiased* batch variance
      :math:`u_B = v_B \, N/(N-1)`, we store the biased :math:`v_B`. Starting from the same
      :math:`r_0` (ones in both), one step gives

      .. math::

          t_1 = m r_0 + (1-m)\, v_B \tfrac{N}{N-1}, \qquad
          o_1 = m r_0 + (1-m)\, v_B
          \quad\Longrightarrow\quad
          o_1 = m r_0 + \tfrac{N-1}{N}\,(t_1 - m r_0),

      (not simply :math:`t_1 (N-1)/N`: the carried-over :math:`m r_0` is not rescaled). Both
      recursions are linear in the batch variances, so after K steps with the same N:
      :math:`o_K = m^K r_0 + \tfrac{N-1}{N}\,(t_K - m^K r_0)`. With batch sizes :math:`N_k`
      that vary, convert step by step: :math:`u_k = (t_k - m\, t_{k-1})/(1-m)`,
      :math:`v_k = u_k (N_k - 1)/N_k`, and :math:`o_k = m\, o_{k-1} + (1-m)\, v_k`.

Dropout (``torch.nn.functional.dropout``)
    * torch's ``p`` is the probability of *dropping* a unit, our ``p_drop``; both are inverted
      dropout (kept units scaled by 1/(1-p), identity in eval/test mode).
    * torch draws its own mask, which we cannot share, so we compare the *rule*: on the positions
      torch keeps, ``out == x / (1 - p)`` for torch and for us; torch's dropped fraction is close
      to ``p`` (Hoeffding, false-fail probability <= 1e-9); torch's autograd gradient equals our
      backward fed with torch's mask; and autograd of the explicit expression ``x * mask / (1-p)``
      with *our* mask equals our backward.

Layer normalization (``torch.nn.functional.layer_norm(x, (D,), weight, bias, eps)``)
    * The same conventions: statistics per example over the last (feature) axis, the biased
      variance, eps inside the square root, weight and bias of shape (D,); pass our eps (1e-3)
      explicitly, torch's default is 1e-5. No running statistics on either side.

Penalties
    * L1 / L2 values and gradients come from autograd of ``lam * sum |W|`` and
      ``lam / 2 * sum W**2`` over the layers (torch's ``abs`` has gradient 0 at 0, like our
      subgradient choice).
    * ``torch.optim.SGD(weight_decay=lam)`` adds ``lam * W`` to the gradient: its ``lam`` is our
      ``lam`` in :math:`(\lambda/2)\lVert W\rVert_2^2`.
"""

import math

import numpy as np
import pytest
from reference import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    l1_norm,
    l1_penalty,
    l1_penalty_grad,
    l2_norm,
    l2_penalty,
    l2_penalty_grad,
    layernorm_backward,
    layernorm_forward,
)

from grader.toolkit.gradcheck import rel_error

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: oracle tests skipped (pip install torch==2.13.0)"
)

pytestmark = pytest.mark.torch

BACKWARDS = pytest.mark.parametrize(
    "backward", [batchnorm_backward, batchnorm_backward_alt], ids=["staged", "alt"]
)


def T(a, requires_grad=False):
    return torch.tensor(
        np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=requires_grad
    )


def N_(t):
    return t.detach().numpy().copy()


def assert_close(ours, theirs, rtol=1e-12):
    """Element-wise relative agreement, with an absolute floor relative to the array's size."""
    theirs = np.asarray(theirs)
    atol = rtol * max(1.0, float(np.max(np.abs(theirs))) if theirs.size else 1.0)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def make_case(seed, N=8, D=5):
    rng = np.random.default_rng(seed)
    x = 5.0 + 3.0 * rng.standard_normal((N, D))
    gamma = rng.choice([-1.0, 1.0], size=D) * rng.uniform(0.5, 2.0, size=D)
    beta = rng.uniform(-2.0, 2.0, size=D)
    dout = rng.standard_normal((N, D))
    return x, gamma, beta, dout


def torch_bn(gamma, beta, eps, momentum):
    """A float64 BatchNorm1d with our gamma/beta, eps, and momentum mapped to 1 - momentum."""
    bn = torch.nn.BatchNorm1d(len(gamma), eps=eps, momentum=1.0 - momentum, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(T(gamma))
        bn.bias.copy_(T(beta))
    return bn


# --- batch normalization -------------------------------------------------------------------


def test_torch_defaults_map_to_ours():
    bn = torch.nn.BatchNorm1d(3)
    assert bn.momentum == pytest.approx(1.0 - 0.9)  # torch 0.1 <-> our default 0.9
    assert bn.eps == 1e-5  # differs from our 1e-3: always pass eps explicitly


@BACKWARDS
@pytest.mark.parametrize(
    ("N", "eps", "momentum"), [(4, 1e-3, 0.9), (8, 1e-3, 0.8), (16, 1e-5, 0.5)]
)
def test_batchnorm_train_matches_torch(backward, N, eps, momentum):
    D = 5
    x, gamma, beta, dout = make_case(100 + N, N, D)
    bn = torch_bn(gamma, beta, eps, momentum)
    bn.train()
    xt = T(x, requires_grad=True)
    out_t = bn(xt)
    out_t.backward(T(dout))

    param = {"mode": "train", "eps": eps, "momentum": momentum}
    out, cache = batchnorm_forward(x, gamma, beta, param)
    dx, dgamma, dbeta = backward(dout, cache)

    assert_close(out, N_(out_t))
    assert rel_error(dx, N_(xt.grad)) <= 1e-9
    assert rel_error(dgamma, N_(bn.weight.grad)) <= 1e-10
    assert rel_error(dbeta, N_(bn.bias.grad)) <= 1e-10

    # running mean: identical; running var: torch's is unbiased, convert (module docstring)
    r0 = 1.0
    assert_close(param["running_mean"], N_(bn.running_mean))
    torch_rv = N_(bn.running_var)
    assert_close(param["running_var"], momentum * r0 + (N - 1) / N * (torch_rv - momentum * r0))
    # and the unconverted values really differ (so the conversion is not vacuous)
    assert np.all(torch_rv > param["running_var"])


@pytest.mark.parametrize("momentum", [0.9, 0.7])
def test_running_stats_over_many_steps_match_torch(momentum):
    """Same N every step: o_K = m^K r0 + (N-1)/N (t_K - m^K r0). Varying N: step by step."""
    D, eps = 4, 1e-3
    rng = np.random.default_rng(7)
    gamma, beta = rng.uniform(0.5, 2.0, D), rng.standard_normal(D)

    # constant batch size
    N, K = 6, 7
    bn = torch_bn(gamma, beta, eps, momentum)
    bn.train()
    param = {"mode": "train", "eps": eps, "momentum": momentum}
    with torch.no_grad():
        for _ in range(K):
            xb = 2.0 + 3.0 * rng.standard_normal((N, D))
            bn(T(xb))
            batchnorm_forward(xb, gamma, beta, param)
    mK = momentum**K
    assert_close(param["running_mean"], N_(bn.running_mean))
    assert_close(param["running_var"], mK + (N - 1) / N * (N_(bn.running_var) - mK))

    # varying batch sizes: recover torch's unbiased batch variance at each step
    bn = torch_bn(gamma, beta, eps, momentum)
    bn.train()
    param = {"mode": "train", "eps": eps, "momentum": momentum}
    ours_expected = np.ones(D)
    with torch.no_grad():
        for n in (4, 9, 5, 12):
            xb = -1.0 + 0.5 * rng.standard_normal((n, D))
            t_prev = N_(bn.running_var)
            bn(T(xb))
            u = (N_(bn.running_var) - momentum * t_prev) / (1.0 - momentum)
            ours_expected = momentum * ours_expected + (1.0 - momentum) * u * (n - 1) / n
            batchnorm_forward(xb, gamma, beta, param)
            assert_close(param["running_var"], ours_expected, rtol=1e-11)
            assert_close(param["running_mean"], N_(bn.running_mean))


@BACKWARDS
def test_batchnorm_eval_matches_torch(backward):
    N, D, eps = 6, 5, 1e-3
    x, gamma, beta, dout = make_case(200, N, D)
    rng = np.random.default_rng(201)
    rm, rv = rng.standard_normal(D), rng.uniform(0.5, 3.0, D)
    bn = torch_bn(gamma, beta, eps, 0.9)
    with torch.no_grad():
        bn.running_mean.copy_(T(rm))
        bn.running_var.copy_(T(rv))
    bn.eval()
    xt = T(x, requires_grad=True)
    out_t = bn(xt)
    out_t.backward(T(dout))

    param = {"mode": "test", "eps": eps, "running_mean": rm, "running_var": rv}
    out, cache = batchnorm_forward(x, gamma, beta, param)
    dx, dgamma, dbeta = backward(dout, cache)
    assert_close(out, N_(out_t))
    assert rel_error(dx, N_(xt.grad)) <= 1e-10
    assert rel_error(dgamma, N_(bn.weight.grad)) <= 1e-10
    assert rel_error(dbeta, N_(bn.bias.grad)) <= 1e-10
    # eval mode leaves torch's buffers alone, as test mode leaves bn_param alone
    assert_close(N_(bn.running_var), rv, rtol=0)


# --- dropout -------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8])
def test_dropout_rule_matches_torch(p):
    r"""Torch's p is the drop probability, kept units scaled by 1/(1-p), same as ours.

    Dropped fraction: n = 40,000 independent units, Hoeffding
    P(|k/n - p| >= t) <= 2 exp(-2 n t^2) with t = sqrt(ln(2/1e-9)/(2n)) ~ 0.016: false-fail
    probability <= 1e-9 (the seed is fixed, so the test is deterministic).
    """
    rng = np.random.default_rng(300)
    shape = (200, 200)
    x = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)  # no zeros
    dout = rng.standard_normal(shape)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(301)
        xt = T(x, requires_grad=True)
        out_t = torch.nn.functional.dropout(xt, p=p, training=True)
    out_t.backward(T(dout))
    torch_out = N_(out_t)
    kept_t = torch_out != 0

    n = x.size
    t = math.sqrt(math.log(2.0 / 1e-9) / (2.0 * n))
    assert abs(np.count_nonzero(~kept_t) / n - p) < t

    out, cache = dropout_forward(x, p, rng=np.random.default_rng(302))
    kept = out != 0
    # the same rule on each side's kept positions
    np.testing.assert_allclose(torch_out[kept_t], x[kept_t] / (1 - p), rtol=1e-15, atol=0)
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-15, atol=0)
    # and on the kept positions the two outputs agree where both keep
    both = kept & kept_t
    np.testing.assert_allclose(out[both], torch_out[both], rtol=1e-15, atol=0)

    # torch's own backward (its mask) equals our backward fed torch's mask
    # (our cache is (mask, scale, mode), see dropout_forward's docstring)
    dx_ours_torch_mask = dropout_backward(dout, (kept_t, 1.0 / (1.0 - p), "train"))
    np.testing.assert_allclose(dx_ours_torch_mask, N_(xt.grad), rtol=1e-15, atol=0)

    # autograd of the explicit expression x * mask / (1 - p) with OUR mask equals our backward
    xt2 = T(x, requires_grad=True)
    out2 = xt2 * torch.from_numpy(kept.astype(np.float64)) / (1 - p)
    out2.backward(T(dout))
    np.testing.assert_allclose(N_(out2), out, rtol=1e-15, atol=0)
    np.testing.assert_allclose(dropout_backward(dout, cache), N_(xt2.grad), rtol=1e-15, atol=0)


def test_dropout_eval_mode_matches_torch():
    x = np.random.default_rng(310).standard_normal((5, 7))
    out_t = torch.nn.functional.dropout(T(x), p=0.3, training=False)
    out, _ = dropout_forward(x, 0.3, mode="test")
    np.testing.assert_array_equal(out, N_(out_t))


# --- norms and penalties -------------------------------------------------------------------


def make_weights(seed):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(s) for s in [(4, 3), (3, 6), (6, 2)]]
    weights[0][rng.random((4, 3)) < 0.3] = 0.0  # exact zeros: gradient 0 there
    return weights


def test_norms_match_torch():
    for W in make_weights(400):
        Wt = T(W)
        assert l1_norm(W) == pytest.approx(float(torch.linalg.vector_norm(Wt, ord=1)), rel=1e-13)
        assert l2_norm(W) == pytest.approx(
            float(torch.linalg.matrix_norm(Wt, ord="fro")), rel=1e-13
        )
        # torch's matrix 1-norm is the max column sum, like numpy's: not our L1
        assert float(torch.linalg.matrix_norm(Wt, ord=1)) < l1_norm(W)


@pytest.mark.parametrize("lam", [0.01, 0.7])
def test_penalties_and_grads_match_torch_autograd(lam):
    weights = make_weights(401)
    wt = [T(W, requires_grad=True) for W in weights]
    l1_t = lam * sum(w.abs().sum() for w in wt)
    l1_t.backward()
    assert l1_penalty(weights, lam) == pytest.approx(l1_t.item(), rel=1e-13)
    for g, w in zip(l1_penalty_grad(weights, lam), wt, strict=True):
        np.testing.assert_allclose(g, N_(w.grad), rtol=1e-15, atol=0)

    wt = [T(W, requires_grad=True) for W in weights]
    l2_t = lam / 2 * sum((w**2).sum() for w in wt)
    l2_t.backward()
    assert l2_penalty(weights, lam) == pytest.approx(l2_t.item(), rel=1e-13)
    for g, w in zip(l2_penalty_grad(weights, lam), wt, strict=True):
        np.testing.assert_allclose(g, N_(w.grad), rtol=1e-14, atol=0)


def test_sgd_weight_decay_is_our_l2_lambda():
    """torch.optim.SGD(weight_decay=lam) with zero data gradient moves W by -lr * lam * W, which
    is -lr * l2_penalty_grad([W], lam): torch's weight_decay is our lam in (lam/2)||W||^2."""
    W = np.random.default_rng(402).standard_normal((5, 4))
    lr, lam = 0.1, 0.03
    wt = T(W, requires_grad=True)
    opt = torch.optim.SGD([wt], lr=lr, weight_decay=lam)
    wt.grad = torch.zeros_like(wt)
    opt.step()
    expected = W - lr * l2_penalty_grad([W], lam)[0]
    np.testing.assert_allclose(N_(wt), expected, rtol=1e-15, atol=1e-16)


# --- layer normalization -------------------------------------------------------------------


@pytest.mark.parametrize(("N", "D", "eps"), [(4, 5, 1e-3), (8, 3, 1e-5), (2, 9, 1e-1)])
def test_layernorm_matches_torch(N, D, eps):
    x, gamma, beta, dout = make_case(300 + N, N, D)
    xt, gt, bt = T(x, True), T(gamma, True), T(beta, True)
    out_t = torch.nn.functional.layer_norm(xt, (D,), gt, bt, eps)
    out_t.backward(T(dout))

    out, cache = layernorm_forward(x, gamma, beta, {"eps": eps})
    dx, dgamma, dbeta = layernorm_backward(dout, cache)

    assert_close(out, N_(out_t))
    assert_close(dx, N_(xt.grad), rtol=1e-10)
    assert rel_error(dgamma, N_(gt.grad)) <= 1e-10
    assert rel_error(dbeta, N_(bt.grad)) <= 1e-10
