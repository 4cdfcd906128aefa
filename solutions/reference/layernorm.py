r"""Reference solution: layer normalization for fully connected layers (instructor-only).

The lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are what nbgrader removes when
it makes the student notebook; the rest of each function (signature and docstring) is the stub.

Conventions (the course contract): ``x`` has shape (N, D), one example per row. Layer
normalization normalises every *example* (row) over its D features (axis 1), with the biased
variance (divide by D); ``gamma`` and ``beta`` have shape (D,), one per feature, as in batch
norm. There are no running statistics and no mode: an example's output never depends on the
rest of the batch, so training and test are the same computation.

The computation graph (``cache`` keeps its nodes)::

    mu   = mean(x, axis=1, keepdims)        (N, 1)  per-example mean
    xc   = x - mu                           (N, D)
    var  = mean(xc**2, axis=1, keepdims)    (N, 1)  biased per-example variance
    istd = 1 / sqrt(var + eps)              (N, 1)
    xhat = xc * istd                        (N, D)
    out  = gamma * xhat + beta              (N, D)

It is batch normalization's graph with the roles of the axes exchanged for the statistics
(axis 1 instead of 0), while gamma and beta still sum their gradients over the rows (axis 0).
"""

import numpy as np


def layernorm_forward(x, gamma, beta, ln_param):
    r"""Layer normalization, forward pass.

    Every example (row) is normalised with its own mean and biased variance over the D
    features, then scaled and shifted per feature:

    .. math::

        \mu_i = \frac{1}{D}\sum_{j=1}^{D} x_{ij}, \qquad
        \sigma_i^2 = \frac{1}{D}\sum_{j=1}^{D} (x_{ij} - \mu_i)^2, \qquad
        \mathrm{out}_{ij} = \gamma_j\, \frac{x_{ij} - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}} + \beta_j

    Parameters
    ----------
    x : ndarray of shape (N, D)
        Input, float64; rows are examples, columns are features.
    gamma : ndarray of shape (D,)
        Scale :math:`\gamma`, one per feature.
    beta : ndarray of shape (D,)
        Shift :math:`\beta`, one per feature.
    ln_param : dict
        ``"eps"`` (optional, default ``1e-3`` as for batch norm in this course):
        :math:`\epsilon`, added to the variance *inside* the square root. Nothing else is
        read, and nothing is written back: layer norm keeps no running statistics.

    Returns
    -------
    out : ndarray of shape (N, D)
        Normalised, scaled and shifted output.
    cache : dict
        What the backward pass needs: ``x``, ``gamma``, ``eps``, ``mu``, ``xc``, ``var``,
        ``istd``, ``xhat`` (the statistics with shape (N, 1)).
    """
    ### BEGIN SOLUTION
    eps = ln_param.get("eps", 1e-3)
    mu = np.mean(x, axis=1, keepdims=True)
    xc = x - mu
    var = np.mean(xc**2, axis=1, keepdims=True)  # biased: divide by D
    istd = 1.0 / np.sqrt(var + eps)
    xhat = xc * istd
    out = gamma * xhat + beta
    cache = {"x": x, "gamma": gamma, "eps": eps, "mu": mu, "xc": xc, "var": var}
    cache |= {"istd": istd, "xhat": xhat}
    return out, cache
    ### END SOLUTION


def layernorm_backward(dout, cache):
    r"""Layer normalization, backward pass.

    The parameters were broadcast over the rows, so their gradients sum over axis 0:

    .. math::

        \frac{\partial L}{\partial \beta_j} = \sum_i \mathrm{dout}_{ij}, \qquad
        \frac{\partial L}{\partial \gamma_j} = \sum_i \mathrm{dout}_{ij}\, \hat x_{ij}

    Each row's statistics depend on every feature of that row, so, with
    :math:`g_{ij} = \gamma_j\,\mathrm{dout}_{ij}` (the gradient reaching :math:`\hat x`), the
    mean and variance paths remove the row mean of :math:`g` and its component along
    :math:`\hat x` (the same closed form as batch norm, over axis 1):

    .. math::

        \frac{\partial L}{\partial x_{ij}} = \frac{1}{\sqrt{\sigma_i^2 + \epsilon}}
            \left( g_{ij} - \frac{1}{D}\sum_k g_{ik}
                   - \hat x_{ij}\, \frac{1}{D}\sum_k g_{ik}\, \hat x_{ik} \right)

    Parameters
    ----------
    dout : ndarray of shape (N, D)
        Upstream gradient :math:`\partial L / \partial\,\mathrm{out}`.
    cache : dict
        The ``cache`` returned by ``layernorm_forward``.

    Returns
    -------
    dx : ndarray of shape (N, D)
        Gradient with respect to ``x``.
    dgamma : ndarray of shape (D,)
        Gradient with respect to ``gamma``.
    dbeta : ndarray of shape (D,)
        Gradient with respect to ``beta``.
    """
    ### BEGIN SOLUTION
    gamma, istd, xhat = cache["gamma"], cache["istd"], cache["xhat"]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    g = dout * gamma  # gradient reaching xhat, (N, D)
    mean_g = np.mean(g, axis=1, keepdims=True)  # the mean path
    mean_gx = np.mean(g * xhat, axis=1, keepdims=True)  # the variance path
    dx = istd * (g - mean_g - xhat * mean_gx)
    return dx, dgamma, dbeta
    ### END SOLUTION
