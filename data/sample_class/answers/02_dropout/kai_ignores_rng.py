"""Uses NumPy's legacy global generator and ignores the rng argument.

expect: dropout.ignores_rng
fails: dropout_fresh_mask dropout_hidden_backward
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), (None, mode)
    mask = (np.random.rand(*x.shape) > p_drop) / (1 - p_drop)
    return x * mask, (mask, mode)


def dropout_backward(dout, cache):
    mask, mode = cache
    return dout if mode == "test" else dout * mask
