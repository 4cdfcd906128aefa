"""A correct answer that computes everything in float32 (to save memory): passes within tolerance.

expect: full marks
"""


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = np.float32(bn_param.get("eps", 1e-3))
    m = np.float32(bn_param.get("momentum", 0.9))
    x = x.astype(np.float32)
    gamma = gamma.astype(np.float32)
    beta = beta.astype(np.float32)
    D = x.shape[1]
    rm = np.asarray(bn_param.get("running_mean", np.zeros(D)), dtype=np.float32)
    rv = np.asarray(bn_param.get("running_var", np.ones(D)), dtype=np.float32)
    if mode == "train":
        mu = np.mean(x, axis=0)
        var = np.var(x, axis=0)
        bn_param["running_mean"] = m * rm + (1 - m) * mu
        bn_param["running_var"] = m * rv + (1 - m) * var
    else:
        mu, var = rm, rv
    inv = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    out = gamma * xhat + beta
    return out, {"xhat": xhat, "inv": inv, "gamma": gamma, "train": mode == "train"}


def batchnorm_backward(dout, cache):
    xhat, inv, gamma = cache["xhat"], cache["inv"], cache["gamma"]
    dout = dout.astype(np.float32)
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    if not cache["train"]:
        return dxhat * inv, dgamma, dbeta
    xc = xhat / inv
    dvar = np.sum(dxhat * xc, axis=0) * -0.5 * inv**3
    dmu = -np.sum(dxhat * inv, axis=0) + dvar * np.mean(-2 * xc, axis=0)
    dx = dxhat * inv + dvar * 2 * xc / n + dmu / n
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    xhat, inv, gamma = cache["xhat"], cache["inv"], cache["gamma"]
    dout = dout.astype(np.float32)
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    if not cache["train"]:
        return dout * gamma * inv, dgamma, dbeta
    dx = gamma * inv * (dout - dout.mean(axis=0) - xhat * (dout * xhat).mean(axis=0))
    return dx, dgamma, dbeta
