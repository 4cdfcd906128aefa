"""Backward pass that only rescales the gradient and lets it through the dropped units.

expect: dropout.backward_ignores_mask
fails: dropout_backward dropout_hidden_backward
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), (p_drop, mode)
    if rng is None:
        rng = np.random.default_rng()
    mask = rng.random(x.shape) >= p_drop
    return np.where(mask, x / (1 - p_drop), 0.0), (p_drop, mode)


def dropout_backward(dout, cache):
    p_drop, mode = cache
    if mode == "test":
        return dout
    return dout / (1 - p_drop)
