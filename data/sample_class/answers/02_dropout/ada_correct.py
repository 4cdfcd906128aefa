"""A correct answer, written differently from the reference: binomial mask, float mask in the cache.

expect: full marks
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), {"mode": mode}
    rng = np.random.default_rng() if rng is None else rng
    keep = 1 - p_drop
    mask = rng.binomial(1, keep, size=x.shape) / keep
    return x * mask, {"mode": mode, "mask": mask}


def dropout_backward(dout, cache):
    if cache["mode"] == "test":
        return dout
    return dout * cache["mask"]
