"""A correct answer that works in float32 inside (and uses `>` instead of `>=`): within tolerance.

expect: full marks
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if rng is None:
        rng = np.random.default_rng()
    if mode == "train":
        mask = (rng.random(x.shape, dtype=np.float32) > p_drop).astype(np.float32)
        out = x.astype(np.float32) * mask / np.float32(1 - p_drop)
        cache = (mask, p_drop, mode)
    else:
        out = x
        cache = (None, p_drop, mode)
    return out, cache


def dropout_backward(dout, cache):
    mask, p_drop, mode = cache
    if mode == "train":
        return dout * mask / (1 - p_drop)
    return dout
