"""Hard-codes PyTorch's epsilon 1e-5 and never reads ln_param. The backward is exact for that
forward, so it keeps its points (errors carried forward).

expect: ln.wrong_eps
fails: ln_forward ln_hidden_forward
"""


def layernorm_forward(x, gamma, beta, ln_param):
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    istd = 1.0 / np.sqrt(var + 1e-5)
    xhat = (x - mu) * istd
    return xhat * gamma + beta, (xhat, istd, gamma)


def layernorm_backward(dout, cache):
    xhat, istd, gamma = cache
    g = gamma * dout
    dx = istd * (
        g - np.mean(g, axis=1, keepdims=True) - xhat * np.mean(g * xhat, axis=1, keepdims=True)
    )
    return dx, np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)
