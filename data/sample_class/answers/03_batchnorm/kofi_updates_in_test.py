"""Updates the running averages before looking at the mode, so test mode changes them too.

expect: bn.running_updated_in_test
fails: bn_hidden_forward bn_test_mode
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-3)
    m = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    old_mean = bn_param.get("running_mean", np.zeros(D))
    old_var = bn_param.get("running_var", np.ones(D))

    batch_mean = x.mean(axis=0)
    batch_var = x.var(axis=0)
    bn_param["running_mean"] = m * old_mean + (1 - m) * batch_mean
    bn_param["running_var"] = m * old_var + (1 - m) * batch_var

    if mode == "train":
        mean, v = batch_mean, batch_var
    else:
        mean, v = old_mean, old_var
    xhat = (x - mean) / np.sqrt(v + eps)
    return gamma * xhat + beta, (xhat, gamma, np.sqrt(v + eps))


def batchnorm_backward(dout, cache):
    xhat, gamma, s = cache
    N = dout.shape[0]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    dxc = dxhat / s
    dvar = np.sum(dxhat * xhat * s, axis=0) * (-0.5) / s**3
    dxc = dxc + 2.0 * xhat * s * dvar / N
    dx = dxc - np.mean(dxc, axis=0)
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    xhat, gamma, s = cache
    N = dout.shape[0]
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dx = (gamma / s) * (dout - dbeta / N - xhat * dgamma / N)
    return dx, dgamma, dbeta
