r"""A named battery of statistical tests for dropout masks, each with a stated false-fail bound.

The judge code is public, so no test here can *certify* randomness: a student who reads it can
always build a mask that passes. What the battery does is reject, with a bound on wrongly failing
a correct answer, the structured and reused masks students (and cheats) actually produce: a
lattice shifted by the generator, rows or columns sharing masks, one mask reused across calls with
a few units changed, rows permuted between calls.

**The null hypothesis** is what every correct answer does, however it samples (``>`` or ``>=``,
``binomial``, ``random() <``, float32 uniforms): each unit is dropped independently, with a
probability :math:`p'` within ``SLACK`` = 1e-6 of ``p_drop`` (float32 uniforms move it by less
than :math:`2^{-24}`). Two units then agree (both kept or both dropped) with probability
:math:`a' = p'^2 + (1-p')^2`, within ``2 SLACK`` of :math:`a = p^2 + (1-p)^2`.

Every test is a mean of :math:`n` independent indicators under that hypothesis, bounded by
Hoeffding's inequality :math:`P(|\hat\mu - \mu| \ge t) \le 2 e^{-2 n t^2}`; a test over a family
of :math:`m` such means (rows, columns, pairs) uses :math:`t = \sqrt{\ln(2m/\delta)/(2n)}` for
each, so by the union bound the whole family fails a correct answer with probability at most
:math:`\delta`. A battery shares its budget ``false_fail`` equally among its tests, so (union
bound again) a correct answer fails **a whole battery** with probability at most ``false_fail``.

One call's mask :math:`K` (N × D, True = kept) — :func:`one_call`, six tests:

* ``drop rate``: :math:`|\text{dropped fraction} - p| \le t(N D)`;
* ``row drop rates``: every row, :math:`t(D)`, union over N rows;
* ``column drop rates``: every column, :math:`t(N)`, union over D columns;
* ``pairwise-row agreement``: every pair of rows agrees on a fraction within :math:`t(D)` of
  :math:`a`, union over :math:`N(N-1)/2` pairs (a lattice, or rows sharing masks, fails);
* ``neighbour agreement`` (two tests): units :math:`(2j, 2j+1)`, and :math:`(2j+1, 2j+2)`, of every
  row agree within :math:`t(N\lfloor D/2 \rfloor)` of :math:`a` (columns sharing masks fail).

Two calls' masks :math:`K_1, K_2` — :func:`across_calls`, two tests:

* ``agreement across calls``: the fraction of units where they agree, :math:`t(N D)`;
* ``row agreement across calls``: every row of :math:`K_1` against every row of :math:`K_2`,
  :math:`t(D)`, union over :math:`N^2` pairs (a mask reused with its rows permuted fails).
"""

from __future__ import annotations

import numpy as np

SLACK = 1e-6  # how far a correct sampler's drop probability may be from p_drop


def half_width(n: int, false_fail: float, family: int = 1) -> float:
    """Hoeffding half-width for a mean of ``n`` indicators, union-bounded over ``family`` means."""
    return float(np.sqrt(np.log(2.0 * family / false_fail) / (2.0 * n)))


def _agreement(p: float) -> float:
    return p * p + (1.0 - p) * (1.0 - p)


def _rates(dropped: np.ndarray, p: float, false_fail: float, axis: int, what: str) -> str:
    rates = dropped.mean(axis=axis)
    n = dropped.shape[axis]
    t = half_width(n, false_fail, rates.size) + SLACK
    worst = int(np.argmax(np.abs(rates - p)))
    if abs(rates[worst] - p) <= t:
        return ""
    return (
        f"{what} drop rates: {what} {worst} dropped {rates[worst]:.0%} of its {n} units; "
        f"expected {p:.0%} ± {t:.0%}"
    )


def _pairs_agreement(a_rows: np.ndarray, b_rows: np.ndarray, same: bool) -> np.ndarray:
    """Fraction of units on which row i of ``a_rows`` and row k of ``b_rows`` agree."""
    a = 2.0 * a_rows - 1.0
    b = 2.0 * b_rows - 1.0
    agree = (1.0 + a @ b.T / a_rows.shape[1]) / 2.0
    if same:  # only pairs i < k
        agree = np.where(np.triu(np.ones(agree.shape, bool), 1), agree, np.nan)
    return agree


def _worst_pair(agree: np.ndarray, expected: float, t: float, label: str, rows: str, d: int) -> str:
    deviation = np.abs(agree - expected)
    if not np.any(deviation > t):
        return ""
    i, k = np.unravel_index(int(np.nanargmax(deviation)), agree.shape)
    return (
        f"{label}: {rows.format(i=i, k=k)} agree on {agree[i, k]:.0%} of their {d} units; "
        f"independent masks agree on {expected:.0%} ± {t:.0%}"
    )


def one_call(kept: np.ndarray, p: float, false_fail: float) -> list[str]:
    """The problems the one-call battery finds in one mask (empty: it passes)."""
    kept = np.asarray(kept, dtype=bool)
    n, d = kept.shape
    dropped = (~kept).astype(np.float64)
    share = false_fail / 6
    a = _agreement(p)
    problems = []
    t = half_width(kept.size, share) + SLACK
    if abs(dropped.mean() - p) > t:
        problems.append(f"drop rate: {dropped.mean():.1%} dropped; expected {p:.0%} ± {t:.1%}")
    problems.append(_rates(dropped, p, share, 1, "row"))
    problems.append(_rates(dropped, p, share, 0, "column"))
    if n >= 2:
        t = half_width(d, share, n * (n - 1) // 2) + 2 * SLACK
        k = kept.astype(np.float64)
        agree = _pairs_agreement(k, k, True)
        problems.append(_worst_pair(agree, a, t, "pairwise-row agreement", "rows {i} and {k}", d))
    for offset in (0, 1):
        left = kept[:, offset : d - 1 : 2]
        right = kept[:, offset + 1 : d : 2]
        width = min(left.shape[1], right.shape[1])
        if width == 0:
            continue
        agree = float(np.mean(left[:, :width] == right[:, :width]))
        t = half_width(n * width, share) + 2 * SLACK
        if abs(agree - a) > t:
            problems.append(
                f"neighbour agreement: units {offset}+2j and {offset + 1}+2j agree on {agree:.0%}; "
                f"independent units agree on {a:.0%} ± {t:.1%}"
            )
    return [problem for problem in problems if problem]


def across_calls(first: np.ndarray, second: np.ndarray, p: float, false_fail: float) -> list[str]:
    """The problems the two-call battery finds (empty: the masks look independent)."""
    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    n, d = first.shape
    share = false_fail / 2
    a = _agreement(p)
    problems = []
    agree = float(np.mean(first == second))
    t = half_width(first.size, share) + 2 * SLACK
    if abs(agree - a) > t:
        problems.append(
            f"agreement across calls: the two masks agree on {agree:.1%} of the units; "
            f"independent masks agree on {a:.0%} ± {t:.1%}"
        )
    t = half_width(d, share, n * n) + 2 * SLACK
    pairs = _pairs_agreement(first.astype(np.float64), second.astype(np.float64), False)
    rows = "row {i} of the first call and row {k} of the second"
    problems.append(_worst_pair(pairs, a, t, "row agreement across calls", rows, d))
    return [problem for problem in problems if problem]
