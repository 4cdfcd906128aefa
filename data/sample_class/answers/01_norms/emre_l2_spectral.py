"""Uses np.linalg.norm(W, 2) for the L2 norm, which for a matrix is the spectral norm.

expect: norms.l2_spectral
fails: norms_l2_norm norms_hidden_norms norms_l2_penalty norms_hidden_penalties
"""


def l1_norm(W):
    return np.abs(W).sum()


def l2_norm(W):
    return np.linalg.norm(W, 2)


def l1_penalty(weights, lam):
    return lam * sum(l1_norm(W) for W in weights)


def l1_penalty_grad(weights, lam):
    return [lam * np.sign(W) for W in weights]


def l2_penalty(weights, lam):
    return lam / 2 * sum(l2_norm(W) ** 2 for W in weights)


def l2_penalty_grad(weights, lam):
    return [lam * W for W in weights]
