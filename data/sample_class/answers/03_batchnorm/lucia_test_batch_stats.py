"""Normalises with the batch's own statistics in both modes (updates the averages only in training).

expect: bn.test_uses_batch_stats
fails: bn_forward_defaults bn_hidden_forward bn_test_mode
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    if bn_param["mode"] == "train":
        bn_param["running_mean"] = (
            momentum * bn_param.get("running_mean", np.zeros(D)) + (1 - momentum) * mu
        )
        bn_param["running_var"] = (
            momentum * bn_param.get("running_var", np.ones(D)) + (1 - momentum) * var
        )
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    out = gamma * xhat + beta
    return out, (xhat, std, gamma)


def batchnorm_backward(dout, cache):
    xhat, std, gamma = cache
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dxc = dxhat / std
    dstd = -np.sum(dxhat * xhat / std, axis=0)
    dvar = dstd / (2 * std)
    dxc = dxc + dvar * 2 * xhat * std / N
    dmu = -np.sum(dxc, axis=0)
    return dxc + dmu / N, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    xhat, std, gamma = cache
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    return gamma / (N * std) * (N * dout - dbeta - xhat * dgamma), dgamma, dbeta
