"""Backward that forgets the factor gamma on the way to x_hat.

expect: ln.backward_no_gamma
fails: ln_backward ln_hidden_backward
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-3)
    mu = x.mean(axis=1, keepdims=True)
    std = np.sqrt(x.var(axis=1, keepdims=True) + eps)
    xhat = (x - mu) / std
    return gamma * xhat + beta, (xhat, std)


def layernorm_backward(dout, cache):
    xhat, std = cache
    dx = (
        dout - dout.mean(axis=1, keepdims=True) - xhat * (dout * xhat).mean(axis=1, keepdims=True)
    ) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
