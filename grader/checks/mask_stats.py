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

Every test is a mean :math:`\hat\mu` of :math:`n` independent indicators with mean :math:`\mu`
under that hypothesis, bounded by Hoeffding's inequality in its relative-entropy form (Hoeffding
1963, Theorem 1, which implies the familiar :math:`2 e^{-2 n t^2}`):
:math:`P(\hat\mu \ge \mu + t) \le e^{-n\,\mathrm{KL}(\mu + t \,\|\, \mu)}`, and the same below.
A test over a family of :math:`m` such means (rows, columns, pairs) rejects a mean when
:math:`n\,\mathrm{KL}(\hat\mu \,\|\, \mu) > \ln(2m/\delta)` (``μ`` widened by the slack), so by
the union bound the whole family fails a correct answer with probability at most :math:`\delta`.
A battery shares its budget ``false_fail`` equally among its tests, so (union bound again) a
correct answer fails **a whole battery** with probability at most ``false_fail``. (The
relative-entropy form matters at rates like 0.1: two identical rows of 180 units are what
independent ones give with probability :math:`0.82^{180} \approx 3\cdot10^{-16}`, which the
quadratic form cannot see.)

One call's mask :math:`K` (N × D, True = kept) — :func:`one_call`, eight tests
(:math:`n` indicators each, :math:`m` means in the family):

* ``drop rate``: the dropped fraction, :math:`n = ND`, :math:`m = 1`, mean :math:`p`;
* ``row drop rates``: every row, :math:`n = D`, :math:`m = N`;
* ``column drop rates``: every column, :math:`n = N`, :math:`m = D`;
* ``pairwise-row agreement``: every pair of rows, :math:`n = D`, :math:`m = N(N-1)/2`, mean
  :math:`a` (a lattice, or rows sharing masks, fails);
* ``neighbour agreement`` (four tests): units :math:`(2j, 2j+1)` of every row, and
  :math:`(2j+1, 2j+2)`; rows :math:`(2i, 2i+1)` of every column, and :math:`(2i+1, 2i+2)`;
  disjoint pairs, so :math:`n \approx ND/2`, :math:`m = 1`, mean :math:`a` (columns or rows
  sharing masks, lattices, fail).

Two calls' masks :math:`K_1, K_2` — :func:`across_calls`, two tests:

* ``agreement across calls``: units agreeing, :math:`n = ND`, :math:`m = 1`, mean :math:`a`;
* ``row agreement across calls``: every row of :math:`K_1` against every row of :math:`K_2`,
  :math:`n = D`, :math:`m = N^2` (a mask reused with its rows permuted fails).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from threadpoolctl import threadpool_limits

SLACK = 1e-6  # how far a correct sampler's drop probability may be from p_drop
ONE_CALL_TESTS = 8
ACROSS_CALL_TESTS = 2


def _kl(q: float, p: float) -> float:
    """Relative entropy KL(Bernoulli(q) || Bernoulli(p)), for 0 < p < 1."""
    a = q * math.log(q / p) if q > 0 else 0.0
    b = (1 - q) * math.log((1 - q) / (1 - p)) if q < 1 else 0.0
    return a + b


@functools.lru_cache(maxsize=4096)
def interval(n: int, mu: float, false_fail: float, family: int = 1, slack: float = SLACK):
    """``(lo, hi)``: a mean of ``n`` independent indicators, whose mean is within ``slack`` of
    ``mu``, falls outside with probability below ``false_fail`` for the whole ``family``.

    The ends solve n KL(end || mu ± slack) = ln(2 family / false_fail) (Hoeffding, KL form),
    found by bisection."""
    level = math.log(2.0 * family / false_fail) / n
    low_mu, high_mu = max(mu - slack, 0.0), min(mu + slack, 1.0)

    def end(start: float, stop: float, centre: float) -> float:
        if centre <= 0.0 or centre >= 1.0:
            return centre  # a rate of exactly 0 or 1 never moves
        if _kl(stop, centre) <= level:
            return stop  # no mean on that side is ever surprising
        a, b = start, stop
        for _ in range(60):
            m = (a + b) / 2
            a, b = (m, b) if _kl(m, centre) <= level else (a, m)
        return a

    return end(low_mu, 0.0, low_mu), end(high_mu, 1.0, high_mu)


def surprising(mean, n, mu: float, false_fail: float, family: int = 1, slack: float = SLACK):
    """Where a mean of ``n`` indicators is outside :func:`interval` (elementwise)."""
    lo, hi = interval(int(n), float(mu), float(false_fail), int(family), float(slack))
    mean = np.asarray(mean, dtype=np.float64)
    return (mean < lo) | (mean > hi)


def _agreement(p: float) -> float:
    return p * p + (1.0 - p) * (1.0 - p)


def _budget(false_fail: float) -> str:
    return f"a correct answer fails this test with probability < {false_fail:.0e}"


def _rates(dropped: np.ndarray, p: float, false_fail: float, axis: int, what: str) -> str:
    rates = dropped.mean(axis=axis)
    n = dropped.shape[axis]
    bad = surprising(rates, n, p, false_fail, rates.size)
    if not bad.any():
        return ""
    worst = int(np.argmax(np.where(bad, np.abs(rates - p), -1)))
    return (
        f"{what} drop rates: {what} {worst} dropped {rates[worst]:.0%} of its {n} units, "
        f"expected about {p:.0%} ({_budget(false_fail)})"
    )


def _pairs_agreement(a_rows: np.ndarray, b_rows: np.ndarray) -> np.ndarray:
    """Fraction of units on which row i of ``a_rows`` and row k of ``b_rows`` agree (float32 is
    exact here: the sums of ±1 stay far below 2**24)."""
    a = 2.0 * a_rows.astype(np.float32) - 1.0
    b = 2.0 * b_rows.astype(np.float32) - 1.0
    return (1.0 + (a @ b.T).astype(np.float64) / a_rows.shape[1]) / 2.0


def _worst_pair(agree, bad, expected: float, label: str, rows: str, d: int, budget: float) -> str:
    if not bad.any():
        return ""
    i, k = np.unravel_index(
        int(np.argmax(np.where(bad, np.abs(agree - expected), -1))), agree.shape
    )
    return (
        f"{label}: {rows.format(i=i, k=k)} agree on {agree[i, k]:.0%} of their {d} units, "
        f"independent masks on about {expected:.0%} ({_budget(budget)})"
    )


def _neighbours(kept: np.ndarray, a: float, share: float, axis: int) -> list[str]:
    problems = []
    lines = kept if axis == 1 else kept.T
    length = lines.shape[1]
    for offset in (0, 1):
        width = (length - offset) // 2
        if width == 0:
            continue
        left = lines[:, offset : offset + 2 * width : 2]
        right = lines[:, offset + 1 : offset + 2 * width : 2]
        agree = float(np.mean(left == right))
        if surprising(agree, left.size, a, share, slack=2 * SLACK):
            what = "units" if axis == 1 else "rows"
            problems.append(
                f"neighbour agreement: {what} {offset}+2j and {offset + 1}+2j agree on "
                f"{agree:.0%}, independent ones on about {a:.0%} ({_budget(share)})"
            )
    return problems


# one BLAS thread: these products are small, and threads fighting for 2 busy cores cost 10x
@threadpool_limits.wrap(limits=1, user_api="blas")
def one_call(kept: np.ndarray, p: float, false_fail: float) -> list[str]:
    """The problems the one-call battery finds in one mask (empty: it passes)."""
    kept = np.asarray(kept, dtype=bool)
    n, d = kept.shape
    dropped = (~kept).astype(np.float64)
    share = false_fail / ONE_CALL_TESTS
    a = _agreement(p)
    problems = []
    if surprising(dropped.mean(), kept.size, p, share):
        problems.append(
            f"drop rate: {dropped.mean():.1%} dropped, expected about {p:.0%} ({_budget(share)})"
        )
    problems.append(_rates(dropped, p, share, 1, "row"))
    problems.append(_rates(dropped, p, share, 0, "column"))
    if n >= 2:
        agree = _pairs_agreement(kept, kept)
        pairs = n * (n - 1) // 2
        bad = surprising(agree, d, a, share, pairs, 2 * SLACK) & np.triu(np.ones((n, n), bool), 1)
        rows = "rows {i} and {k}"
        problems.append(_worst_pair(agree, bad, a, "pairwise-row agreement", rows, d, share))
    problems += _neighbours(kept, a, share, axis=1) + _neighbours(kept, a, share, axis=0)
    return [problem for problem in problems if problem]


@threadpool_limits.wrap(limits=1, user_api="blas")
def across_calls(first: np.ndarray, second: np.ndarray, p: float, false_fail: float) -> list[str]:
    """The problems the two-call battery finds (empty: the masks look independent)."""
    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    n, d = first.shape
    share = false_fail / ACROSS_CALL_TESTS
    a = _agreement(p)
    problems = []
    agree = float(np.mean(first == second))
    if surprising(agree, first.size, a, share, slack=2 * SLACK):
        problems.append(
            f"agreement across calls: the two masks agree on {agree:.1%} of the units, "
            f"independent ones on about {a:.0%} ({_budget(share)})"
        )
    pairs = _pairs_agreement(first, second)
    bad = surprising(pairs, d, a, share, n * n, 2 * SLACK)
    rows = "row {i} of the first call and row {k} of the second"
    problems.append(_worst_pair(pairs, bad, a, "row agreement across calls", rows, d, share))
    return [problem for problem in problems if problem]
