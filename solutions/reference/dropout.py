"""Reference solution: inverted dropout (instructor-only).

The lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are what nbgrader removes when
it makes the student notebook; the rest of each function (signature and docstring) is the stub.
"""

import numpy as np


def dropout_forward(x, p_drop, mode="train", rng=None):
    r"""Inverted dropout, forward pass.

    In training mode every unit is dropped (set to zero) independently with probability
    ``p_drop``, and the units that are kept are scaled by :math:`1/(1-p)`, so that the expected
    value of every output equals its input:

    .. math::

        m_{ij} \sim \mathrm{Bernoulli}(1 - p), \qquad
        \mathrm{out}_{ij} = \frac{m_{ij}\, x_{ij}}{1 - p}, \qquad
        \mathbb{E}[\mathrm{out}_{ij}] = x_{ij}.

    A new mask is drawn at every call (every mini-batch). In test mode the layer is the
    identity: all units are connected and nothing is scaled.

    Parameters
    ----------
    x : ndarray of shape (N, D)
        Input activations, float64; rows are examples.
    p_drop : float
        Probability of **dropping** a unit, ``0 <= p_drop < 1`` (the slides' P%, PyTorch's ``p``).
    mode : {"train", "test"}
        ``"train"`` applies a fresh random mask; ``"test"`` returns a copy of the input (the same
        values, a new array).
    rng : numpy.random.Generator, optional
        Source of randomness for the mask; ``np.random.default_rng()`` when omitted.

    Returns
    -------
    out : ndarray of shape (N, D)
        The output, float64.
    cache : object
        Whatever your ``dropout_backward`` needs; it is passed only to that function and no check
        looks inside it. A natural choice is the tuple ``(mask, scale, mode)``, with ``mask`` of
        shape (N, D) (True = kept) and ``scale`` :math:`= 1/(1-p)`.

    Raises
    ------
    ValueError
        If ``p_drop`` is not in :math:`[0, 1)` (``p_drop = 1`` would drop everything and divide by
        zero), or ``mode`` is neither ``"train"`` nor ``"test"``.
    """
    ### BEGIN SOLUTION
    if not 0.0 <= p_drop < 1.0:
        raise ValueError(f"p_drop must be in [0, 1), got {p_drop}")
    if mode == "test":
        return x.copy(), (None, 1.0, mode)
    if mode != "train":
        raise ValueError(f'mode must be "train" or "test", got {mode!r}')
    if rng is None:
        rng = np.random.default_rng()
    mask = rng.random(x.shape) >= p_drop
    scale = 1.0 / (1.0 - p_drop)
    out = x * mask * scale
    return out, (mask, scale, mode)
    ### END SOLUTION


def dropout_backward(dout, cache):
    r"""Inverted dropout, backward pass.

    The forward pass multiplies each input by a constant, :math:`m_{ij}/(1-p)`, so the
    gradient flows back through exactly the kept units, scaled by the same factor:

    .. math:: \frac{\partial L}{\partial x_{ij}} = \frac{m_{ij}}{1 - p}\,
              \frac{\partial L}{\partial \mathrm{out}_{ij}}

    In test mode the forward pass was the identity, so ``dx = dout``.

    Parameters
    ----------
    dout : ndarray of shape (N, D)
        Upstream gradient :math:`\partial L / \partial\,\mathrm{out}`.
    cache : object
        The ``cache`` returned by your ``dropout_forward`` (for the same call).

    Returns
    -------
    dx : ndarray of shape (N, D)
        Gradient with respect to the input ``x``.
    """
    ### BEGIN SOLUTION
    mask, scale, mode = cache
    if mode == "test":
        return dout.copy()
    return dout * mask * scale
    ### END SOLUTION
