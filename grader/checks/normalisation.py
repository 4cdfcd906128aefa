r"""Normalisation layers and their catalogued mistakes, forward and exact backward (trusted side).

Batch norm (statistics over the examples, ``axis=0``) and layer norm (over the features,
``axis=1``) differ only in the axis, so their checks share these formulas: the mistaken
forwards a student's output is matched against, and, for errors carried forward, the exact
gradients of each mistaken forward (analytic; the tests compare them with finite differences).
"""

from __future__ import annotations

import numpy as np


def normalise(x, eps, *, axis=0, ddof=0, outside=False):
    r""":math:`\hat x`, the divisor :math:`s` and :math:`\sigma^2` of a normalisation along ``axis``.

    :math:`s = \sqrt{\sigma^2 + \epsilon}` (``outside``: :math:`\sqrt{\sigma^2} + \epsilon`) with
    :math:`\sigma^2 = \frac{1}{M - \text{ddof}} \sum (x - \mu)^2` over the M entries of ``axis``.
    """
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, ddof=ddof, keepdims=True)
    s = np.sqrt(var) + eps if outside else np.sqrt(var + eps)
    return (x - mu) / s, s, var


def variant_forward(x, gamma, beta, eps, *, axis=0, ddof=0, outside=False, use_gamma=True):
    """The output of the normalisation (defaults: batch norm) or of one of its mistakes."""
    xhat, _, _ = normalise(x, eps, axis=axis, ddof=ddof, outside=outside)
    return (gamma * xhat if use_gamma else xhat) + beta


def variant_backward(x, gamma, dout, eps, *, axis=0, ddof=0, outside=False, use_gamma=True):
    r"""The exact gradients of :func:`variant_forward` (same options), analytic.

    With :math:`g = \gamma\,\mathrm{dout}` (or ``dout`` without γ) and means over ``axis``,

    .. math:: dx = \frac{1}{s}\left(g - \overline{g} - k\, \hat x\, \overline{g \hat x}\right),

    where :math:`k = M / (M - \text{ddof})` for ε inside the root and
    :math:`k = s / \sqrt{\sigma^2}` for ε outside it. :math:`d\gamma = \sum_i \mathrm{dout}\,\hat x`
    (0 when the forward ignores γ) and :math:`d\beta = \sum_i \mathrm{dout}`, over the examples.
    """
    xhat, s, var = normalise(x, eps, axis=axis, ddof=ddof, outside=outside)
    g = gamma * dout if use_gamma else dout
    m = x.shape[axis]
    k = s / np.sqrt(var) if outside else m / (m - ddof)
    mean = lambda v: v.mean(axis=axis, keepdims=True)  # noqa: E731
    dx = (g - mean(g) - k * xhat * mean(g * xhat)) / s
    dgamma = (dout * xhat).sum(axis=0) if use_gamma else np.zeros_like(gamma)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dout.sum(axis=0)}
