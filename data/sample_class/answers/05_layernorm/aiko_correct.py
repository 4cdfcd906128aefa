"""Layer norm as the docstrings describe it, with a dict cache.

expect: full marks
fails:
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-3)
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    out = gamma * xhat + beta
    return out, {"xhat": xhat, "std": std, "gamma": gamma}


def layernorm_backward(dout, cache):
    xhat, std, gamma = cache["xhat"], cache["std"], cache["gamma"]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    g = dout * gamma
    dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)) / std
    return dx, dgamma, dbeta
