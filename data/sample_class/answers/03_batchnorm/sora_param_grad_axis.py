"""Sums dbeta and dgamma over the features (axis=1) instead of over the examples.

expect: bn.param_grad_wrong_axis
fails: bn_alt_matches_staged bn_backward bn_backward_alt bn_hidden_backward
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))
    if mode == "train":
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc**2).mean(axis=0)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    else:
        xc = x - running_mean
        var = running_var
    std = np.sqrt(var + eps)
    xhat = xc / std
    out = gamma * xhat + beta
    cache = {"xc": xc, "std": std, "xhat": xhat, "gamma": gamma}
    return out, cache


def batchnorm_backward(dout, cache):
    xc, std, xhat, gamma = cache["xc"], cache["std"], cache["xhat"], cache["gamma"]
    N = dout.shape[0]
    dbeta = dout.sum(axis=1)
    dgamma = (dout * xhat).sum(axis=1)
    dxhat = dout * gamma
    dvar = (dxhat * xc).sum(axis=0) * -0.5 / std**3
    dmu = -(dxhat / std).sum(axis=0)
    dx = dxhat / std + 2 * xc * dvar / N + dmu / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    std, xhat, gamma = cache["std"], cache["xhat"], cache["gamma"]
    dbeta = dout.sum(axis=1)
    dgamma = (dout * xhat).sum(axis=1)
    g = dout * gamma
    dx = (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0)) / std
    return dx, dgamma, dbeta
