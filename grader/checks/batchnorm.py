"""Checks for notebook 03: batch normalization (being written; see issue 4)."""

from __future__ import annotations

NOTEBOOK = "03_batchnorm"
FUNCTIONS = ("batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt")
MISCONCEPTIONS: dict = {}
CHECKS: list = []
