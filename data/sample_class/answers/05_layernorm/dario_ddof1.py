"""Uses the sample variance (divides by D - 1), and the usual backward formula with it.

expect: ln.unbiased_variance
fails: ln_backward ln_forward ln_hidden_backward ln_hidden_forward
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-3)
    mean = np.mean(x, axis=1, keepdims=True)
    var = np.var(x, axis=1, ddof=1, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, var, eps)


def layernorm_backward(dout, cache):
    xhat, gamma, var, eps = cache
    g = dout * gamma
    dx = (g - g.mean(1, keepdims=True) - xhat * (g * xhat).mean(1, keepdims=True)) / np.sqrt(
        var + eps
    )
    return dx, (dout * xhat).sum(0), dout.sum(0)
