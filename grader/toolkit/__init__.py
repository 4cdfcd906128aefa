"""Scaffolding that is given to students, not an exercise.

Data loading, the layers that are not exercises (affine, ReLU, softmax cross-entropy), a trainer
that takes the student's layer functions as arguments, numerical gradients and plotting helpers.
Nothing here imports the reference solutions.

The plotting helpers are imported lazily (on first use), so importing this package does not
import matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

from .data import DigitsSplit, load_digits
from .gradcheck import numerical_gradient, numerical_gradient_array, rel_error
from .layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy,
)
from .needs import needs
from .stats import describe_difference, full_mode, mean_se, paired_difference, replicates
from .trainer import History, evaluate, quick_mode, train_mlp

_PLOTS = ("PALETTE", "OKABE_ITO", "style", "plot_curves", "plot_train_val")

__all__ = [
    "DigitsSplit",
    "History",
    "affine_backward",
    "affine_forward",
    "describe_difference",
    "evaluate",
    "full_mode",
    "mean_se",
    "paired_difference",
    "replicates",
    "load_digits",
    "needs",
    "numerical_gradient",
    "numerical_gradient_array",
    "quick_mode",
    "rel_error",
    "relu_backward",
    "relu_forward",
    "softmax_cross_entropy",
    "train_mlp",
    *_PLOTS,
]


def __getattr__(name: str) -> Any:
    if name in _PLOTS:
        return getattr(importlib.import_module(".plots", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
