"""Normalises each example over its features (axis=1, keepdims), i.e. layer norm.

expect: bn.wrong_axis
fails: bn_forward_defaults bn_forward_train bn_hidden_forward bn_running_stats bn_test_mode
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    if bn_param["mode"] == "train":
        mu = np.mean(x, axis=1, keepdims=True)
        var = np.var(x, axis=1, keepdims=True)
        bn_param["running_mean"] = (
            momentum * bn_param.get("running_mean", 0.0) + (1 - momentum) * mu
        )
        bn_param["running_var"] = momentum * bn_param.get("running_var", 1.0) + (1 - momentum) * var
    else:
        mu = bn_param["running_mean"]
        var = bn_param["running_var"]
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, np.sqrt(var + eps), gamma)


def batchnorm_backward(dout, cache):
    xhat, std, gamma = cache
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    dx = (
        dxhat
        - dxhat.mean(axis=1, keepdims=True)
        - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)
    ) / std
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    xhat, std, gamma = cache
    D = dout.shape[1]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    dx = (
        D * dxhat
        - dxhat.sum(axis=1, keepdims=True)
        - xhat * (dxhat * xhat).sum(axis=1, keepdims=True)
    ) / (D * std)
    return dx, dgamma, dbeta
