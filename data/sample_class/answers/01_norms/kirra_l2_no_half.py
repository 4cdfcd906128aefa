"""Leaves the ½ out of the L2 penalty, and differentiates her own formula consistently (2λW).

expect: norms.l2_missing_half
fails: norms_l2_penalty norms_hidden_penalties norms_l2_penalty_grad norms_hidden_gradients
"""


def l1_norm(W):
    return np.sum(np.abs(W))


def l2_norm(W):
    return np.sqrt(np.sum(W**2))


def l1_penalty(weights, lam):
    return lam * sum(l1_norm(W) for W in weights)


def l1_penalty_grad(weights, lam):
    return [lam * np.sign(W) for W in weights]


def l2_penalty(weights, lam):
    return lam * sum(l2_norm(W) ** 2 for W in weights)


def l2_penalty_grad(weights, lam):
    return [2 * lam * W for W in weights]
