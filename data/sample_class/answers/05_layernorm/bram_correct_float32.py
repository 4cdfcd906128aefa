"""Right, but computed in float32 to save memory (accepted within the tolerance, with a note).

expect: full marks
fails:
"""


def layernorm_forward(x, gamma, beta, ln_param):
    x = x.astype(np.float32)
    eps = np.float32(ln_param.get("eps", 1e-3))
    mu = np.mean(x, axis=1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=1, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    out = gamma.astype(np.float32) * xhat + beta.astype(np.float32)
    return out, (xhat, inv, gamma.astype(np.float32))


def layernorm_backward(dout, cache):
    xhat, inv, gamma = cache
    dout = dout.astype(np.float32)
    D = dout.shape[1]
    g = dout * gamma
    dx = (
        inv
        / D
        * (D * g - g.sum(axis=1, keepdims=True) - xhat * (g * xhat).sum(axis=1, keepdims=True))
    )
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
