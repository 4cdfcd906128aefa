"""Backward that treats the variance as a constant: only the mean path is there.

expect: ln.backward_missing_var_path
fails: ln_backward ln_hidden_backward
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-3)
    xc = x - x.mean(axis=1, keepdims=True)
    std = np.sqrt((xc**2).mean(axis=1, keepdims=True) + eps)
    return gamma * xc / std + beta, (xc / std, std, gamma)


def layernorm_backward(dout, cache):
    xhat, std, gamma = cache
    g = dout * gamma
    dx = (g - g.mean(axis=1, keepdims=True)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
