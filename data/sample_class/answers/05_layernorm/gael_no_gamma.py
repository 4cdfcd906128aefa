"""Forgets to scale by gamma in the forward pass (the backward, from the cache, is right).

expect: ln.forward_no_gamma
fails: ln_forward ln_hidden_forward
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-3)
    mu = x.mean(axis=1, keepdims=True)
    std = np.sqrt(x.var(axis=1, keepdims=True) + eps)
    xhat = (x - mu) / std
    return xhat + beta, (xhat, std, gamma)


def layernorm_backward(dout, cache):
    xhat, std, gamma = cache
    g = dout * gamma
    dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
