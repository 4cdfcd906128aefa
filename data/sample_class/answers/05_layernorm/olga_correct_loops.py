"""One example at a time, with loops, and the backward pass node by node (staged graph).

expect: full marks
fails:
"""


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param["eps"] if "eps" in ln_param else 0.001
    N, D = x.shape
    out = np.zeros((N, D))
    steps = []
    for i in range(N):
        row = x[i]
        mu = sum(row) / D
        xc = row - mu
        var = sum(xc * xc) / D
        s = np.sqrt(var + eps)
        xhat = xc / s
        out[i] = gamma * xhat + beta
        steps.append((xc, var, s, xhat))
    return out, (steps, gamma)


def layernorm_backward(dout, cache):
    steps, gamma = cache
    N, D = dout.shape
    dx = np.zeros((N, D))
    dgamma = np.zeros(D)
    dbeta = np.zeros(D)
    for i, (xc, _var, s, xhat) in enumerate(steps):
        dbeta += dout[i]
        dgamma += dout[i] * xhat
        dxhat = dout[i] * gamma
        dxc = dxhat / s
        ds = -np.sum(dxhat * xc) / s**2
        dvar = ds / (2 * s)
        dxc += 2 * xc * dvar / D
        dmu = -np.sum(dxc)
        dx[i] = dxc + dmu / D
    return dx, dgamma, dbeta
