"""A small multi-layer perceptron trainer that runs on the student's own layer functions.

The regularization layers are passed in as functions, so the experiments in the notebooks (the
effect of L1/L2 penalties, dropout and batch normalization) run on exactly the code the student
wrote. Affine, ReLU and the loss come from :mod:`grader.toolkit.layers`.

Architecture, for every hidden layer ``l = 1 .. L-1``::

    affine -> [batchnorm] -> relu -> [dropout]

then a final affine layer and the softmax cross-entropy loss. Optimizer: mini-batch SGD with
(heavy-ball) momentum, a fresh shuffle of the training set every epoch.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .errors import ToolkitUsageError
from .layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)

BN_EPS = 1e-3  # the slides' epsilon, the kit's contract default
BN_MOMENTUM = 0.9  # running = momentum * running + (1 - momentum) * batch


def quick_mode() -> bool:
    """Whether experiments should be shortened.

    True when the notebook is executed by nbgrader (``autograde`` or ``validate`` set the
    environment variable ``NBGRADER_EXECUTION``) or when ``DNN_KIT_QUICK=1`` (e.g. in CI).
    Notebooks use it to run fewer epochs or seeds.

    Returns
    -------
    bool
    """
    return bool(os.environ.get("NBGRADER_EXECUTION")) or os.environ.get("DNN_KIT_QUICK") == "1"


@dataclass
class History:
    """What :func:`train_mlp` measured, and the trained network.

    Attributes
    ----------
    train_loss : list of float
        Per evaluated epoch: data loss plus penalty on the whole training split, in test mode
        (no dropout, batch norm with running statistics).
    train_acc : list of float
        Per evaluated epoch: training accuracy in test mode, in [0, 1].
    val_loss : list of float
        Per evaluated epoch: validation data loss (no penalty), test mode.
    val_acc : list of float
        Per evaluated epoch: validation accuracy, test mode.
    iter_loss : list of float
        Per iteration: the mini-batch loss in training mode, penalty included.
    params : dict of str to ndarray
        Final parameters ``"W1", "b1", ..., "WL", "bL"`` and, with batch norm,
        ``"gamma1", "beta1", ..., "gamma{L-1}", "beta{L-1}"``.
    bn_params : list of dict
        Final ``bn_param`` of every batch-norm layer (running statistics); empty without BN.
    seconds : float
        Wall-clock training time.
    epochs : list of int
        The epoch (1-based) at which each per-epoch entry was measured; all of them unless
        ``eval_every > 1`` or the run diverged.
    diverged : bool
        True if the loss became non-finite; training then stopped early and the last entries
        describe the broken network.
    config : dict
        The hyper-parameters of the run.
    """

    train_loss: list[float]
    train_acc: list[float]
    val_loss: list[float]
    val_acc: list[float]
    iter_loss: list[float]
    params: dict[str, np.ndarray]
    bn_params: list[dict]
    seconds: float
    epochs: list[int] = field(default_factory=list)
    diverged: bool = False
    config: dict[str, Any] = field(default_factory=dict)

    def final(self, last: int = 1) -> dict[str, float]:
        """The last measurement, or the mean of the last few.

        Parameters
        ----------
        last : int
            Average the last ``last`` evaluations (one evaluation at the end is noisy: the
            network still moves from epoch to epoch).

        Returns
        -------
        dict
            ``train_acc``, ``val_acc``, ``train_loss``, ``val_loss`` and
            ``gap = train_acc - val_acc`` (NaN when nothing was measured).
        """
        k = max(1, int(last))

        def last_mean(values: list[float]) -> float:
            return float(np.mean(values[-k:])) if values else math.nan

        out = {
            "train_acc": last_mean(self.train_acc),
            "val_acc": last_mean(self.val_acc),
            "train_loss": last_mean(self.train_loss),
            "val_loss": last_mean(self.val_loss),
        }
        out["gap"] = out["train_acc"] - out["val_acc"]
        return out

    def __repr__(self) -> str:
        # the default repr would print every weight matrix in a notebook cell
        f = self.final()
        return (
            f"History(epochs={self.epochs[-1] if self.epochs else 0}, "
            f"train_acc={f['train_acc']:.3f}, val_acc={f['val_acc']:.3f}, "
            f"train_loss={f['train_loss']:.4g}, val_loss={f['val_loss']:.4g}, "
            f"diverged={self.diverged}, seconds={self.seconds:.2f})"
        )


def _n_layers(params: dict[str, np.ndarray]) -> int:
    n = 0
    while f"W{n + 1}" in params:
        n += 1
    if n == 0:
        raise ToolkitUsageError('params has no "W1": expected keys "W1", "b1", ..., "WL", "bL"')
    return n


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _same_shape(name: str, out: Any, x: np.ndarray) -> np.ndarray:
    """``out`` as float64, after checking that a layer kept its input's shape."""
    out = _f64(out)
    if out.shape != x.shape:
        raise ToolkitUsageError(
            f"{name} returned an output of shape {out.shape} for an input of shape {x.shape}: "
            "it must keep the shape (N, D) of its input"
        )
    return out


def _forward(params, X, *, mode, dropout=None, batchnorm_forward=None, bn_params=None, rng=None):
    """Scores of the network and the caches of every layer (see the module docstring)."""
    __tracebackhide__ = True  # noqa: F841 - IPython and pytest hide this frame in tracebacks
    n_layers = _n_layers(params)
    caches = []
    h = X
    for i in range(1, n_layers):
        h, c_aff = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        c_bn = c_drop = None
        if batchnorm_forward is not None:
            bn_param = bn_params[i - 1]
            bn_param["mode"] = mode
            out, c_bn = batchnorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"], bn_param)
            h = _same_shape("batchnorm_forward", out, h)
        h, c_relu = relu_forward(h)
        if dropout is not None:
            drop_fwd, _, p_drop = dropout
            out, c_drop = drop_fwd(h, p_drop, mode=mode, rng=rng)
            h = _same_shape("dropout_forward", out, h)
        caches.append((c_aff, c_bn, c_relu, c_drop))
    scores, c_aff = affine_forward(h, params[f"W{n_layers}"], params[f"b{n_layers}"])
    caches.append(c_aff)
    return scores, caches


def _backward(dscores, caches, *, dropout=None, batchnorm_backward=None):
    """Gradients of all parameters, from the caches of :func:`_forward`."""
    __tracebackhide__ = True  # noqa: F841
    grads = {}
    n_layers = len(caches)
    dh, grads[f"W{n_layers}"], grads[f"b{n_layers}"] = affine_backward(dscores, caches[-1])
    for i in range(n_layers - 1, 0, -1):
        c_aff, c_bn, c_relu, c_drop = caches[i - 1]
        if dropout is not None:
            dh = _f64(dropout[1](dh, c_drop))
        dh = relu_backward(dh, c_relu)
        if batchnorm_backward is not None:
            dh, dgamma, dbeta = batchnorm_backward(dh, c_bn)
            dh = _f64(dh)
            grads[f"gamma{i}"], grads[f"beta{i}"] = _f64(dgamma), _f64(dbeta)
        dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dh, c_aff)
    return grads


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    # a row with a non-finite score counts as wrong (argmax would pick the first NaN)
    ok = np.isfinite(scores).all(axis=1)
    return float(np.mean((scores.argmax(axis=1) == y) & ok))


def evaluate(
    params,
    X,
    y,
    *,
    batchnorm_forward: Callable | None = None,
    bn_params: list[dict] | None = None,
) -> tuple[float, float]:
    r"""Loss and accuracy of a trained network in test mode.

    Parameters
    ----------
    params : dict or History
        The parameters (``History.params``) or a :class:`History`, whose ``bn_params`` are then
        used too.
    X : ndarray of shape (N, D)
    y : ndarray of shape (N,), int
    batchnorm_forward : callable, optional
        Required when the network has batch norm (``"gamma1"`` in ``params``): the same
        ``batchnorm_forward`` it was trained with; it is called with ``mode="test"``.
    bn_params : list of dict, optional
        The running statistics (``History.bn_params``).

    Returns
    -------
    loss : float
        Mean softmax cross-entropy (no penalty).
    acc : float
        Accuracy in [0, 1].
    """
    __tracebackhide__ = True  # noqa: F841
    if isinstance(params, History):
        bn_params = params.bn_params if bn_params is None else bn_params
        params = params.params
    if "gamma1" in params and (batchnorm_forward is None or not bn_params):
        raise ToolkitUsageError(
            "this network has batch norm: pass batchnorm_forward= and bn_params= "
            "(or a History, which holds the bn_params)"
        )
    if "gamma1" not in params:
        batchnorm_forward = None
    X, y = _f64(X), np.asarray(y).astype(np.int64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        scores, _ = _forward(
            params, X, mode="test", batchnorm_forward=batchnorm_forward, bn_params=bn_params
        )
        loss, _ = softmax_cross_entropy(scores, y)
    return loss, _accuracy(scores, y)


def _check_hook(name, value, n, spec):
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) != n:
        raise ToolkitUsageError(f"{name} must be None or a tuple {spec}, got {value!r}")
    for i in range(2):
        if not callable(value[i]):
            raise ToolkitUsageError(f"{name}[{i}] must be a function, got {value[i]!r}")
    return tuple(value)


def _check_args(data, hidden_dims, epochs, batch_size, lr, momentum, weight_scale, eval_every):
    for attr in ("X_train", "y_train", "X_val", "y_val"):
        if not hasattr(data, attr):
            raise ToolkitUsageError(
                f"data must have X_train, y_train, X_val, y_val; {attr} is missing"
            )
    if isinstance(hidden_dims, int) or not all(
        isinstance(h, int | np.integer) and not isinstance(h, bool) and h > 0 for h in hidden_dims
    ):
        raise ToolkitUsageError(
            f"hidden_dims must be a list of positive integers, got {hidden_dims!r}"
        )
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ToolkitUsageError(f"{name} must be a positive integer, got {value!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ToolkitUsageError(f"lr must be a positive number, got {lr!r}")
    if not 0 <= momentum < 1:
        raise ToolkitUsageError(f"momentum must be in [0, 1), got {momentum!r}")
    if weight_scale is not None and not (np.isfinite(weight_scale) and weight_scale > 0):
        raise ToolkitUsageError(
            f"weight_scale must be None (He init) or a positive number, got {weight_scale!r}"
        )


def _as_xy(X, y, name):
    X = _f64(X)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ToolkitUsageError(
            f"X_{name} must be (N, D) and y_{name} (N,); got {X.shape} and {y.shape}"
        )
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ToolkitUsageError(f"y_{name} must hold integer class labels, got dtype {y.dtype}")
    return X, y.astype(np.int64)


def train_mlp(
    data,
    hidden_dims: Sequence[int],
    *,
    epochs: int = 150,
    batch_size: int = 50,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_scale: float | None = None,
    seed: int = 0,
    dropout: tuple[Callable, Callable, float] | None = None,
    batchnorm: tuple[Callable, Callable] | None = None,
    penalty: tuple[Callable, Callable, float] | None = None,
    progress: bool = True,
    eval_every: int = 1,
) -> History:
    r"""Train a fully connected ReLU network with mini-batch SGD and momentum.

    Every hidden layer is ``affine -> [batchnorm] -> relu -> [dropout]``; the output layer is an
    affine layer followed by the softmax cross-entropy loss. The objective and the update are

    .. math::

        J(\theta) = \frac{1}{B} \sum_{n \in \text{batch}} -\log p_{n, y_n} + R(W_1, \dots, W_L),
        \qquad v \leftarrow \mu v - \eta \nabla_\theta J, \qquad \theta \leftarrow \theta + v

    with :math:`R` the optional penalty, :math:`\eta` = ``lr`` and :math:`\mu` = ``momentum``.

    Parameters
    ----------
    data : DigitsSplit or object
        Anything with ``X_train`` (N, D), ``y_train`` (N,), ``X_val``, ``y_val``; the number of
        classes is ``data.classes`` if present, else the largest label + 1.
    hidden_dims : sequence of int
        Widths of the hidden layers, e.g. ``[256, 256]``; ``[]`` is softmax regression.
    epochs : int
        Passes over the training set; each one shuffles it and walks through it in mini-batches
        (the last one may be smaller).
    batch_size : int
        Mini-batch size (capped at the training-set size).
    lr, momentum : float
        Learning rate :math:`\eta > 0` and momentum :math:`0 \le \mu < 1`.
    weight_scale : float, optional
        ``None``: He initialization, :math:`W \sim \mathcal{N}(0, 2/\text{fan\_in})`; a float
        ``s``: :math:`W \sim \mathcal{N}(0, s^2)` for every layer. Biases start at 0, ``gamma``
        at 1 and ``beta`` at 0.
    seed : int
        All randomness comes from it: ``np.random.default_rng(seed)`` draws the initial weights,
        then the shuffles; dropout gets ``rng=np.random.default_rng(seed + 1)``, one generator
        for the whole run, so every mini-batch gets a new mask. Same seed, same run.
    dropout : (dropout_forward, dropout_backward, p_drop), optional
        Called as ``dropout_forward(h, p_drop, mode="train" | "test", rng=rng) -> (out, cache)``
        and ``dropout_backward(dout, cache) -> dx``; ``p_drop`` is the probability of dropping.
    batchnorm : (batchnorm_forward, batchnorm_backward), optional
        Called as ``batchnorm_forward(h, gamma, beta, bn_param) -> (out, cache)`` and
        ``batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta)``. The trainer makes one
        ``bn_param`` per layer, ``{"mode", "eps": 1e-3, "momentum": 0.9, "running_mean": zeros,
        "running_var": ones}``, and sets ``"mode"`` to ``"train"`` or ``"test"``; the student's
        function updates the running statistics in it. The affine bias before batch norm is
        kept for simplicity although it is redundant (batch norm subtracts it again, so its
        gradient is about 0).
    penalty : (penalty_fn, penalty_grad_fn, lam), optional
        ``penalty_fn(weights, lam) -> float`` and ``penalty_grad_fn(weights, lam) -> list`` of
        arrays, where ``weights = [W1, ..., WL]`` (weights only: no biases, no gamma/beta).
    progress : bool
        Show a tqdm progress bar over the epochs (never under nbgrader, whose grade cells
        fail on any stderr output).
    eval_every : int
        Measure train/validation loss and accuracy every this many epochs (and after the last).

    Returns
    -------
    History
        Learning curves, final parameters and running statistics. If the loss becomes
        non-finite (e.g. a learning rate that is far too large) training stops, the network is
        measured once more, and ``History.diverged`` is True; no overflow warnings are printed.
    """
    __tracebackhide__ = True  # noqa: F841 - a student's error shows its own frames, not ours
    # The matrices here are small (a mini-batch of 50 times a few hundred units): BLAS threads
    # gain nothing, and on a busy 2-core machine OpenBLAS's spinning threads made a 1 s run 23 s.
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(
            data,
            hidden_dims,
            epochs,
            batch_size,
            lr,
            momentum,
            weight_scale,
            seed,
            dropout,
            batchnorm,
            penalty,
            progress,
            eval_every,
        )


def _train(
    data,
    hidden_dims,
    epochs,
    batch_size,
    lr,
    momentum,
    weight_scale,
    seed,
    dropout,
    batchnorm,
    penalty,
    progress,
    eval_every,
) -> History:
    """The body of :func:`train_mlp`, with the BLAS thread limit already set."""
    __tracebackhide__ = True  # noqa: F841
    _check_args(data, hidden_dims, epochs, batch_size, lr, momentum, weight_scale, eval_every)
    dropout = _check_hook("dropout", dropout, 3, "(dropout_forward, dropout_backward, p_drop)")
    batchnorm = _check_hook("batchnorm", batchnorm, 2, "(batchnorm_forward, batchnorm_backward)")
    penalty = _check_hook("penalty", penalty, 3, "(penalty_fn, penalty_grad_fn, lam)")
    if dropout is not None and not 0 <= dropout[2] < 1:
        raise ToolkitUsageError(f"p_drop must be in [0, 1), got {dropout[2]!r}")
    if penalty is not None and not penalty[2] >= 0:
        raise ToolkitUsageError(f"the penalty's lam must be >= 0, got {penalty[2]!r}")

    X, y = _as_xy(data.X_train, data.y_train, "train")
    X_val, y_val = _as_xy(data.X_val, data.y_val, "val")
    if X.shape[0] == 0:
        raise ToolkitUsageError("the training split is empty")
    if X_val.shape[1] != X.shape[1]:
        raise ToolkitUsageError(f"X_val has {X_val.shape[1]} features, X_train {X.shape[1]}")
    classes = getattr(data, "classes", None) or int(max(y.max(), y_val.max(initial=0))) + 1
    if y.min() < 0 or max(y.max(), y_val.max(initial=0)) >= classes:
        raise ToolkitUsageError(f"labels must be in 0..{classes - 1}")

    rng = np.random.default_rng(seed)
    drop_rng = np.random.default_rng(seed + 1)
    dims = [X.shape[1], *[int(h) for h in hidden_dims], classes]
    n_layers = len(dims) - 1
    params: dict[str, np.ndarray] = {}
    for i in range(1, n_layers + 1):
        scale = math.sqrt(2.0 / dims[i - 1]) if weight_scale is None else float(weight_scale)
        params[f"W{i}"] = scale * rng.standard_normal((dims[i - 1], dims[i]))
        params[f"b{i}"] = np.zeros(dims[i])
    bn_params: list[dict] = []
    if batchnorm is not None:
        for i in range(1, n_layers):
            params[f"gamma{i}"] = np.ones(dims[i])
            params[f"beta{i}"] = np.zeros(dims[i])
            bn_params.append(
                {
                    "mode": "train",
                    "eps": BN_EPS,
                    "momentum": BN_MOMENTUM,
                    "running_mean": np.zeros(dims[i]),
                    "running_var": np.ones(dims[i]),
                }
            )
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    bn_fwd, bn_bwd = batchnorm if batchnorm is not None else (None, None)
    weight_keys = [f"W{i}" for i in range(1, n_layers + 1)]

    def penalty_value() -> float:
        return float(penalty[0]([params[k] for k in weight_keys], penalty[2])) if penalty else 0.0

    hist = History([], [], [], [], [], params, bn_params, 0.0)
    hist.config = {
        "hidden_dims": list(dims[1:-1]),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "momentum": momentum,
        "weight_scale": weight_scale,
        "seed": seed,
        "p_drop": None if dropout is None else dropout[2],
        "batchnorm": batchnorm is not None,
        "lam": None if penalty is None else penalty[2],
    }

    def measure(epoch: int) -> None:
        __tracebackhide__ = True  # noqa: F841
        kw = {"dropout": dropout, "batchnorm_forward": bn_fwd, "bn_params": bn_params}
        scores, _ = _forward(params, X, mode="test", rng=drop_rng, **kw)
        loss, _ = softmax_cross_entropy(scores, y)
        hist.train_loss.append(loss + penalty_value())
        hist.train_acc.append(_accuracy(scores, y))
        if X_val.shape[0]:
            scores, _ = _forward(params, X_val, mode="test", rng=drop_rng, **kw)
            loss, _ = softmax_cross_entropy(scores, y_val)
            hist.val_loss.append(loss)
            hist.val_acc.append(_accuracy(scores, y_val))
        else:
            hist.val_loss.append(math.nan)
            hist.val_acc.append(math.nan)
        hist.epochs.append(epoch)

    bar = _progress_bar(epochs) if progress and not os.environ.get("NBGRADER_EXECUTION") else None
    N = X.shape[0]
    batch_size = min(int(batch_size), N)
    start = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for epoch in range(1, epochs + 1):
                order = rng.permutation(N)
                for i in range(0, N, batch_size):
                    idx = order[i : i + batch_size]
                    scores, caches = _forward(
                        params,
                        X[idx],
                        mode="train",
                        dropout=dropout,
                        batchnorm_forward=bn_fwd,
                        bn_params=bn_params,
                        rng=drop_rng,
                    )
                    loss, dscores = softmax_cross_entropy(scores, y[idx])
                    grads = _backward(dscores, caches, dropout=dropout, batchnorm_backward=bn_bwd)
                    if penalty is not None:
                        weights = [params[k] for k in weight_keys]
                        loss += float(penalty[0](weights, penalty[2]))
                        pgrads = penalty[1](weights, penalty[2])
                        if len(pgrads) != n_layers:
                            raise ToolkitUsageError(
                                f"penalty_grad_fn returned {len(pgrads)} arrays for "
                                f"{n_layers} weight matrices"
                            )
                        for k, g in zip(weight_keys, pgrads, strict=True):
                            grads[k] = grads[k] + _f64(g)
                    hist.iter_loss.append(loss)
                    if not math.isfinite(loss):
                        hist.diverged = True
                        break
                    for k, p in params.items():
                        v = velocity[k]
                        v *= momentum
                        v -= lr * grads[k]
                        p += v
                if hist.diverged or epoch % eval_every == 0 or epoch == epochs:
                    measure(epoch)
                    if not math.isfinite(hist.train_loss[-1]):
                        hist.diverged = True
                    if bar is not None:
                        bar.set_postfix(val_acc=f"{hist.val_acc[-1]:.3f}", refresh=False)
                if bar is not None:
                    bar.update(1)
                if hist.diverged:
                    break
    finally:
        if bar is not None:
            bar.close()
    hist.seconds = time.perf_counter() - start
    return hist


def _progress_bar(total: int):
    # tqdm.auto warns at import when a notebook lacks ipywidgets: import late and quietly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

        return tqdm(total=total, leave=False, desc="epochs")
