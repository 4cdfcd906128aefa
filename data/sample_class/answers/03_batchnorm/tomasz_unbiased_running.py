"""Normalises with the biased variance but stores the unbiased one in running_var, like PyTorch.

expect: bn.unbiased_running_var
fails: bn_forward_defaults bn_hidden_forward bn_running_stats bn_test_mode
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))
    if mode == "train":
        mean = np.mean(x, axis=0)
        var = np.var(x, axis=0)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
        unbiased = var * N / (N - 1)
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * unbiased
    else:
        mean, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    return gamma * x_hat + beta, (x_hat, inv_std, gamma)


def batchnorm_backward(dout, cache):
    x_hat, inv_std, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(0)
    dgamma = (dout * x_hat).sum(0)
    dx_hat = dout * gamma
    dvar = -0.5 * (dx_hat * x_hat).sum(0) * inv_std**2
    dmean = -(dx_hat * inv_std).sum(0)
    dx = dx_hat * inv_std + dvar * 2 * x_hat / inv_std / N + dmean / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    x_hat, inv_std, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(0)
    dgamma = (dout * x_hat).sum(0)
    dx = gamma * inv_std / N * (N * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta
