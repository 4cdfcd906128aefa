r"""Independent evidence that the capstone reference ``mlp_loss`` is right.

1. **Finite differences of the whole network's loss** for every entry of every parameter, in
   float64, on random data (inputs shifted and scaled, N >= 4), random :math:`\gamma \ne 1` and
   :math:`\beta \ne 0`, with dropout on: every call gets a generator made from the same seed, so
   every call draws the same masks and the loss is an ordinary function of the parameters. Bound:
   ``rel_error <= 1e-7`` (CS231n's), except for the gradients that are exactly zero: the affine
   biases right before batch norm in train mode (batch norm subtracts every constant shift). There
   both sides are round-off: the analytic one ~1e-17, the numerical one
   :math:`(J(b+h) - J(b-h))/2h` is the difference of two values that agree up to rounding,
   :math:`|J|\,\varepsilon_{64} \approx 10^{-16}|J|`, divided by :math:`2h = 2\cdot10^{-5}`, i.e.
   ~1e-11 |J|, so a relative error would compare noise with noise. They are checked by size
   instead: ``|numeric| <= 1e-9 max(1, |J|)`` and ``|analytic| <= 1e-12``.
2. **Properties** the contract states: scores without labels, the penalty on the weights only
   (exactly ``lam * W`` more, nothing on biases, gamma or beta), test mode deterministic and
   independent of the rest of the batch, running statistics updated in the caller's dictionaries in
   train mode only, parameters never modified.
3. **PyTorch as an oracle** (skipped without torch), float64 autograd of the same network. The
   convention mapping:

   * affine: ours is ``h @ W + b`` with ``W`` of shape (d_in, d_out); ``torch.nn.Linear`` stores
     ``weight = W.T``. We write ``h @ W + b`` in torch too, so the gradients compare directly.
   * batch norm: ``torch.nn.functional.batch_norm(..., training=True, momentum=1 - m, eps=eps)``
     (torch's momentum weighs the *new* batch). Normalising uses the biased variance on both
     sides; torch's ``running_var`` accumulates the unbiased one, converted as in
     ``test_reference_torch.py``: ``ours = m r0 + (N-1)/N (torch - m r0)`` after one step.
   * dropout: torch cannot share our generator, so the torch network multiplies by *our* masks
     explicitly, ``h * mask / (1 - p)``. The masks are replayed from the seed: the reference draws,
     layer after layer from the first, ``mask_l = rng.random(shape_l) >= p`` from the one
     generator (the reference's documented order; a student's dropout may draw differently, which
     is why the checks never rely on it).
   * loss: ``torch.nn.functional.cross_entropy(scores, y)`` (mean over the batch) plus
     ``lam / 2 * sum(W.pow(2).sum())`` over the weight matrices only, which is what
     ``torch.optim.SGD(weight_decay=lam)`` applied to the weights only would add to their gradients.
"""

import numpy as np
import pytest
from reference import mlp_loss

from grader.toolkit.gradcheck import numerical_gradient, rel_error

P_DROP = 0.3
SEED = 1234


def make_network(seed, dims, *, bn):
    rng = np.random.default_rng(seed)
    params = {}
    for layer in range(1, len(dims)):
        d_in, d_out = dims[layer - 1], dims[layer]
        params[f"W{layer}"] = rng.standard_normal((d_in, d_out)) / np.sqrt(d_in)
        params[f"b{layer}"] = rng.uniform(-1.0, 1.0, d_out)
        if bn and layer < len(dims) - 1:
            params[f"gamma{layer}"] = rng.uniform(0.5, 2.0, d_out) * rng.choice([-1.0, 1.0], d_out)
            params[f"beta{layer}"] = rng.uniform(0.2, 1.0, d_out) * rng.choice([-1.0, 1.0], d_out)
    return params


def make_data(seed, n, d, c):
    rng = np.random.default_rng(seed)
    X = 5.0 + 3.0 * rng.standard_normal((n, d))
    y = rng.integers(0, c, n)
    return X, y


def bn_list(dims, seed=None):
    rng = np.random.default_rng(seed)
    return [
        {
            "mode": "train",
            "eps": 1e-3,
            "momentum": 0.9,
            "running_mean": rng.normal(0, 1, d) if seed is not None else np.zeros(d),
            "running_var": rng.uniform(0.5, 2.0, d) if seed is not None else np.ones(d),
        }
        for d in dims[1:-1]
    ]


CASES = [  # (dims, bn, p_drop, lam, mode, N)
    ([5, 6, 5, 4], True, P_DROP, 0.1, "train", 8),
    ([4, 7, 3], True, 0.5, 0.0, "train", 4),
    ([6, 5, 6, 4, 3], True, 0.2, 0.05, "train", 6),
    ([5, 6, 5, 4], False, P_DROP, 0.1, "train", 7),
    ([5, 6, 5, 4], True, P_DROP, 0.1, "test", 5),
    ([3, 4], False, 0.0, 0.2, "train", 5),  # softmax regression: no hidden layer
]


@pytest.mark.parametrize(("dims", "bn", "p_drop", "lam", "mode", "n"), CASES)
def test_gradients_match_finite_differences_of_the_whole_network(dims, bn, p_drop, lam, mode, n):
    params = make_network(len(dims) * 10 + n, dims, bn=bn)
    X, y = make_data(n, n, dims[0], dims[-1])
    bn_params = bn_list(dims, seed=3) if bn else None

    def loss_at(_=None):
        return mlp_loss(
            params,
            X,
            y,
            p_drop=p_drop,
            lam=lam,
            mode=mode,
            bn_params=bn_params,
            rng=np.random.default_rng(SEED),
        )[0]

    loss, grads = mlp_loss(
        params,
        X,
        y,
        p_drop=p_drop,
        lam=lam,
        mode=mode,
        bn_params=bn_params,
        rng=np.random.default_rng(SEED),
    )
    assert loss == loss_at()  # same seed, same masks: a deterministic function
    assert set(grads) == set(params)
    zero_bias = (
        {f"b{layer}" for layer in range(1, len(dims) - 1)} if bn and mode == "train" else set()
    )
    for key, value in params.items():
        numeric = numerical_gradient(loss_at, value)
        assert grads[key].shape == value.shape and grads[key].dtype == np.float64
        if key in zero_bias:
            assert np.abs(numeric).max() <= 1e-9 * max(1.0, abs(loss)), key
            assert np.abs(grads[key]).max() <= 1e-12, key
        else:
            error = rel_error(grads[key], numeric)
            assert error <= 1e-7, f"{key}: rel_error {error:.2e}"


def test_dropout_really_is_on_in_the_gradient_check():
    """The masks matter: another seed gives another loss, and p_drop=0 yet another."""
    dims = [5, 6, 5, 4]
    params = make_network(1, dims, bn=True)
    X, y = make_data(2, 8, 5, 4)
    losses = {
        mlp_loss(params, X, y, p_drop=p, bn_params=bn_list(dims), rng=np.random.default_rng(s))[0]
        for p, s in [(P_DROP, 1), (P_DROP, 2), (0.0, 1)]
    }
    assert len(losses) == 3


def test_scores_without_labels_and_loss_from_them():
    dims = [5, 6, 5, 4]
    params = make_network(3, dims, bn=True)
    X, y = make_data(4, 9, 5, 4)
    scores = mlp_loss(params, X, mode="train", bn_params=bn_list(dims))
    assert scores.shape == (9, 4)
    loss, _ = mlp_loss(params, X, y, mode="train", bn_params=bn_list(dims))
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))  # scores are small
    assert loss == pytest.approx(-log_probs[np.arange(9), y].mean(), rel=1e-13)


def test_softmax_is_stable_for_huge_scores():
    dims = [4, 5, 3]
    params = make_network(5, dims, bn=False)
    params["b2"] = params["b2"] + 1000.0  # exp(1000) = inf: only the shifted softmax survives
    X, y = make_data(6, 6, 4, 3)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grads = mlp_loss(params, X, y)
    params["b2"] -= 1000.0  # the softmax does not see a shift of every score
    loss0, grads0 = mlp_loss(params, X, y)
    assert loss == pytest.approx(loss0, rel=1e-10)
    for key in grads:
        np.testing.assert_allclose(grads[key], grads0[key], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("bn", [False, True])
def test_penalty_is_on_the_weights_only(bn):
    dims = [5, 6, 5, 4]
    params = make_network(7, dims, bn=bn)
    X, y = make_data(8, 8, 5, 4)
    lam = 0.37
    loss, grads = mlp_loss(params, X, y, lam=lam, bn_params=bn_list(dims))
    loss0, grads0 = mlp_loss(params, X, y, lam=0.0, bn_params=bn_list(dims))
    squares = sum(np.sum(params[f"W{layer}"] ** 2) for layer in range(1, len(dims)))
    assert loss - loss0 == pytest.approx(0.5 * lam * squares, rel=1e-12)
    for key in params:
        extra = lam * params[key] if key.startswith("W") else 0.0
        np.testing.assert_allclose(grads[key], grads0[key] + extra, rtol=1e-12, atol=1e-15)


def test_test_mode_is_deterministic_batch_independent_and_read_only():
    dims = [5, 6, 5, 4]
    params = make_network(9, dims, bn=True)
    X, _ = make_data(10, 10, 5, 4)
    bn_params = bn_list(dims, seed=11)
    before = [(b["running_mean"].copy(), b["running_var"].copy()) for b in bn_params]
    snapshot = {k: v.copy() for k, v in params.items()}
    a = mlp_loss(
        params, X, mode="test", p_drop=0.5, bn_params=bn_params, rng=np.random.default_rng(1)
    )
    b = mlp_loss(
        params, X, mode="test", p_drop=0.5, bn_params=bn_params, rng=np.random.default_rng(2)
    )
    one = mlp_loss(params, X[3:4], mode="test", p_drop=0.5, bn_params=bn_params)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(one, a[3:4], rtol=1e-13, atol=1e-13)
    for (rm, rv), bp in zip(before, bn_params, strict=True):
        np.testing.assert_array_equal(bp["running_mean"], rm)
        np.testing.assert_array_equal(bp["running_var"], rv)
        assert bp["mode"] == "test"
    for k, v in snapshot.items():
        np.testing.assert_array_equal(params[k], v)


def test_train_mode_updates_the_callers_running_statistics():
    dims = [5, 6, 4]
    params = make_network(12, dims, bn=True)
    X, y = make_data(13, 10, 5, 4)
    bn_params = bn_list(dims)
    mlp_loss(params, X, y, bn_params=bn_params, rng=np.random.default_rng(0))
    a1 = X @ params["W1"] + params["b1"]
    np.testing.assert_allclose(bn_params[0]["running_mean"], 0.1 * a1.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn_params[0]["running_var"], 0.9 + 0.1 * a1.var(axis=0), rtol=1e-12)
    assert bn_params[0]["mode"] == "train"


def test_p_drop_zero_is_no_dropout_and_mode_is_checked():
    dims = [4, 5, 3]
    params = make_network(14, dims, bn=False)
    X, y = make_data(15, 6, 4, 3)
    a = mlp_loss(params, X, y, p_drop=0.0, rng=np.random.default_rng(0))
    b = mlp_loss(params, X, y, p_drop=0.0, rng=np.random.default_rng(1))
    assert a[0] == b[0]
    with pytest.raises(ValueError, match="mode"):
        mlp_loss(params, X, mode="eval")
    with pytest.raises(ValueError, match="bn_params"):
        mlp_loss(make_network(14, dims, bn=True), X)


# --- PyTorch as an oracle --------------------------------------------------------------------


def replay_masks(seed, n, dims, p):
    """The reference's masks: one generator, layer by layer, ``rng.random(shape) >= p``."""
    rng = np.random.default_rng(seed)
    return [rng.random((n, d)) >= p for d in dims[1:-1]]


@pytest.mark.torch
@pytest.mark.parametrize(("p_drop", "lam", "n"), [(P_DROP, 0.1, 8), (0.5, 0.02, 4), (0.0, 0.3, 6)])
def test_same_network_in_pytorch(p_drop, lam, n):
    torch = pytest.importorskip(
        "torch", reason="PyTorch not installed: oracle tests skipped (pip install torch==2.13.0)"
    )
    F = torch.nn.functional
    dims = [5, 7, 6, 4]
    eps, momentum = 1e-3, 0.9
    params = make_network(20 + n, dims, bn=True)
    X, y = make_data(21 + n, n, dims[0], dims[-1])
    bn_params = bn_list(dims)
    loss, grads = mlp_loss(
        params, X, y, p_drop=p_drop, lam=lam, bn_params=bn_params, rng=np.random.default_rng(SEED)
    )
    masks = replay_masks(SEED, n, dims, p_drop)

    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    running = [
        (torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64))
        for d in dims[1:-1]
    ]
    h = torch.tensor(X, dtype=torch.float64)
    n_layers = len(dims) - 1
    for layer in range(1, n_layers):
        a = h @ tp[f"W{layer}"] + tp[f"b{layer}"]
        rm, rv = running[layer - 1]
        z = F.batch_norm(
            a, rm, rv, tp[f"gamma{layer}"], tp[f"beta{layer}"], True, 1.0 - momentum, eps
        )
        h = F.relu(z)
        if p_drop > 0:
            h = h * torch.tensor(masks[layer - 1], dtype=torch.float64) / (1.0 - p_drop)
    scores = h @ tp[f"W{n_layers}"] + tp[f"b{n_layers}"]
    weights = [tp[f"W{layer}"] for layer in range(1, n_layers + 1)]
    total = F.cross_entropy(scores, torch.tensor(y)) + lam / 2 * sum(
        w.pow(2).sum() for w in weights
    )
    total.backward()

    assert loss == pytest.approx(total.item(), rel=1e-12)
    for key, value in tp.items():
        theirs = value.grad.numpy()
        scale = max(1.0, np.abs(theirs).max())
        np.testing.assert_allclose(grads[key], theirs, rtol=1e-9, atol=1e-12 * scale, err_msg=key)

    # running statistics: mean identical, variance converted from torch's unbiased one
    for (rm, rv), ours in zip(running, bn_params, strict=True):
        np.testing.assert_allclose(ours["running_mean"], rm.numpy(), rtol=1e-12, atol=1e-14)
        converted = momentum + (n - 1) / n * (rv.numpy() - momentum)
        np.testing.assert_allclose(ours["running_var"], converted, rtol=1e-12)

    # test mode: torch's eval-mode batch norm with our running statistics, no dropout
    with torch.no_grad():
        h = torch.tensor(X, dtype=torch.float64)
        for layer, bp in enumerate(bn_params, start=1):
            a = h @ tp[f"W{layer}"] + tp[f"b{layer}"]
            rm = torch.tensor(bp["running_mean"])
            rv = torch.tensor(bp["running_var"])
            z = F.batch_norm(a, rm, rv, tp[f"gamma{layer}"], tp[f"beta{layer}"], False, 0.0, eps)
            h = F.relu(z)
        expected = (h @ tp[f"W{n_layers}"] + tp[f"b{n_layers}"]).numpy()
    ours = mlp_loss(params, X, mode="test", p_drop=p_drop, bn_params=bn_params)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
