"""Adds epsilon after the square root, and keeps the textbook backward formula.

expect: ln.eps_outside_sqrt
fails: ln_backward ln_forward ln_hidden_backward ln_hidden_forward
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-3)
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True) + eps
    xhat = (x - mu) / sd
    return gamma * xhat + beta, (xhat, sd, gamma)


def layernorm_backward(dout, cache):
    xhat, sd, gamma = cache
    g = dout * gamma
    dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)) / sd
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
