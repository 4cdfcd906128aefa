"""Correct with np.linalg.norm used the right way (flattened for L1, "fro" for L2), and np.where.

expect: full marks
"""


def l1_norm(W):
    # flattened, so this is the vector 1-norm, not the matrix one
    return np.linalg.norm(W.ravel(), ord=1)


def l2_norm(W):
    return np.linalg.norm(W, "fro")


def l1_penalty(weights, lam):
    norms = [l1_norm(W) for W in weights]
    return lam * np.sum(norms)


def l1_penalty_grad(weights, lam):
    grads = []
    for W in weights:
        g = np.where(W > 0, lam, np.where(W < 0, -lam, 0.0))
        grads.append(g)
    return grads


def l2_penalty(weights, lam):
    return 0.5 * lam * np.sum([l2_norm(W) ** 2 for W in weights])


def l2_penalty_grad(weights, lam):
    grads = []
    for W in weights:
        grads.append(W.copy() * lam)
    return grads
