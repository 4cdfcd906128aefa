"""Copied the batch-norm code and kept axis=0: statistics over the batch, not the features.
Its backward is exact for that (batch-norm) forward, so it keeps its points (errors carried forward).

expect: ln.batch_axis
fails: ln_forward ln_hidden_forward
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-3)
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, np.sqrt(var + eps))


def layernorm_backward(dout, cache):
    xhat, gamma, std = cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std
    return dx, np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)
