"""Reference solutions of the course kit: instructor-only, never shipped to students.

This package lives under ``solutions/`` and is not part of the installed ``grader`` package; the
batch grader finds it through an option (default: the repository's ``solutions/``).
"""

from .batchnorm import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward
from .capstone import mlp_loss
from .dropout import dropout_backward, dropout_forward
from .layernorm import layernorm_backward, layernorm_forward
from .norms import l1_norm, l1_penalty, l1_penalty_grad, l2_norm, l2_penalty, l2_penalty_grad

__all__ = [
    "l1_norm",
    "l2_norm",
    "l1_penalty",
    "l1_penalty_grad",
    "l2_penalty",
    "l2_penalty_grad",
    "dropout_forward",
    "dropout_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "mlp_loss",
    "layernorm_forward",
    "layernorm_backward",
]
