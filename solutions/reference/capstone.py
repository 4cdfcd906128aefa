r"""Reference solution: the capstone network (instructor-only).

The lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are what nbgrader removes when
it makes the student notebook; the rest of the function (signature and docstring) is the stub.

The network puts all three tools of the lecture into one multi-layer perceptron. With
:math:`L` layers, for every hidden layer :math:`l = 1, \dots, L-1`::

    affine -> [batch norm] -> ReLU -> [dropout]

then the output layer ``affine -> softmax cross-entropy``. The output layer has neither batch
norm nor ReLU nor dropout (the slides' formula :math:`\sigma(\mathrm{BN}(W^L \cdots))` puts them
around the last layer too; a classifier's last layer gives raw scores to the softmax).

``mlp_loss`` calls the layer functions of notebooks 02 and 03 by name: ``dropout_forward``,
``dropout_backward``, ``batchnorm_forward`` and ``batchnorm_backward``. Here they are the
references; in the notebook they are the student's own, re-entered in its solution cells. Affine,
ReLU and the softmax loss are written out inline, because graded code runs with NumPy alone.

Conventions (the course contract):

* ``params`` holds ``"W1", "b1", ..., "WL", "bL"`` (``W_l`` of shape ``(d_{l-1}, d_l)``, ``b_l``
  of shape ``(d_l,)``) and, when the network has batch normalization, ``"gamma1", "beta1", ...,
  "gamma{L-1}", "beta{L-1}"`` (shape ``(d_l,)``). Batch norm is used exactly when ``"gamma1"`` is
  a key; dropout exactly when ``p_drop > 0`` (and then only changes anything in train mode).
* The penalty is :math:`\frac{\lambda}{2}\sum_l \lVert W_l\rVert_F^2` on the weight matrices
  only: no biases, no :math:`\gamma`, no :math:`\beta`.
* ``mode`` is passed on to every dropout and batch-norm layer (``bn_param["mode"]`` is set in the
  caller's dictionaries, which keep the running statistics between calls).
* All dropout layers draw their masks from the one generator ``rng``, so a generator made from a
  fixed seed gives the same masks on every call: that is what makes a finite-difference gradient
  check of the whole network possible.
"""

import numpy as np

from .batchnorm import batchnorm_backward, batchnorm_forward
from .dropout import dropout_backward, dropout_forward

__all__ = ["mlp_loss"]


def mlp_loss(params, X, y=None, *, p_drop=0.0, lam=0.0, mode="train", bn_params=None, rng=None):
    r"""Class scores, or loss and gradients, of an MLP with batch norm, dropout and L2 penalty.

    For every hidden layer :math:`l = 1, \dots, L-1` (with :math:`h_0 = X`)

    .. math::

        a_l = h_{l-1} W_l + b_l, \qquad
        z_l = \mathrm{BN}_{\gamma_l, \beta_l}(a_l), \qquad
        r_l = \max(0, z_l), \qquad
        h_l = \mathrm{dropout}_p(r_l),

    and the output layer gives the scores :math:`s = h_{L-1} W_L + b_L` (no batch norm, ReLU or
    dropout there). Without ``"gamma1"`` in ``params`` the batch-norm step is skipped
    (:math:`z_l = a_l`); with ``p_drop = 0`` so is dropout. The loss is the mean softmax
    cross-entropy plus the L2 penalty on the weights only:

    .. math::

        J = -\frac{1}{N}\sum_{n=1}^{N} \log \frac{e^{s_{n, y_n}}}{\sum_k e^{s_{nk}}}
            + \frac{\lambda}{2}\sum_{l=1}^{L} \lVert W_l \rVert_F^2,

    and its gradients follow the chain rule backwards through the layers:

    .. math::

        \frac{\partial J}{\partial s_{nk}} = \frac{p_{nk} - \mathbb{1}[k = y_n]}{N}, \qquad
        \frac{\partial J}{\partial W_l} = h_{l-1}^\top \frac{\partial J}{\partial a_l}
            + \lambda W_l, \qquad
        \frac{\partial J}{\partial b_l} = \sum_n \frac{\partial J}{\partial a_{l,n}},

    with :math:`\partial J/\partial \gamma_l`, :math:`\partial J/\partial \beta_l` and the
    gradient through batch norm from ``batchnorm_backward``, through dropout from
    ``dropout_backward``, through ReLU :math:`\partial J/\partial z_l = \partial J/\partial r_l
    \odot \mathbb{1}[z_l > 0]`, and :math:`\partial J/\partial h_{l-1} = (\partial J/\partial
    a_l)\, W_l^\top`. The penalty adds :math:`\lambda W_l` to the weights' gradients only.

    Parameters
    ----------
    params : dict of str to ndarray
        ``"W1"`` ... ``"WL"`` of shape ``(d_{l-1}, d_l)``, ``"b1"`` ... ``"bL"`` of shape
        ``(d_l,)``, and for batch norm ``"gamma1"``, ``"beta1"`` ... ``"gamma{L-1}"``,
        ``"beta{L-1}"`` of shape ``(d_l,)``. ``d_0 = D`` and ``d_L = C``. Not modified.
    X : ndarray of shape (N, D)
        Inputs, one example per row.
    y : ndarray of shape (N,), int, optional
        Correct classes, ``0 <= y[n] < C``. Without ``y`` only the scores are returned.
    p_drop : float
        Probability of dropping a unit in every hidden layer (after the ReLU), ``0 <= p < 1``.
    lam : float
        Strength :math:`\lambda \ge 0` of the L2 penalty on the weights.
    mode : {"train", "test"}
        Passed on to every dropout and batch-norm layer: in ``"test"`` mode dropout is the
        identity and batch norm uses its running statistics.
    bn_params : list of dict, optional
        One ``bn_param`` per hidden layer (``L - 1`` of them), required when ``params`` has
        batch norm, ignored otherwise. ``mlp_loss`` sets ``bn_param["mode"] = mode`` in each, and
        ``batchnorm_forward`` updates their running statistics in place in train mode, so they
        carry the running statistics from one call to the next.
    rng : numpy.random.Generator, optional
        The one generator every dropout layer draws its mask from, in layer order;
        ``np.random.default_rng()`` when omitted.

    Returns
    -------
    scores : ndarray of shape (N, C)
        When ``y`` is None: the class scores :math:`s`.
    loss : float
        When ``y`` is given: :math:`J` above.
    grads : dict of str to ndarray
        When ``y`` is given: the gradient of :math:`J` with respect to every entry of ``params``,
        with the same keys and shapes.

    Raises
    ------
    ValueError
        If ``mode`` is neither ``"train"`` nor ``"test"``, or ``params`` has batch norm and
        ``bn_params`` is not a list of ``L - 1`` dictionaries.
    """
    ### BEGIN SOLUTION
    if mode not in ("train", "test"):
        raise ValueError(f'mode must be "train" or "test", got {mode!r}')
    n_layers = 0
    while f"W{n_layers + 1}" in params:
        n_layers += 1
    use_bn = "gamma1" in params
    if use_bn and (bn_params is None or len(bn_params) != n_layers - 1):
        raise ValueError(
            f"a network with batch norm needs bn_params: a list of {n_layers - 1} dicts"
        )
    if rng is None:
        rng = np.random.default_rng()

    # forward: keep what each layer's backward step needs
    h = X
    caches = []
    for layer in range(1, n_layers):
        W, b = params[f"W{layer}"], params[f"b{layer}"]
        z = h @ W + b
        bn_cache = drop_cache = None
        if use_bn:
            bn_param = bn_params[layer - 1]
            bn_param["mode"] = mode
            z, bn_cache = batchnorm_forward(
                z, params[f"gamma{layer}"], params[f"beta{layer}"], bn_param
            )
        relu_mask = z > 0
        h_next = z * relu_mask
        if p_drop > 0:
            h_next, drop_cache = dropout_forward(h_next, p_drop, mode=mode, rng=rng)
        caches.append((h, bn_cache, relu_mask, drop_cache))
        h = h_next
    W_out = params[f"W{n_layers}"]
    scores = h @ W_out + params[f"b{n_layers}"]
    if y is None:
        return scores

    # softmax cross-entropy, with the row maximum subtracted so that exp cannot overflow
    N = X.shape[0]
    rows = np.arange(N)
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    data_loss = -log_probs[rows, y].mean()
    weights = [params[f"W{layer}"] for layer in range(1, n_layers + 1)]
    loss = data_loss + 0.5 * lam * sum(np.sum(W * W) for W in weights)

    # backward
    grads = {}
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1.0
    dscores /= N
    grads[f"W{n_layers}"] = h.T @ dscores + lam * W_out
    grads[f"b{n_layers}"] = dscores.sum(axis=0)
    dh = dscores @ W_out.T
    for layer in range(n_layers - 1, 0, -1):
        h_in, bn_cache, relu_mask, drop_cache = caches[layer - 1]
        if drop_cache is not None:
            dh = dropout_backward(dh, drop_cache)
        dz = dh * relu_mask
        if use_bn:
            dz, grads[f"gamma{layer}"], grads[f"beta{layer}"] = batchnorm_backward(dz, bn_cache)
        W = params[f"W{layer}"]
        grads[f"W{layer}"] = h_in.T @ dz + lam * W  # the penalty: weights only
        grads[f"b{layer}"] = dz.sum(axis=0)
        dh = dz @ W.T
    return float(loss), grads
    ### END SOLUTION
