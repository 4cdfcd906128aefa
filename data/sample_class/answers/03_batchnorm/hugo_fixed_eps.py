"""Hard-codes a tiny epsilon and never reads bn_param["eps"].

expect: bn.wrong_eps
fails: bn_forward_defaults bn_forward_train bn_hidden_forward bn_test_mode
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    rm = bn_param.get("running_mean", np.zeros(D))
    rv = bn_param.get("running_var", np.ones(D))
    if bn_param["mode"] == "train":
        mu = np.mean(x, axis=0)
        var = np.mean((x - mu) ** 2, axis=0)
        bn_param["running_mean"] = momentum * rm + (1 - momentum) * mu
        bn_param["running_var"] = momentum * rv + (1 - momentum) * var
    else:
        mu, var = rm, rv
    std = np.sqrt(var + 1e-8)
    xhat = (x - mu) / std
    return gamma * xhat + beta, {"xhat": xhat, "std": std, "gamma": gamma}


def batchnorm_backward(dout, cache):
    xhat, std, gamma = cache["xhat"], cache["std"], cache["gamma"]
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dstd = -np.sum(dxhat * xhat, axis=0) / std
    dvar = dstd / (2 * std)
    dxc = dxhat / std + dvar * 2 * xhat * std / N
    dx = dxc - dxc.sum(axis=0) / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    xhat, std, gamma = cache["xhat"], cache["std"], cache["gamma"]
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = gamma * (N * dout - dbeta - xhat * dgamma) / (N * std)
    return dx, dgamma, dbeta
