"""Reads p_drop as the probability of keeping a unit (the CS231n / original-paper convention).

expect: dropout.keep_prob_confusion
fails: dropout_train_forward dropout_hidden_forward
"""


def dropout_forward(x, p_drop, mode="train", rng=None):
    rng = rng or np.random.default_rng()
    if mode == "train":
        mask = (rng.random(x.shape) < p_drop) / p_drop
        out = x * mask
    else:
        mask = None
        out = x
    return out, (mask, mode)


def dropout_backward(dout, cache):
    mask, mode = cache
    if mode == "train":
        return dout * mask
    return dout
