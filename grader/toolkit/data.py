"""The bundled handwritten-digits data set, split and scaled for the experiments.

The images are scikit-learn's copy of the UCI "Optical Recognition of Handwritten Digits" data
(1,797 images of 8x8 pixels, values 0..16, ten classes; CC BY 4.0, Alpaydin & Kaynak). They ship
inside the package as ``grader/datasets/digits.npz`` (see the README there), so the kit needs
neither scikit-learn nor the network at run time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

N_EXAMPLES = 1797
N_FEATURES = 64
N_CLASSES = 10
STD_FLOOR = 1e-8


@dataclass(frozen=True, eq=False)
class DigitsSplit:
    """A train / validation / test split of the digits.

    Attributes
    ----------
    X_train, X_val, X_test : ndarray of shape (N_split, 64), float64
        One flattened 8x8 image per row (row-major pixels).
    y_train, y_val, y_test : ndarray of shape (N_split,), int64
        Class labels 0..9.
    classes : int
        Number of classes, 10.
    mean, std : ndarray of shape (64,), float64
        The per-pixel statistics of the training split used for standardization (zeros and
        ones when ``standardize=False``), so that new images can be scaled the same way:
        ``(images / 16 - mean) / std``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: int = N_CLASSES
    mean: np.ndarray = field(default=None, repr=False)
    std: np.ndarray = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"DigitsSplit(train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, features={self.X_train.shape[1]}, classes={self.classes})"
        )


@functools.cache
def _raw() -> tuple[np.ndarray, np.ndarray]:
    """The bundled arrays ``(images uint8 (1797, 64), labels uint8 (1797,))``, read-only."""
    ref = resources.files("grader.datasets").joinpath("digits.npz")
    try:
        with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as f:
            images, labels = f["images"], f["labels"]
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(
            f"could not read the bundled digits data ({ref}): {exc}. Reinstall the package or "
            "re-create the file with `python scripts/export_digits.py`."
        ) from exc
    if images.shape != (N_EXAMPLES, N_FEATURES) or labels.shape != (N_EXAMPLES,):
        raise RuntimeError(
            f"the bundled digits data has unexpected shapes {images.shape}, {labels.shape}"
        )
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of the examples in which every prefix is stratified.

    Each class is shuffled; its ``r``-th example gets the key ``(r + u) / n_c`` with
    ``u ~ U(0, 1)`` and ``n_c`` the class size; all examples are then sorted by key. A prefix of
    length ``n`` therefore holds about ``n * n_c / N`` examples of each class (within one or two).
    """
    keys = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = rng.permutation(idx)
        keys[idx] = (np.arange(len(idx)) + rng.random(len(idx))) / len(idx)
    return np.argsort(keys, kind="stable")


def load_digits(
    n_train: int = 200, n_val: int = 500, seed: int = 0, standardize: bool = True
) -> DigitsSplit:
    r"""Load the bundled digits and split them into train, validation and test sets.

    The split is a seeded **stratified** random permutation: the ten classes appear in every
    split in (almost exactly) the proportions of the whole data set, which keeps small training
    sets such as 200 images balanced. The first ``n_train`` examples of the permutation are the
    training split, the next ``n_val`` the validation split and the rest the test split.

    Pixels are scaled to :math:`[0, 1]` by dividing by 16. With ``standardize`` every feature is
    then centered and scaled with the **training** split's statistics (never the validation or test
    ones, which would leak information):

    .. math:: x' = \frac{x / 16 - \mu_\text{train}}{\sigma_\text{train}}

    A pixel that is constant on the training split (:math:`\sigma < 10^{-8}`, e.g. the corners)
    gets :math:`\sigma = 1` instead, so it is only centered: dividing by a tiny floor would turn
    the rare non-zero value in a validation image into a huge input.

    Parameters
    ----------
    n_train : int
        Number of training examples, at least 1.
    n_val : int
        Number of validation examples, at least 0; ``n_train + n_val <= 1797``. The remaining
        examples form the test split.
    seed : int
        Seed of the permutation; the same seed always gives the same split.
    standardize : bool
        Standardize with the training statistics (True) or only scale to [0, 1] (False).

    Returns
    -------
    DigitsSplit
        ``X_*`` float64 of shape (N_split, 64), ``y_*`` int64 of shape (N_split,), ``classes=10``.

    Raises
    ------
    ValueError
        If the sizes or the seed are not valid.
    """
    for name, value, low in (("n_train", n_train, 1), ("n_val", n_val, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be at least {low}, got {value}")
    if n_train + n_val > N_EXAMPLES:
        raise ValueError(
            f"n_train + n_val must be at most {N_EXAMPLES} (the size of the data set), "
            f"got {n_train} + {n_val} = {n_train + n_val}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    images, labels = _raw()
    order = _stratified_order(labels, np.random.default_rng(seed))
    parts = np.split(order, [n_train, n_train + n_val])
    X = images.astype(np.float64) / 16.0
    y = labels.astype(np.int64)

    X_train = X[parts[0]]
    if standardize:
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        std = np.where(std < STD_FLOOR, 1.0, std)
    else:
        mean = np.zeros(N_FEATURES)
        std = np.ones(N_FEATURES)

    def scale(idx: np.ndarray) -> np.ndarray:
        return (X[idx] - mean) / std

    return DigitsSplit(
        X_train=scale(parts[0]),
        y_train=y[parts[0]],
        X_val=scale(parts[1]),
        y_val=y[parts[1]],
        X_test=scale(parts[2]),
        y_test=y[parts[2]],
        mean=mean,
        std=std,
    )
