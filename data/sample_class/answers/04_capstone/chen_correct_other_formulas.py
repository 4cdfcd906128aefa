"""Correct, written differently: np.where masks, np.std in batch norm with the staged backward,
log-softmax with the log-sum-exp trick and a one-hot matrix, np.linalg.norm(W) ** 2 for the
penalty, and dropout called in every layer even with p_drop = 0 (it is the identity then).

expect: full marks
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    rng = rng or np.random.default_rng()
    if mode != "train":
        return x, ("test",)
    keep = rng.uniform(size=x.shape) > p_drop
    return np.where(keep, x / (1.0 - p_drop), 0.0), ("train", keep, p_drop)


def dropout_backward(dout, cache):
    if cache[0] == "test":
        return dout
    _, keep, p_drop = cache
    return np.where(keep, dout / (1.0 - p_drop), 0.0)


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 0.001)
    m = bn_param.get("momentum", 0.9)
    bn_param.setdefault("running_mean", np.zeros(x.shape[1]))
    bn_param.setdefault("running_var", np.ones(x.shape[1]))
    if bn_param["mode"] == "train":
        mean, sigma2 = x.mean(0), np.std(x, axis=0) ** 2
        bn_param["running_mean"] = m * bn_param["running_mean"] + (1 - m) * mean
        bn_param["running_var"] = m * bn_param["running_var"] + (1 - m) * sigma2
    else:
        mean, sigma2 = bn_param["running_mean"], bn_param["running_var"]
    xc = x - mean
    inv = 1.0 / np.sqrt(sigma2 + eps)
    xn = xc * inv
    return gamma * xn + beta, {
        "xc": xc,
        "inv": inv,
        "xn": xn,
        "gamma": gamma,
        "mode": bn_param["mode"],
    }


def batchnorm_backward(dout, cache):
    xc, inv, xn, gamma = cache["xc"], cache["inv"], cache["xn"], cache["gamma"]
    N = dout.shape[0]
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xn, axis=0)
    dxn = dout * gamma
    dxc = dxn * inv
    if cache["mode"] == "test":
        return dxc, dgamma, dbeta
    dinv = np.sum(dxn * xc, axis=0)
    dvar = -0.5 * dinv * inv**3
    dxc = dxc + 2.0 * xc * dvar / N
    dx = dxc - np.mean(dxc, axis=0)
    return dx, dgamma, dbeta


def mlp_loss(params, X, y=None, *, p_drop=0.0, lam=0.0, mode="train", bn_params=None, rng=None):
    n_layers = sum(1 for key in params if key[0] == "W")
    with_bn = "gamma1" in params
    rng = np.random.default_rng() if rng is None else rng

    inputs, pre_relu, bn_caches, drop_caches = [], [], [], []
    out = X
    for i in range(1, n_layers):
        inputs.append(out)
        z = out.dot(params[f"W{i}"]) + params[f"b{i}"]
        if with_bn:
            bn_param = bn_params[i - 1]
            bn_param["mode"] = mode
            z, c = batchnorm_forward(z, params[f"gamma{i}"], params[f"beta{i}"], bn_param)
            bn_caches.append(c)
        pre_relu.append(z)
        out = np.where(z > 0, z, 0.0)
        out, c = dropout_forward(out, p_drop, mode=mode, rng=rng)
        drop_caches.append(c)
    inputs.append(out)
    scores = out.dot(params[f"W{n_layers}"]) + params[f"b{n_layers}"]
    if y is None:
        return scores

    # log-softmax with the log-sum-exp trick
    m = scores.max(axis=1, keepdims=True)
    logp = scores - m - np.log(np.sum(np.exp(scores - m), axis=1, keepdims=True))
    N = len(y)
    onehot = np.zeros_like(scores)
    onehot[np.arange(N), y] = 1.0
    weights = [params[f"W{i}"] for i in range(1, n_layers + 1)]
    loss = -np.sum(onehot * logp) / N + lam / 2 * sum(np.linalg.norm(W) ** 2 for W in weights)

    grads = {}
    d = (np.exp(logp) - onehot) / N
    for i in range(n_layers, 0, -1):
        grads[f"W{i}"] = inputs[i - 1].T.dot(d) + lam * params[f"W{i}"]
        grads[f"b{i}"] = d.sum(axis=0)
        if i == 1:
            break
        d = d.dot(params[f"W{i}"].T)
        d = dropout_backward(d, drop_caches[i - 2])
        d = d * (pre_relu[i - 2] > 0)
        if with_bn:
            d, grads[f"gamma{i - 1}"], grads[f"beta{i - 1}"] = batchnorm_backward(
                d, bn_caches[i - 2]
            )
    return float(loss), grads
