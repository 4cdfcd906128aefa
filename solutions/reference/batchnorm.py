r"""Reference solution: batch normalization for fully connected layers (instructor-only).

The lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are what nbgrader removes when
it makes the student notebook; the rest of each function (signature and docstring) is the stub.

Conventions (the course contract): ``x`` has shape (N, D), one example per row, and every
feature (column) is normalized over the mini-batch (axis 0). The batch variance is the *biased*
one (divide by N, ``ddof=0``), both for normalizing and for the running variance. PyTorch uses
the same biased variance to normalize, but stores the *unbiased* one (divide by N - 1) in
``running_var``, and its ``momentum`` is ``1 - momentum`` here.

The computation graph that both backward passes differentiate (``cache`` keeps its nodes)::

    mu   = mean(x, axis=0)            (D,)    batch mean
    xc   = x - mu                     (N, D)  centered input
    var  = mean(xc**2, axis=0)        (D,)    biased batch variance
    std  = sqrt(var + eps)            (D,)
    istd = 1 / std                    (D,)
    xhat = xc * istd                  (N, D)  normalized input
    out  = gamma * xhat + beta        (N, D)

In test mode ``mu`` and ``var`` are the running statistics: constants, not functions of ``x``.
"""

import numpy as np


def batchnorm_forward(x, gamma, beta, bn_param):
    r"""Batch normalization, forward pass.

    In training mode every feature is normalized with the statistics of the current mini-batch,
    then scaled and shifted by the learnable :math:`\gamma` and :math:`\beta`:

    .. math::

        \mu_B = \frac{1}{N}\sum_{i=1}^{N} x_i, \qquad
        \sigma_B^2 = \frac{1}{N}\sum_{i=1}^{N} (x_i - \mu_B)^2, \qquad
        \mathrm{out}_i = \gamma\, \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta

    (all per feature; :math:`\sigma_B^2` is the biased variance, dividing by :math:`N`). It
    also updates exponential running averages of the batch statistics, in place in ``bn_param``:

    .. math::

        \mathrm{running\_mean} \leftarrow m\, \mathrm{running\_mean} + (1 - m)\, \mu_B, \qquad
        \mathrm{running\_var} \leftarrow m\, \mathrm{running\_var} + (1 - m)\, \sigma_B^2

    with momentum :math:`m`. In test mode the running statistics replace :math:`\mu_B` and
    :math:`\sigma_B^2` (so the output of an example does not depend on the rest of the batch),
    and ``bn_param`` is left untouched.

    Parameters
    ----------
    x : ndarray of shape (N, D)
        Input, float64; rows are examples, columns are features.
    gamma : ndarray of shape (D,)
        Scale :math:`\gamma`.
    beta : ndarray of shape (D,)
        Shift :math:`\beta`.
    bn_param : dict
        ``"mode"`` (required): ``"train"`` or ``"test"``.
        ``"eps"`` (default ``1e-3``, as on the slides): :math:`\epsilon`, added to the variance
        *inside* the square root.
        ``"momentum"`` (default ``0.9``): :math:`m` above.
        ``"running_mean"`` (default ``np.zeros(D)``) and ``"running_var"`` (default
        ``np.ones(D)``): arrays of shape (D,).
        In train mode the updated ``"running_mean"`` and ``"running_var"`` are stored back into
        ``bn_param`` (as new arrays; they are added if they were missing). In test mode
        ``bn_param`` is not modified.

    Returns
    -------
    out : ndarray of shape (N, D)
        Normalized, scaled and shifted output.
    cache : dict
        What the backward passes need: the mode and the nodes of the computation graph
        (``x``, ``gamma``, ``eps``, ``mu``, ``xc``, ``var``, ``std``, ``istd``, ``xhat``).

    Raises
    ------
    KeyError
        If ``bn_param`` has no ``"mode"``.
    ValueError
        If ``bn_param["mode"]`` is neither ``"train"`` nor ``"test"``.
    """
    ### BEGIN SOLUTION
    if "mode" not in bn_param:
        raise KeyError('bn_param must contain "mode": "train" or "test"')
    mode = bn_param["mode"]
    if mode not in ("train", "test"):
        raise ValueError(f'bn_param["mode"] must be "train" or "test", got {mode!r}')
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))

    if mode == "train":
        mu = np.mean(x, axis=0)
        xc = x - mu
        var = np.mean(xc**2, axis=0)  # biased: divide by N
        bn_param["running_mean"] = momentum * running_mean + (1.0 - momentum) * mu
        bn_param["running_var"] = momentum * running_var + (1.0 - momentum) * var
    else:
        mu = running_mean
        xc = x - mu
        var = running_var
    std = np.sqrt(var + eps)
    istd = 1.0 / std
    xhat = xc * istd
    out = gamma * xhat + beta

    cache = {
        "mode": mode,
        "x": x,
        "gamma": gamma,
        "eps": eps,
        "mu": mu,
        "xc": xc,
        "var": var,
        "std": std,
        "istd": istd,
        "xhat": xhat,
    }
    return out, cache
    ### END SOLUTION


def batchnorm_backward(dout, cache):
    r"""Batch normalization, backward pass, staged through the computation graph.

    Go backwards through the nodes of the forward pass one at a time, multiplying the upstream
    gradient by each node's local derivative, and adding up the gradients of a node that is used
    twice (``xc`` feeds both ``var`` and ``xhat``; ``x`` feeds both ``mu`` and ``xc``)::

        mu   = mean(x, axis=0)
        xc   = x - mu
        var  = mean(xc**2, axis=0)
        std  = sqrt(var + eps)
        istd = 1 / std
        xhat = xc * istd
        out  = gamma * xhat + beta

    A per-feature quantity of shape (D,) that was broadcast over the N rows collects its
    gradient by summing over axis 0:

    .. math::

        \frac{\partial L}{\partial \beta} = \sum_i \mathrm{dout}_i, \qquad
        \frac{\partial L}{\partial \gamma} = \sum_i \mathrm{dout}_i\, \hat x_i

    In test mode :math:`\mu` and :math:`\sigma^2` are the running statistics, constants, so the
    only path from ``x`` to ``out`` is the direct one:
    :math:`\partial L/\partial x = \mathrm{dout}\,\gamma/\sqrt{\mathrm{running\_var} + \epsilon}`.

    Parameters
    ----------
    dout : ndarray of shape (N, D)
        Upstream gradient :math:`\partial L / \partial\,\mathrm{out}`.
    cache : dict
        The ``cache`` returned by ``batchnorm_forward``.

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
    gamma, xc, std, istd, xhat = (cache[k] for k in ("gamma", "xc", "std", "istd", "xhat"))
    N = dout.shape[0]

    # out = gamma * xhat + beta: d out/d beta = 1, d out/d gamma = xhat, d out/d xhat = gamma
    dbeta = np.sum(dout, axis=0)  # beta was broadcast over the rows: sum them
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma

    # xhat = xc * istd: d xhat/d xc = istd (first path into xc), d xhat/d istd = xc
    dxc = dxhat * istd
    if cache["mode"] == "test":
        # mu and var are the running statistics (constants): xc = x - mu gives d xc/d x = 1
        return dxc, dgamma, dbeta
    distd = np.sum(dxhat * xc, axis=0)

    # istd = 1 / std: d istd/d std = -1 / std**2
    dstd = -distd / std**2

    # std = sqrt(var + eps): d std/d var = 1 / (2 * std)
    dvar = dstd / (2.0 * std)

    # var = mean(xc**2, axis=0): d var/d xc = 2 * xc / N (second path into xc: add)
    dxc = dxc + dvar * 2.0 * xc / N

    # xc = x - mu: d xc/d x = 1 (first path into x), d xc/d mu = -1 (summed over rows)
    dmu = -np.sum(dxc, axis=0)

    # mu = mean(x, axis=0): d mu/d x = 1 / N (second path into x: add)
    dx = dxc + dmu / N
    return dx, dgamma, dbeta
    ### END SOLUTION


def batchnorm_backward_alt(dout, cache):
    r"""Batch normalization, backward pass in simplified closed form.

    Collapsing the staged chain rule of ``batchnorm_backward`` on paper gives, per feature,
    with :math:`\hat x_i = (x_i - \mu)/\sqrt{\sigma^2 + \epsilon}`:

    .. math::

        \frac{\partial L}{\partial \beta} = \sum_i \mathrm{dout}_i, \qquad
        \frac{\partial L}{\partial \gamma} = \sum_i \mathrm{dout}_i\, \hat x_i, \qquad
        \frac{\partial L}{\partial x_i} = \frac{\gamma}{N\sqrt{\sigma^2 + \epsilon}}
            \left( N\, \mathrm{dout}_i - \sum_j \mathrm{dout}_j
                   - \hat x_i \sum_j \mathrm{dout}_j\, \hat x_j \right)

    i.e. ``dx = (gamma * istd / N) * (N * dout - dbeta - xhat * dgamma)``: the direct gradient
    :math:`\gamma\,\mathrm{dout}/\sqrt{\sigma^2+\epsilon}` with its mean over the batch removed
    (the mean path) and its component along :math:`\hat x` removed (the variance path). It gives
    the same results as the staged version with fewer passes over the (N, D) arrays.

    In test mode (running statistics are constants) only the direct term remains:
    :math:`\partial L/\partial x = \mathrm{dout}\,\gamma/\sqrt{\mathrm{running\_var} + \epsilon}`.

    Parameters
    ----------
    dout : ndarray of shape (N, D)
        Upstream gradient :math:`\partial L / \partial\,\mathrm{out}`.
    cache : dict
        The ``cache`` returned by ``batchnorm_forward``.

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
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    scale = gamma * istd  # (D,)
    dx = dout * scale
    if cache["mode"] == "test":
        return dx, dgamma, dbeta
    # (gamma*istd/N) * (N*dout - dbeta - xhat*dgamma), with the (D,) factors folded first
    dx -= xhat * (scale * dgamma / N)
    dx -= scale * dbeta / N
    return dx, dgamma, dbeta
    ### END SOLUTION
