"""Changed every axis=0 of the batch-norm backward to axis=1, the parameter gradients too.

expect: ln.param_grad_wrong_axis
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
    dgamma = np.sum(dout * xhat, axis=1)
    dbeta = np.sum(dout, axis=1)
    g = dout * gamma
    dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)) / std
    return dx, dgamma, dbeta
