"""A direct answer: NumPy sums over all entries, one list comprehension per gradient.

expect: full marks
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
    return lam / 2 * sum(l2_norm(W) ** 2 for W in weights)


def l2_penalty_grad(weights, lam):
    return [lam * W for W in weights]
