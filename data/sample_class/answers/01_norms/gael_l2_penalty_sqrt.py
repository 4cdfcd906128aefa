"""Copies the slide's L2 term (λ/2)·‖θ‖₂ as printed: the norm, not its square.

expect: norms.l2_penalty_sqrt
fails: norms_l2_penalty norms_hidden_penalties
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
    return lam / 2 * sum(l2_norm(W) for W in weights)


def l2_penalty_grad(weights, lam):
    return [lam * W for W in weights]
