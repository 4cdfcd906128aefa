"""Seeds a generator inside the function "for reproducibility": every call draws the same mask.

expect: dropout.reused_mask
fails: dropout_fresh_mask dropout_hidden_backward
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), (None, mode)
    rng = np.random.default_rng(42)
    mask = (rng.random(x.shape) >= p_drop) / (1 - p_drop)
    return x * mask, (mask, mode)


def dropout_backward(dout, cache):
    mask, mode = cache
    if mode == "test":
        return dout
    return dout * mask
