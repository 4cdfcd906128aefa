"""Correct, with other formulas: np.std for sigma, var as E[x^2] - mu^2, setdefault for defaults,
running statistics updated in place, a closed form written with means.

expect: full marks
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    D = x.shape[1]
    eps = bn_param.get("eps", 0.001)
    momentum = bn_param.get("momentum", 0.9)
    bn_param.setdefault("running_mean", np.zeros(D))
    bn_param.setdefault("running_var", np.ones(D))
    if bn_param["mode"] == "train":
        mean = x.mean(0)
        var = (x**2).mean(0) - mean**2
        sigma = np.sqrt(var + eps)
        new_mean = momentum * bn_param["running_mean"] + (1 - momentum) * mean
        new_var = momentum * bn_param["running_var"] + (1 - momentum) * np.std(x, axis=0) ** 2
        bn_param["running_mean"] = new_mean
        bn_param["running_var"] = new_var
    else:
        mean = bn_param["running_mean"]
        sigma = np.sqrt(bn_param["running_var"] + eps)
    xn = (x - mean) / sigma
    return gamma * xn + beta, [xn, sigma, gamma, bn_param["mode"]]


def batchnorm_backward(dout, cache):
    xn, sigma, gamma, mode = cache
    N = len(dout)
    dgamma = (xn * dout).sum(0)
    dbeta = dout.sum(0)
    dxn = gamma * dout
    if mode == "test":
        return dxn / sigma, dgamma, dbeta
    # xn = (x - mean) / sigma with mean and sigma depending on x
    dsigma = -(dxn * xn).sum(0) / sigma
    dvar = dsigma / (2 * sigma)
    dx = dxn / sigma + dvar * 2 * xn * sigma / N
    dmean = -(dxn / sigma).sum(0)
    dx = dx + dmean / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    xn, sigma, gamma, mode = cache
    dgamma = (xn * dout).sum(0)
    dbeta = dout.sum(0)
    if mode == "test":
        return gamma * dout / sigma, dgamma, dbeta
    g = gamma * dout
    dx = (g - g.mean(0) - xn * (g * xn).mean(0)) / sigma
    return dx, dgamma, dbeta
