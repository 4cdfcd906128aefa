"""Benchmark: a student's self-check of a whole notebook, ours against stock `nbgrader validate`.

    python scripts/bench_selfcheck.py [NOTEBOOK] [--repeat 5]

Both are timed as a student runs them, as fresh commands from a terminal, on the same notebook
(default: the bundled correct dropout submission). Ours runs the public checks in a separate
process; nbgrader validate starts a kernel and executes every cell (experiments shortened, since
it sets NBGRADER_EXECUTION). Prints the median of each and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "data" / "sample_class" / "submitted" / "ada" / "02_dropout" / "02_dropout.ipynb"


def timed(command: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = dict(
        os.environ,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    with tempfile.TemporaryDirectory() as scratch:
        ours = [
            timed(
                [sys.executable, "-m", "grader", "check", str(args.notebook.resolve())], ROOT, env
            )
            for _ in range(args.repeat)
        ]
        stock = [
            timed(
                [sys.executable, "-m", "nbgrader", "validate", str(args.notebook.resolve())],
                Path(scratch),
                env,
            )
            for _ in range(args.repeat)
        ]
    ours_s, stock_s = statistics.median(ours), statistics.median(stock)
    print(f"notebook: {args.notebook}")
    print(
        f"python -m grader check   median {ours_s:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})"
    )
    print(
        f"nbgrader validate        median {stock_s:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in stock)})"
    )
    print(f"ratio (nbgrader / ours): {stock_s / ours_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
