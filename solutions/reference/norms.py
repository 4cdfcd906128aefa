r"""Reference solution: matrix norms and the L1 / L2 weight penalties (instructor-only).

The lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are what nbgrader removes when
it makes the student notebook; the rest of each function (signature and docstring) is the stub.

Errata for the slides ("DNN Discussion 2", *Recall linear algebra* and *Regularization*):

* The L1 example matrix :math:`\begin{bmatrix}0.1&0.5&-0.3\\-0.2&0.4&0.2\\-0.1&0.3&0.3\end{bmatrix}`
  has entry-wise L1 norm :math:`0.1+0.5+0.3+0.2+0.4+0.2+0.1+0.3+0.3 = 2.4`, not 1.2 as printed.
  (1.2 happens to be its largest absolute column sum, which is what ``np.linalg.norm(W, 1)``
  returns: another reason not to use that function here.)
* What the slide calls the L2 norm of the same matrix is the sum of squares, i.e. the *squared*
  Frobenius norm, :math:`0.01+0.25+0.09+0.04+0.16+0.04+0.01+0.09+0.09 = 0.78`; the norm itself is
  :math:`\sqrt{0.78} \approx 0.883`.
* The L2 penalty is :math:`\frac{\lambda}{2}\lVert\theta\rVert_2^2`, with the square (the slide
  omits it). The square is what makes the gradient the simple "weight decay" term
  :math:`\lambda W`.
"""

import numpy as np


def l1_norm(W):
    r"""Entry-wise L1 norm of a weight matrix.

    .. math:: \lVert \operatorname{vec} W \rVert_1 = \sum_{i,j} |w_{ij}|

    This is the sum of the absolute values of **all** entries. It is *not*
    ``np.linalg.norm(W, 1)``, which for a matrix is the induced 1-norm (the largest absolute
    column sum). On the slide's example
    ``[[0.1, 0.5, -0.3], [-0.2, 0.4, 0.2], [-0.1, 0.3, 0.3]]`` the entry-wise norm is 2.4 (the slide
    prints 1.2, which is the largest column sum).

    Parameters
    ----------
    W : ndarray of shape (D_in, D_out)
        A weight matrix (any shape works: every entry counts).

    Returns
    -------
    float
        :math:`\lVert \operatorname{vec} W \rVert_1`.
    """
    ### BEGIN SOLUTION
    return float(np.sum(np.abs(W)))
    ### END SOLUTION


def l2_norm(W):
    r"""L2 (Frobenius) norm of a weight matrix.

    .. math:: \lVert W \rVert_F = \sqrt{\sum_{i,j} w_{ij}^2}

    This is the entry-wise (Frobenius) norm, ``np.linalg.norm(W, 'fro')``, *not* the spectral
    norm ``np.linalg.norm(W, 2)`` (the largest singular value). Note the square root: on the
    slide's example matrix the sum of squares is 0.78 (that is :math:`\lVert W \rVert_F^2`, the
    quantity the slide shows), and the norm is :math:`\sqrt{0.78} \approx 0.883`.

    Parameters
    ----------
    W : ndarray of shape (D_in, D_out)
        A weight matrix (any shape works: every entry counts).

    Returns
    -------
    float
        :math:`\lVert W \rVert_F`.
    """
    ### BEGIN SOLUTION
    return float(np.sqrt(np.sum(np.square(W))))
    ### END SOLUTION


def l1_penalty(weights, lam):
    r"""L1 regularization term of a network.

    .. math:: R_1(\theta) = \lambda \sum_{l=1}^{L} \lVert \operatorname{vec} W^{l} \rVert_1
              = \lambda \sum_{l} \sum_{i,j} |w^{l}_{ij}|

    Only the weight matrices :math:`\{W^1, \dots, W^L\}` are regularized, never the biases.

    Parameters
    ----------
    weights : list of ndarray
        The weight matrices :math:`W^1, \dots, W^L` (shapes may differ; no biases).
    lam : float
        Regularization strength :math:`\lambda \ge 0`.

    Returns
    -------
    float
        :math:`R_1(\theta)`, to be added to the data loss.
    """
    ### BEGIN SOLUTION
    return float(lam * sum(l1_norm(W) for W in weights))
    ### END SOLUTION


def l1_penalty_grad(weights, lam):
    r"""Gradient of the L1 regularization term with respect to every weight matrix.

    .. math:: \frac{\partial R_1}{\partial W^{l}} = \lambda\, \operatorname{sign}(W^{l}),
              \qquad
              \operatorname{sign}(w) = \begin{cases} 1 & w > 0 \\ 0 & w = 0 \\ -1 & w < 0
              \end{cases}

    :math:`|w|` has no derivative at :math:`w = 0`; we use the subgradient 0 there, so entries
    that are exactly zero get a gradient of exactly 0 (and never NaN, which is what
    :math:`w/|w|` would give).

    Parameters
    ----------
    weights : list of ndarray
        The weight matrices :math:`W^1, \dots, W^L`.
    lam : float
        Regularization strength :math:`\lambda`.

    Returns
    -------
    grads : list of ndarray
        ``grads[l]`` has the shape of ``weights[l]``; new arrays (the weights are not modified).
    """
    ### BEGIN SOLUTION
    return [lam * np.sign(W) for W in weights]
    ### END SOLUTION


def l2_penalty(weights, lam):
    r"""L2 regularization term (weight decay) of a network.

    .. math:: R_2(\theta) = \frac{\lambda}{2} \sum_{l=1}^{L} \lVert W^{l} \rVert_F^2
              = \frac{\lambda}{2} \sum_{l} \sum_{i,j} \left(w^{l}_{ij}\right)^2

    The norm is squared (no square root) and halved, so that the gradient is simply
    :math:`\lambda W`. Only weight matrices are regularized, never the biases.

    Parameters
    ----------
    weights : list of ndarray
        The weight matrices :math:`W^1, \dots, W^L` (shapes may differ; no biases).
    lam : float
        Regularization strength :math:`\lambda \ge 0`.

    Returns
    -------
    float
        :math:`R_2(\theta)`, to be added to the data loss.
    """
    ### BEGIN SOLUTION
    return float(0.5 * lam * sum(np.sum(np.square(W)) for W in weights))
    ### END SOLUTION


def l2_penalty_grad(weights, lam):
    r"""Gradient of the L2 regularization term with respect to every weight matrix.

    .. math:: \frac{\partial R_2}{\partial W^{l}} = \lambda\, W^{l}

    (the :math:`\tfrac12` cancels the 2 from the square). In a gradient-descent step this shrinks
    every weight by the factor :math:`1 - \eta\lambda`, hence the name "weight decay".

    Parameters
    ----------
    weights : list of ndarray
        The weight matrices :math:`W^1, \dots, W^L`.
    lam : float
        Regularization strength :math:`\lambda`.

    Returns
    -------
    grads : list of ndarray
        ``grads[l]`` has the shape of ``weights[l]``; new arrays (the weights are not modified).
    """
    ### BEGIN SOLUTION
    return [lam * W for W in weights]
    ### END SOLUTION
