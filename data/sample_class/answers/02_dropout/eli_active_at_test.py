"""Ignores the mode: dropout also runs at test time.

expect: dropout.active_at_test
fails: dropout_test_mode
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    rng = rng or np.random.default_rng()
    mask = (rng.random(x.shape) >= p_drop) / (1 - p_drop)
    return x * mask, mask


def dropout_backward(dout, cache):
    return dout * cache
