"""Takes the "derivative" of |w| to be |w| itself.

expect: norms.l1_grad_abs
fails: norms_l1_penalty_grad norms_hidden_gradients
"""


def l1_norm(W):
    return np.sum(np.abs(W))


def l2_norm(W):
    return np.sqrt(np.sum(W**2))


def l1_penalty(weights, lam):
    return lam * sum(l1_norm(W) for W in weights)


def l1_penalty_grad(weights, lam):
    return [lam * np.abs(W) for W in weights]


def l2_penalty(weights, lam):
    return lam / 2 * sum(np.sum(W**2) for W in weights)


def l2_penalty_grad(weights, lam):
    return [lam * W for W in weights]
