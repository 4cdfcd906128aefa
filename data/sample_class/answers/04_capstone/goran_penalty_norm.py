"""Uses np.linalg.norm(W) in the penalty (the norm, not its square) but lam * W as its gradient.

expect: norms.l2_penalty_sqrt
fails: capstone_loss capstone_hidden_forward
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if rng is None:
        rng = np.random.default_rng()
    if mode == "test":
        return x.copy(), (None, 1.0, mode)
    mask = rng.random(x.shape) >= p_drop
    scale = 1 / (1 - p_drop)
    return x * mask * scale, (mask, scale, mode)


def dropout_backward(dout, cache):
    mask, scale, mode = cache
    if mode == "test":
        return dout.copy()
    return dout * mask * scale


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-3)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))
    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    else:
        mu, var = running_mean, running_var
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    out = gamma * xhat + beta
    return out, (xhat, gamma, std, mode)


def batchnorm_backward(dout, cache):
    xhat, gamma, std, mode = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    if mode == "test":
        return dxhat / std, dgamma, dbeta
    dx = (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (N * std)
    return dx, dgamma, dbeta


def mlp_loss(params, X, y=None, *, p_drop=0.0, lam=0.0, mode="train", bn_params=None, rng=None):
    L = len([name for name in params if name.startswith("W")])
    use_bn = "gamma1" in params
    if rng is None:
        rng = np.random.default_rng()

    caches = []
    h = X
    for i in range(1, L):
        a = h @ params[f"W{i}"] + params[f"b{i}"]
        bn_cache = None
        if use_bn:
            bn_params[i - 1]["mode"] = mode
            a, bn_cache = batchnorm_forward(
                a, params[f"gamma{i}"], params[f"beta{i}"], bn_params[i - 1]
            )
        relu = np.maximum(a, 0)
        drop_cache = None
        if p_drop > 0:
            relu, drop_cache = dropout_forward(relu, p_drop, mode, rng)
        caches.append((h, a, bn_cache, drop_cache))
        h = relu
    scores = h @ params[f"W{L}"] + params[f"b{L}"]
    if y is None:
        return scores

    N = X.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(probs[np.arange(N), y]))
    for i in range(1, L + 1):
        loss += 0.5 * lam * np.linalg.norm(params[f"W{i}"])

    grads = {}
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    grads[f"W{L}"] = h.T @ dscores + lam * params[f"W{L}"]
    grads[f"b{L}"] = dscores.sum(axis=0)
    dh = dscores @ params[f"W{L}"].T
    for i in range(L - 1, 0, -1):
        h_in, a, bn_cache, drop_cache = caches[i - 1]
        if drop_cache is not None:
            dh = dropout_backward(dh, drop_cache)
        da = dh * (a > 0)
        if use_bn:
            da, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward(da, bn_cache)
        grads[f"W{i}"] = h_in.T @ da + lam * params[f"W{i}"]
        grads[f"b{i}"] = da.sum(axis=0)
        dh = da @ params[f"W{i}"].T
    return loss, grads
