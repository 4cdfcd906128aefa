"""Numbers as people read them: scores rounded for display only (stored values stay exact)."""

from __future__ import annotations

DISPLAY_DECIMALS = 2


def for_people(value: float) -> str:
    """``4.1667`` as ``4.17``, ``10.0`` as ``10``, ``0.5`` as ``0.5``: at most two decimals."""
    rounded = round(float(value), DISPLAY_DECIMALS)
    if rounded == 0:
        rounded = 0.0  # never "-0"
    return f"{rounded:.{DISPLAY_DECIMALS}f}".rstrip("0").rstrip(".")
