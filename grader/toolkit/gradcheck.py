"""Numerical gradients and the relative error used to compare gradients.

These are the independent evidence behind every backward pass in the kit: centered finite
differences in float64, compared with CS231n's relative error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rel_error(a, b) -> float:
    r"""Largest element-wise relative error between two arrays.

    .. math:: \max_i \frac{|a_i - b_i|}{\max(10^{-8}, |a_i| + |b_i|)}

    This is CS231n's ``rel_error``. A correct float64 backward pass gives about 1e-8 or less.

    Parameters
    ----------
    a, b : array_like
        Arrays of the same shape (scalars are allowed).

    Returns
    -------
    float
    """
    __tracebackhide__ = True  # noqa: F841 - hidden in IPython/pytest tracebacks
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 and b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    r"""Centered finite-difference gradient of a scalar function.

    .. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + h e_i) - f(x - h e_i)}{2h}

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to a float. It is called with ``x`` itself, modified in
        place and restored afterwards, so ``f`` may close over ``x``.
    x : ndarray, float64
        The point at which to differentiate.
    h : float
        Step size.

    Returns
    -------
    grad : ndarray, same shape as ``x``
    """
    __tracebackhide__ = True  # noqa: F841 - hidden in IPython/pytest tracebacks
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = float(f(x))
        x[i] = old - h
        f_minus = float(f(x))
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    r"""Finite-difference gradient of ``sum(f(x) * dout)`` for an array-valued function.

    This is what a backward pass computes: the vector-Jacobian product of ``f`` at ``x`` with the
    upstream gradient ``dout``.

    .. math:: \frac{\partial}{\partial x_i} \sum_j f_j(x)\, \mathrm{dout}_j
              \approx \sum_j \frac{f_j(x + h e_i) - f_j(x - h e_i)}{2h}\, \mathrm{dout}_j

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an array shaped like ``dout``; called with ``x``
        modified in place and restored afterwards.
    x : ndarray, float64
    dout : ndarray, float64
        Upstream gradient. Use a random one, not ones: ones hide many mistakes.
    h : float
        Step size.

    Returns
    -------
    grad : ndarray, same shape as ``x``
    """
    __tracebackhide__ = True  # noqa: F841 - hidden in IPython/pytest tracebacks
    return numerical_gradient(lambda z: np.sum(np.asarray(f(z), dtype=np.float64) * dout), x, h)
