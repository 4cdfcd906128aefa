"""Differentiates the square (2W) but forgets that the ½ in the penalty cancels the 2.

expect: norms.l2_missing_half
fails: norms_l2_penalty_grad norms_hidden_gradients
"""


def l1_norm(W):
    return np.sum(np.abs(W))


def l2_norm(W):
    return np.sqrt(np.sum(np.square(W)))


def l1_penalty(weights, lam):
    return lam * sum(l1_norm(W) for W in weights)


def l1_penalty_grad(weights, lam):
    return [lam * np.sign(W) for W in weights]


def l2_penalty(weights, lam):
    return 0.5 * lam * sum(np.sum(np.square(W)) for W in weights)


def l2_penalty_grad(weights, lam):
    # d/dW of W^2 is 2W
    return [2 * lam * W for W in weights]
