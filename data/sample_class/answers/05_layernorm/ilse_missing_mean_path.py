"""Backward without the gradient through the mean (only the variance path is subtracted).

expect: ln.backward_missing_mean_path
fails: ln_backward ln_hidden_backward
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-3)
    mu = x.mean(axis=1, keepdims=True)
    std = np.sqrt(x.var(axis=1, keepdims=True) + eps)
    xhat = (x - mu) / std
    return gamma * xhat + beta, (xhat, std, gamma)


def layernorm_backward(dout, cache):
    xhat, std, gamma = cache
    g = dout * gamma
    dx = (g - xhat * (g * xhat).mean(axis=1, keepdims=True)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
