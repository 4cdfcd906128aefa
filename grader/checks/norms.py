"""Checks for notebook 01: L1/L2 norms and regularization penalties (being written; see issue 3)."""

from __future__ import annotations

NOTEBOOK = "01_norms"
FUNCTIONS = ("l1_norm", "l2_norm", "l1_penalty", "l1_penalty_grad", "l2_penalty", "l2_penalty_grad")
MISCONCEPTIONS: dict = {}
CHECKS: list = []
