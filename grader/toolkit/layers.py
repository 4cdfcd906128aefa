"""Layers that are given, not exercises: affine, ReLU and the softmax cross-entropy loss.

CS231n-style: every forward function returns ``(out, cache)`` and the matching backward function
takes the upstream gradient ``dout`` and that ``cache``. Rows are examples; arrays are float64.
"""

from __future__ import annotations

import numpy as np


def affine_forward(x, W, b):
    r"""Fully connected (affine) layer, forward pass.

    .. math:: \mathrm{out} = x W + b

    Parameters
    ----------
    x : ndarray of shape (N, D)
        Inputs, one example per row. An input of shape (N, d_1, ..., d_k) is flattened to
        (N, D) with D = d_1 ... d_k.
    W : ndarray of shape (D, M)
        Weights.
    b : ndarray of shape (M,)
        Biases.

    Returns
    -------
    out : ndarray of shape (N, M)
    cache : tuple
        ``(x, W, b)`` for ``affine_backward``.
    """
    __tracebackhide__ = True  # noqa: F841 - hidden in IPython/pytest tracebacks
    out = x.reshape(x.shape[0], -1) @ W + b
    return out, (x, W, b)


def affine_backward(dout, cache):
    r"""Fully connected (affine) layer, backward pass.

    .. math::

        \frac{\partial L}{\partial x} = \mathrm{dout}\, W^\top, \qquad
        \frac{\partial L}{\partial W} = x^\top \mathrm{dout}, \qquad
        \frac{\partial L}{\partial b} = \sum_{n} \mathrm{dout}_{n,:}

    Parameters
    ----------
    dout : ndarray of shape (N, M)
        Upstream gradient.
    cache : tuple
        The ``cache`` from ``affine_forward``.

    Returns
    -------
    dx : ndarray, the shape of ``x``
    dW : ndarray of shape (D, M)
    db : ndarray of shape (M,)
    """
    __tracebackhide__ = True  # noqa: F841 - hidden in IPython/pytest tracebacks
    x, W, _ = cache
    x2 = x.reshape(x.shape[0], -1)
    dx = (dout @ W.T).reshape(x.shape)
    dW = x2.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db


def relu_forward(x):
    r"""Rectified linear unit, forward pass.

    .. math:: \mathrm{out} = \max(0, x) \quad \text{(element-wise)}

    Parameters
    ----------
    x : ndarray of any shape

    Returns
    -------
    out : ndarray, the shape of ``x``
    cache : ndarray
        ``x``, for ``relu_backward``.
    """
    __tracebackhide__ = True  # noqa: F841 - hidden in IPython/pytest tracebacks
    return np.maximum(x, 0.0), x


def relu_backward(dout, cache):
    r"""Rectified linear unit, backward pass.

    .. math:: \frac{\partial L}{\partial x} = \mathrm{dout} \cdot \mathbb{1}[x > 0]

    The subgradient at exactly 0 is taken as 0.

    Parameters
    ----------
    dout : ndarray
        Upstream gradient, the shape of ``x``.
    cache : ndarray
        The ``cache`` from ``relu_forward`` (the input ``x``).

    Returns
    -------
    dx : ndarray, the shape of ``x``
    """
    __tracebackhide__ = True  # noqa: F841 - hidden in IPython/pytest tracebacks
    return dout * (cache > 0)


def softmax_cross_entropy(scores, y):
    r"""Softmax cross-entropy loss averaged over a batch, and its gradient.

    .. math::

        p_{nk} = \frac{e^{s_{nk}}}{\sum_j e^{s_{nj}}}, \qquad
        L = -\frac{1}{N} \sum_{n} \log p_{n, y_n}, \qquad
        \frac{\partial L}{\partial s_{nk}} = \frac{p_{nk} - \mathbb{1}[k = y_n]}{N}

    The row maximum is subtracted from the scores first (it cancels in :math:`p`), so large
    scores do not overflow; :math:`\log p` is computed as a log-sum-exp, so it never takes the
    log of an underflowed 0.

    Parameters
    ----------
    scores : ndarray of shape (N, C)
        Unnormalized class scores.
    y : ndarray of shape (N,), int
        Correct classes, ``0 <= y[n] < C``.

    Returns
    -------
    loss : float
    dscores : ndarray of shape (N, C)
    """
    __tracebackhide__ = True  # noqa: F841 - hidden in IPython/pytest tracebacks
    N = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = -float(log_probs[rows, y].mean())
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1.0
    dscores /= N
    return loss, dscores
