"""Follows the slide's "L2 norm" literally: the sum of squares, without the square root.

Her penalty uses that sum directly, so the penalty itself comes out right.

expect: norms.l2_norm_no_sqrt
fails: norms_l2_norm norms_hidden_norms
"""


def l1_norm(W):
    return np.sum(np.abs(W))


def l2_norm(W):
    return np.sum(W * W)


def l1_penalty(weights, lam):
    return lam * sum(l1_norm(W) for W in weights)


def l1_penalty_grad(weights, lam):
    return [lam * np.sign(W) for W in weights]


def l2_penalty(weights, lam):
    return (lam / 2) * sum(l2_norm(W) for W in weights)


def l2_penalty_grad(weights, lam):
    return [lam * W for W in weights]
