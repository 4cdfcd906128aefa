"""Correct, but works in float32 throughout (to "save memory"): within tolerance, with a note.

expect: full marks
"""


def l1_norm(W):
    return np.abs(W.astype(np.float32)).sum()


def l2_norm(W):
    W32 = W.astype(np.float32)
    return np.sqrt((W32 * W32).sum())


def l1_penalty(weights, lam):
    total = np.float32(0)
    for W in weights:
        total += l1_norm(W)
    return np.float32(lam) * total


def l1_penalty_grad(weights, lam):
    return [np.float32(lam) * np.sign(W).astype(np.float32) for W in weights]


def l2_penalty(weights, lam):
    total = np.float32(0)
    for W in weights:
        total += (W.astype(np.float32) ** 2).sum()
    return np.float32(lam) / 2 * total


def l2_penalty_grad(weights, lam):
    return [np.float32(lam) * W.astype(np.float32) for W in weights]
