"""Divides by the standard deviation plus epsilon (eps outside the square root).

expect: bn.eps_outside_sqrt
fails: bn_alt_matches_staged bn_backward bn_backward_alt bn_forward_defaults bn_forward_train bn_hidden_backward bn_hidden_forward bn_test_mode
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    if bn_param["mode"] == "train":
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        bn_param["running_mean"] = (
            momentum * bn_param.get("running_mean", np.zeros(D)) + (1 - momentum) * mean
        )
        bn_param["running_var"] = (
            momentum * bn_param.get("running_var", np.ones(D)) + (1 - momentum) * var
        )
    else:
        mean = bn_param.get("running_mean", np.zeros(D))
        var = bn_param.get("running_var", np.ones(D))
    std = np.sqrt(var) + eps
    xhat = (x - mean) / std
    return gamma * xhat + beta, (xhat, std, gamma)


def batchnorm_backward(dout, cache):
    xhat, std, gamma = cache
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    xhat, std, gamma = cache
    N = dout.shape[0]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dx = gamma / std / N * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta
