"""Time the reference's staged and closed-form batch-norm backward passes (a benchmark, not a test).

The closed form (``batchnorm_backward_alt``) should be at least ``TARGET`` times as fast as the
staged version (``batchnorm_backward``) on a (4096, 1024) float64 batch. Both run on the same cache;
the calls alternate (staged, closed form, staged, ...) so that both see the same machine load, and
the first round is a warm-up that is not counted. The script prints the median time of each, the
ratio of the medians and the median of the per-round ratios, writes them to
``docs/figures/bench_batchnorm_backward.json`` (for the README), and exits 0 whatever it measures.

Usage::

    python scripts/bench_batchnorm_backward.py [--n 4096] [--d 1024] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from figures import machine, write_figures

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "solutions"))
from reference import (  # noqa: E402 - the instructor-only package lives under solutions/
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
)

TARGET = 1.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="batch size N")
    parser.add_argument("--d", type=int, default=1024, help="number of features D")
    parser.add_argument("--repeats", type=int, default=30, help="timed rounds (after one warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="how quiet the machine was, in words")
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    args = parser.parse_args()
    before = machine(args.note)

    rng = np.random.default_rng(args.seed)
    x = 5.0 + 3.0 * rng.standard_normal((args.n, args.d))
    gamma = rng.uniform(0.5, 2.0, args.d)
    beta = rng.normal(size=args.d)
    dout = rng.standard_normal((args.n, args.d))
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})

    functions = {"staged": batchnorm_backward, "closed form": batchnorm_backward_alt}
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(args.repeats + 1):
        for name, backward in functions.items():
            start = time.perf_counter()
            backward(dout, cache)
            seconds[name].append(time.perf_counter() - start)
    for name in functions:
        del seconds[name][0]  # warm-up round

    check = [
        np.max(np.abs(a - b))
        for a, b in zip(*(f(dout, cache) for f in functions.values()), strict=True)
    ]
    median = {name: statistics.median(s) for name, s in seconds.items()}
    ratio = median["staged"] / median["closed form"]
    paired = statistics.median(
        s / c for s, c in zip(seconds["staged"], seconds["closed form"], strict=True)
    )
    print(f"batch ({args.n}, {args.d}) float64, {args.repeats} alternating rounds after a warm-up")
    for name in functions:
        q1, _, q3 = statistics.quantiles(seconds[name], n=4)
        print(
            f"  {name:<12} median {1e3 * median[name]:8.2f} ms  (quartiles {1e3 * q1:.2f}–{1e3 * q3:.2f} ms)"
        )
    print(f"  largest difference between the two results (dx, dgamma, dbeta): {max(check):.1e}")
    print(f"  ratio of medians (staged / closed form): {ratio:.2f}x")
    print(f"  median of per-round ratios:              {paired:.2f}x")
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"  target >= {TARGET}x: {verdict}")
    if not args.no_write:
        path = write_figures(
            "bench_batchnorm_backward",
            {
                "n": args.n,
                "d": args.d,
                "staged_ms": round(1e3 * median["staged"], 2),
                "closed_form_ms": round(1e3 * median["closed form"], 2),
                "ratio": round(ratio, 2),
                "paired_ratio": round(paired, 2),
            },
            f"closed form {ratio:.1f}× as fast as the staged version on ({args.n}, {args.d}) "
            f"float64 ({1e3 * median['closed form']:.0f} ms against {1e3 * median['staged']:.0f} ms, "
            f"medians of {args.repeats})",
            "python scripts/bench_batchnorm_backward.py",
            before,
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
