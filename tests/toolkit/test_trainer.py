"""Tests of grader.toolkit.trainer.

The dropout, batch-norm and penalty functions below are small, independent implementations
written for these tests (spies that record how the trainer calls them); the kit's reference
solutions are never imported here.
"""

import time
import types
import warnings

import numpy as np
import pytest

from grader.toolkit import History, evaluate, load_digits, quick_mode, rel_error, train_mlp
from grader.toolkit.gradcheck import numerical_gradient
from grader.toolkit.layers import softmax_cross_entropy
from grader.toolkit.trainer import _backward, _forward


@pytest.fixture(scope="module")
def data():
    return load_digits(n_train=200, n_val=300, seed=0)


# ----------------------------------------------------------------- test-local layer functions
class Spy:
    def __init__(self):
        self.calls = []


def make_dropout(spy):
    def forward(x, p_drop, mode="train", rng=None):
        spy.calls.append(("forward", mode, p_drop, rng, x.shape))
        if mode == "test":
            return x, None
        keep = rng.random(x.shape) >= p_drop
        spy.calls[-1] += (keep,)
        scale = keep / (1 - p_drop)
        return x * scale, scale

    def backward(dout, cache):
        spy.calls.append(("backward", dout.shape))
        return dout * cache

    return forward, backward


def make_batchnorm(spy):
    def forward(x, gamma, beta, bn_param):
        mode, eps, mom = bn_param["mode"], bn_param["eps"], bn_param["momentum"]
        spy.calls.append(("forward", mode, x.shape, eps, mom))
        if mode == "test":
            xhat = (x - bn_param["running_mean"]) / np.sqrt(bn_param["running_var"] + eps)
            return gamma * xhat + beta, None
        mu, var = x.mean(axis=0), x.var(axis=0)
        bn_param["running_mean"] = mom * bn_param["running_mean"] + (1 - mom) * mu
        bn_param["running_var"] = mom * bn_param["running_var"] + (1 - mom) * var
        inv = 1 / np.sqrt(var + eps)
        xhat = (x - mu) * inv
        return gamma * xhat + beta, (xhat, gamma, inv)

    def backward(dout, cache):
        spy.calls.append(("backward", dout.shape))
        xhat, gamma, inv = cache
        dxhat = dout * gamma
        dx = inv * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))
        return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)

    return forward, backward


def make_l2(spy):
    def penalty(weights, lam):
        spy.calls.append(("penalty", [w.shape for w in weights], lam))
        return 0.5 * lam * sum(float(np.sum(w * w)) for w in weights)

    def grad(weights, lam):
        spy.calls.append(("grad", [w.shape for w in weights], lam))
        return [lam * w for w in weights]

    return penalty, grad


# ----------------------------------------------------------------------------------- tests
def test_plain_mlp_learns_digits_quickly(data):
    start = time.perf_counter()
    hist = train_mlp(data, [128], epochs=10, progress=False)
    assert time.perf_counter() - start < 5
    assert isinstance(hist, History) and not hist.diverged
    f = hist.final()
    assert f["val_acc"] >= 0.85
    assert f["train_acc"] >= f["val_acc"]
    assert f["gap"] == pytest.approx(f["train_acc"] - f["val_acc"])
    assert set(f) == {"train_acc", "val_acc", "train_loss", "val_loss", "gap"}
    assert len(hist.train_loss) == len(hist.val_acc) == 10 and hist.epochs == list(range(1, 11))
    assert len(hist.iter_loss) == 10 * 4  # 200 examples in batches of 50
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert sorted(hist.params) == ["W1", "W2", "b1", "b2"]
    assert hist.params["W1"].shape == (64, 128) and hist.params["W2"].shape == (128, 10)
    assert all(p.dtype == np.float64 for p in hist.params.values())
    assert hist.bn_params == [] and hist.seconds > 0
    assert len(repr(hist)) < 200  # no weight matrices in a notebook's output


def test_evaluate_agrees_with_history(data):
    hist = train_mlp(data, [32, 32], epochs=3, progress=False)
    loss, acc = evaluate(hist, data.X_val, data.y_val)
    assert loss == pytest.approx(hist.val_loss[-1]) and acc == pytest.approx(hist.val_acc[-1])
    loss, acc = evaluate(hist.params, data.X_train, data.y_train)
    assert loss == pytest.approx(hist.train_loss[-1]) and acc == pytest.approx(hist.train_acc[-1])


def test_same_seed_same_run_other_seed_other_run(data):
    kw = {"epochs": 3, "progress": False, "dropout": (*make_dropout(Spy()), 0.3)}
    a = train_mlp(data, [64, 64], seed=5, **kw)
    kw["dropout"] = (*make_dropout(Spy()), 0.3)
    b = train_mlp(data, [64, 64], seed=5, **kw)
    c = train_mlp(data, [64, 64], seed=6, **kw)
    assert a.iter_loss == b.iter_loss and a.val_acc == b.val_acc
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert a.iter_loss != c.iter_loss


def test_weight_scale_and_he_init(data):
    # with zero epochs impossible, compare the first mini-batch losses instead
    tiny = train_mlp(data, [64], epochs=1, weight_scale=1e-4, lr=1e-9, progress=False)
    assert tiny.iter_loss[0] == pytest.approx(np.log(10), abs=1e-3)
    he = train_mlp(data, [64], epochs=1, lr=1e-12, momentum=0.0, progress=False)
    W1 = he.params["W1"]
    assert W1.std() == pytest.approx(np.sqrt(2 / 64), rel=0.05)
    assert np.allclose(he.params["b1"], 0, atol=1e-9)


def test_dropout_hooks_are_called_as_documented(data):
    spy = Spy()
    fwd, bwd = make_dropout(spy)
    hist = train_mlp(data, [32, 32], epochs=2, dropout=(fwd, bwd, 0.3), progress=False)
    forwards = [c for c in spy.calls if c[0] == "forward"]
    train = [c for c in forwards if c[1] == "train"]
    test = [c for c in forwards if c[1] == "test"]
    backwards = [c for c in spy.calls if c[0] == "backward"]
    n_iter = len(hist.iter_loss)
    assert n_iter == 8
    assert len(train) == 2 * n_iter and len(backwards) == 2 * n_iter  # two hidden layers
    assert len(test) == 2 * 2 * 2  # 2 layers x (train + val split) x 2 epochs
    assert all(c[2] == 0.3 for c in forwards)
    # one Generator for the whole run, so each mini-batch gets a fresh mask
    rngs = {id(c[3]) for c in train}
    assert len(rngs) == 1 and isinstance(train[0][3], np.random.Generator)
    masks = [c[5] for c in train if c[4] == (50, 32)]
    assert not np.array_equal(masks[0], masks[2])
    assert 0.6 < np.mean([m.mean() for m in masks]) < 0.8


def test_dropout_rng_comes_from_seed_plus_one(data):
    seen = []

    def fwd(x, p_drop, mode="train", rng=None):
        if mode == "train":
            seen.append(rng.random())
        return x, None

    train_mlp(data, [8], epochs=1, seed=11, dropout=(fwd, lambda d, c: d, 0.5), progress=False)
    expected = np.random.default_rng(12).random(len(seen))
    assert np.array_equal(seen, expected)


def test_batchnorm_hooks_and_loss_decreases(data):
    spy = Spy()
    fwd, bwd = make_batchnorm(spy)
    hist = train_mlp(
        data, [64, 64, 64], epochs=5, batchnorm=(fwd, bwd), weight_scale=0.05, progress=False
    )
    assert not hist.diverged
    train_calls = [c for c in spy.calls if c[0] == "forward" and c[1] == "train"]
    test_calls = [c for c in spy.calls if c[0] == "forward" and c[1] == "test"]
    assert len(train_calls) == 3 * len(hist.iter_loss)
    assert len(test_calls) == 3 * 2 * 5
    assert all(c[3] == 1e-3 and c[4] == 0.9 for c in train_calls)
    assert sum(c[0] == "backward" for c in spy.calls) == len(train_calls)
    for i in (1, 2, 3):
        assert hist.params[f"gamma{i}"].shape == (64,) and hist.params[f"beta{i}"].shape == (64,)
        assert not np.allclose(hist.params[f"gamma{i}"], 1)
    assert len(hist.bn_params) == 3
    for bp in hist.bn_params:
        assert bp["mode"] == "test"
        assert not np.allclose(bp["running_mean"], 0) and not np.allclose(bp["running_var"], 1)
    assert np.mean(hist.iter_loss[-4:]) < 0.5 * np.mean(hist.iter_loss[:4])
    assert hist.train_loss[-1] < hist.train_loss[0]
    # evaluating needs the same batch-norm forward and the running statistics
    with pytest.raises(ValueError, match="batch norm"):
        evaluate(hist.params, data.X_val, data.y_val)
    _, acc = evaluate(hist, data.X_val, data.y_val, batchnorm_forward=fwd)
    assert acc == pytest.approx(hist.val_acc[-1])


def test_batchnorm_helps_a_badly_initialised_deep_net(data):
    # too-small initial weights: without BN the signal vanishes through 5 layers
    kw = {"epochs": 5, "weight_scale": 0.01, "progress": False}
    plain = train_mlp(data, [64] * 5, **kw)
    bn = train_mlp(data, [64] * 5, batchnorm=make_batchnorm(Spy()), **kw)
    assert bn.final()["val_acc"] > plain.final()["val_acc"] + 0.3


def test_penalty_hooks_are_called_and_counted(data):
    spy = Spy()
    pen, grad = make_l2(spy)
    lam = 0.05
    hist = train_mlp(data, [32, 16], epochs=3, penalty=(pen, grad, lam), progress=False)
    shapes = [(64, 32), (32, 16), (16, 10)]
    assert {tuple(map(tuple, c[1])) for c in spy.calls} == {tuple(shapes)}
    assert all(c[2] == lam for c in spy.calls)
    assert sum(c[0] == "grad" for c in spy.calls) == len(hist.iter_loss)
    # train_loss includes the penalty, val_loss does not
    weights = [hist.params[f"W{i}"] for i in (1, 2, 3)]
    data_loss, _ = evaluate(hist, data.X_train, data.y_train)
    assert hist.train_loss[-1] == pytest.approx(data_loss + pen(weights, lam))
    assert hist.val_loss[-1] == pytest.approx(evaluate(hist, data.X_val, data.y_val)[0])
    # and it shrinks the weights
    plain = train_mlp(data, [32, 16], epochs=3, progress=False)
    assert np.sum(weights[0] ** 2) < 0.8 * np.sum(plain.params["W1"] ** 2)


def test_backward_of_the_whole_network_matches_finite_differences():
    """The trainer's chaining of the layers (with BN and a penalty) is itself correct."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5)) * 2 + 1
    y = rng.integers(0, 4, 6)
    params = {
        "W1": rng.standard_normal((5, 7)),
        "b1": rng.standard_normal(7),
        "gamma1": rng.uniform(0.5, 1.5, 7),
        "beta1": rng.standard_normal(7),
        "W2": rng.standard_normal((7, 4)),
        "b2": rng.standard_normal(4),
    }
    bn_fwd, bn_bwd = make_batchnorm(Spy())

    def loss_fn():
        bn_params = [{"mode": "train", "eps": 1e-3, "momentum": 0.9,
                      "running_mean": np.zeros(7), "running_var": np.ones(7)}]  # fmt: skip
        scores, caches = _forward(
            params, X, mode="train", batchnorm_forward=bn_fwd, bn_params=bn_params
        )
        loss, dscores = softmax_cross_entropy(scores, y)
        return loss, _backward(dscores, caches, batchnorm_backward=bn_bwd)

    _, grads = loss_fn()
    for name in ("W1", "gamma1", "beta1", "W2", "b2"):
        num = numerical_gradient(lambda _: loss_fn()[0], params[name])
        assert rel_error(grads[name], num) < 1e-6, name
    # the bias before batch norm is redundant: its gradient is (about) zero
    assert np.max(np.abs(grads["b1"])) < 1e-12


def test_divergence_is_caught_quietly(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = train_mlp(data, [64, 64], epochs=50, lr=1e4, progress=False)
    assert hist.diverged
    # training stopped in the epoch it diverged; that epoch was measured once more
    assert hist.epochs[-1] < 50 and hist.epochs == list(range(1, len(hist.epochs) + 1))
    assert not np.isfinite(hist.train_loss[-1])
    assert not np.isfinite(hist.iter_loss[-1])
    assert len(hist.iter_loss) < 50 * 4
    f = hist.final()
    assert 0 <= f["val_acc"] <= 0.5  # a broken network, not a crash


def test_plain_object_data_and_float32_inputs(data):
    obj = types.SimpleNamespace(
        X_train=data.X_train.astype(np.float32),
        y_train=data.y_train.astype(np.int32),
        X_val=data.X_val.astype(np.float32),
        y_val=data.y_val,
    )
    hist = train_mlp(obj, [16], epochs=2, progress=False)
    assert hist.params["W2"].shape == (16, 10)
    assert all(p.dtype == np.float64 for p in hist.params.values())


def test_eval_every(data):
    hist = train_mlp(data, [16], epochs=20, eval_every=7, progress=False)
    assert hist.epochs == [7, 14, 20] and len(hist.val_acc) == 3


def test_softmax_regression_without_hidden_layers(data):
    hist = train_mlp(data, [], epochs=5, progress=False)
    assert sorted(hist.params) == ["W1", "b1"] and hist.final()["val_acc"] > 0.8


def test_progress_bar(data, capsys, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    train_mlp(data, [8], epochs=2, progress=True)
    assert "epochs" in capsys.readouterr().err
    # never under nbgrader: any stderr output fails a grade cell
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    train_mlp(data, [8], epochs=2, progress=True)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_dims": 64}, "hidden_dims"),
        ({"hidden_dims": [64, 0]}, "hidden_dims"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_scale": -1.0}, "weight_scale"),
        ({"eval_every": 0}, "eval_every"),
        ({"dropout": (lambda: 0, lambda: 0)}, "dropout"),
        ({"dropout": (lambda: 0, lambda: 0, 1.0)}, "p_drop"),
        ({"batchnorm": (None, None)}, "batchnorm"),
        ({"penalty": (lambda: 0, lambda: 0, -1.0)}, "lam"),
    ],
)
def test_bad_arguments(data, kwargs, message):
    kwargs = {"hidden_dims": [8], **kwargs}
    with pytest.raises(ValueError, match=message):
        train_mlp(data, progress=False, **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="X_val"):
        train_mlp(types.SimpleNamespace(X_train=np.zeros((2, 3)), y_train=np.zeros(2)), [4])


def test_quick_mode(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("DNN_KIT_QUICK", raising=False)
    assert quick_mode() is False
    monkeypatch.setenv("DNN_KIT_QUICK", "0")
    assert quick_mode() is False
    monkeypatch.setenv("DNN_KIT_QUICK", "1")
    assert quick_mode() is True
    monkeypatch.delenv("DNN_KIT_QUICK")
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert quick_mode() is True
