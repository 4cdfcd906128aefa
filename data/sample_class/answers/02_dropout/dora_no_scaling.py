"""Drops units but forgets the 1/(1-p) scaling (and therefore in backward too).

expect: dropout.no_inverted_scaling
fails: dropout_train_forward dropout_hidden_forward
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if rng is None:
        rng = np.random.default_rng()
    if mode == "train":
        mask = rng.random(x.shape) >= p_drop
        return x * mask, (mask, mode)
    return x, (None, mode)


def dropout_backward(dout, cache):
    mask, mode = cache
    return dout * mask if mode == "train" else dout
