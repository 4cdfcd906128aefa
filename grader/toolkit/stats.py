"""How the experiments report: replicates, paired differences, and what the run can resolve.

The notebooks follow one rule (see DESIGN.md, "How experiments report"): choose on the
validation split, report on the held-out test split, vary the data split as well as the seed,
and compare settings by **paired** differences with their standard error. These helpers keep
that rule in one place, and turn a measured difference into a sentence that says whether the run
resolved it, so no number in the prose is ever typed by hand.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from .trainer import quick_mode

#: 97.5 % quantiles of Student's t with 1..10 degrees of freedom (beyond: about 2).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t975(n: int) -> float:
    """The factor of a two-sided 95 % interval, ``mean ± t975(n) * se``, for ``n`` values."""
    return T975[n - 2] if 2 <= n <= len(T975) + 1 else 2.0


def full_mode() -> bool:
    """Whether the notebook runs its long version (``FULL=1``; never under nbgrader).

    The default run fits the 30 s budget of a notebook; ``FULL=1`` trains more data splits,
    seeds and settings (at most about 3 minutes per notebook) to resolve effects that the default
    run cannot. The walkthrough site is built from the ``FULL=1`` run.

    Returns
    -------
    bool
    """
    return os.environ.get("FULL") == "1" and not quick_mode()


def replicates(n: int) -> list[tuple[int, int]]:
    """``n`` independent repetitions of an experiment, as ``(split, seed)`` pairs.

    Repetition ``k`` uses data split ``k`` (``load_digits(seed=k)``: other training, validation
    and test images) and training seed ``k`` (other initial weights, mini-batch order and masks),
    so the spread between repetitions includes the luck of the split, not only of the seed.

    Parameters
    ----------
    n : int
        Number of repetitions, at least 1.

    Returns
    -------
    list of (int, int)
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return [(k, k) for k in range(n)]


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error, ``std(ddof=1) / sqrt(n)`` (NaN for one value).

    Parameters
    ----------
    values : sequence of float, length n

    Returns
    -------
    mean, se : float
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    se = values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else math.nan
    return float(values.mean()), float(se)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Paired comparison of two settings measured on the same repetitions.

    Parameters
    ----------
    a, b : sequence of float, length n
        ``a[k]`` and ``b[k]`` come from the same repetition (same split, same seed).

    Returns
    -------
    dict
        ``mean`` and ``se`` of ``a - b``, ``wins`` (repetitions with ``a > b``), ``n``, and
        ``resolved``: True when the 95 % interval ``mean ± t975(n) se`` (Student's t, since
        ``n`` is small) excludes 0, and there are at least 3 repetitions.
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean, se = mean_se(diff)
    return {
        "mean": mean,
        "se": se,
        "wins": int(np.sum(diff > 0)),
        "n": int(diff.size),
        # fewer than 3 repetitions: the standard error itself is too unreliable to judge by
        "resolved": bool(diff.size >= 3 and np.isfinite(se) and abs(mean) > t975(diff.size) * se),
    }


def describe_difference(
    d: dict[str, float], *, scale: float = 100.0, unit: str = "points", digits: int = 1
) -> str:
    """A measured paired difference in words, saying whether the run resolved it.

    Parameters
    ----------
    d : dict
        The result of :func:`paired_difference`.
    scale : float
        Multiplies the difference for display (100: accuracies as percentage points).
    unit : str
    digits : int
        Decimals shown.

    Returns
    -------
    str
        e.g. ``"+0.6 ± 0.4 points (paired, 5 repetitions, higher in 4): within noise"``.
    """
    if d["n"] < 2:
        return f"{scale * d['mean']:+.{digits}f} {unit} (one repetition: no standard error, not a result)"
    verdict = (
        "too few repetitions to judge (the long run has more)"
        if d["n"] < 3
        else "resolved (its 95 % interval excludes 0)"
        if d["resolved"]
        else "within noise (its 95 % interval includes 0)"
    )
    return (
        f"{scale * d['mean']:+.{digits}f} ± {scale * d['se']:.{digits}f} {unit} (paired, {d['n']} repetitions, "
        f"higher in {d['wins']}): {verdict}"
    )
