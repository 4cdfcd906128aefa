"""Uses NumPy's norm with ord=1 on the matrix: the largest column sum, the slide's 1.2.

expect: norms.l1_max_column_sum
fails: norms_l1_norm norms_hidden_norms norms_l1_penalty norms_hidden_penalties
"""


def l1_norm(W):
    return np.linalg.norm(W, 1)


def l2_norm(W):
    return np.linalg.norm(W)


def l1_penalty(weights, lam):
    return lam * sum([l1_norm(W) for W in weights])


def l1_penalty_grad(weights, lam):
    return [lam * np.sign(W) for W in weights]


def l2_penalty(weights, lam):
    return lam / 2 * sum([l2_norm(W) ** 2 for W in weights])


def l2_penalty_grad(weights, lam):
    return [lam * W for W in weights]
