"""Correct with plain Python loops over the entries (slow but right) and tuples of gradients.

expect: full marks
"""


def l1_norm(W):
    total = 0.0
    for row in W:
        for w in row:
            total += abs(w)
    return total


def l2_norm(W):
    total = 0.0
    for row in W:
        for w in row:
            total += w * w
    return total**0.5


def l1_penalty(weights, lam):
    total = 0
    for W in weights:
        total = total + l1_norm(W)
    return lam * total


def l1_penalty_grad(weights, lam):
    out = []
    for W in weights:
        g = np.zeros_like(W)
        g[W > 0] = lam
        g[W < 0] = -lam
        out.append(g)
    return tuple(out)


def l2_penalty(weights, lam):
    total = 0
    for W in weights:
        total = total + l2_norm(W) * l2_norm(W)
    return lam * total / 2


def l2_penalty_grad(weights, lam):
    return tuple(lam * W for W in weights)
