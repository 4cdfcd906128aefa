"""Draws one mask for the features and broadcasts it over every example of the batch.

expect: dropout.shared_mask
fails: dropout_train_forward dropout_hidden_forward
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode != "train":
        return x.copy(), (None, mode)
    rng = rng or np.random.default_rng()
    mask = (rng.random(x.shape[1]) >= p_drop) / (1 - p_drop)
    return x * mask, (mask, mode)


def dropout_backward(dout, cache):
    mask, mode = cache
    return dout if mode != "train" else dout * mask
