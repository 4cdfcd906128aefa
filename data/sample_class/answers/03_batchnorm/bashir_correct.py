"""A correct answer in the CS231n style: tuple cache, staged backward written node by node.

expect: full marks
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(D, dtype=x.dtype))

    if mode == "train":
        sample_mean = x.mean(axis=0)
        x_centered = x - sample_mean
        sample_var = (x_centered**2).mean(axis=0)
        std = np.sqrt(sample_var + eps)
        x_norm = x_centered / std
        out = gamma * x_norm + beta
        cache = (x_centered, std, x_norm, gamma, mode)

        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
        bn_param["running_mean"] = running_mean
        bn_param["running_var"] = running_var
    elif mode == "test":
        std = np.sqrt(running_var + eps)
        x_norm = (x - running_mean) / std
        out = gamma * x_norm + beta
        cache = (x - running_mean, std, x_norm, gamma, mode)
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"')
    return out, cache


def batchnorm_backward(dout, cache):
    x_centered, std, x_norm, gamma, mode = cache
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_norm, axis=0)
    dx_norm = dout * gamma
    if mode == "test":
        return dx_norm / std, dgamma, dbeta
    # x_norm = x_centered * (1/std)
    dinvstd = np.sum(dx_norm * x_centered, axis=0)
    dx_centered = dx_norm / std
    # 1/std -> std -> var
    dstd = -dinvstd / std**2
    dvar = 0.5 * dstd / std
    # var = mean(x_centered**2)
    dsq = np.ones_like(dout) * dvar / N
    dx_centered += 2 * x_centered * dsq
    # x_centered = x - mean
    dmean = -np.sum(dx_centered, axis=0)
    dx = dx_centered + dmean / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    x_centered, std, x_norm, gamma, mode = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_norm).sum(axis=0)
    if mode == "test":
        return dout * gamma / std, dgamma, dbeta
    dx = (gamma / (N * std)) * (N * dout - dbeta - x_norm * dgamma)
    return dx, dgamma, dbeta
