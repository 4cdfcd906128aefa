"""Backward pass that uses the mask but forgets the 1/(1-p) factor.

expect: dropout.backward_ignores_scale
fails: dropout_backward dropout_hidden_backward
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), None
    rng = np.random.default_rng() if rng is None else rng
    mask = rng.random(x.shape) >= p_drop
    return x * mask / (1 - p_drop), mask


def dropout_backward(dout, cache):
    if cache is None:
        return dout
    return dout * cache
