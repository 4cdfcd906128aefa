"""Inverted scaling in training, and the original paper's (1-p) scaling at test time as well.

expect: dropout.scaled_at_test
fails: dropout_test_mode
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x * (1 - p_drop), (None, p_drop, mode)
    rng = rng if rng is not None else np.random.default_rng()
    mask = rng.random(x.shape) >= p_drop
    return x * mask / (1 - p_drop), (mask, p_drop, mode)


def dropout_backward(dout, cache):
    mask, p_drop, mode = cache
    if mode == "test":
        return dout * (1 - p_drop)
    return dout * mask / (1 - p_drop)
