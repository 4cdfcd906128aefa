"""Benchmark: a student's self-check of a whole notebook, ours against stock `nbgrader validate`.

    python scripts/bench_selfcheck.py [NOTEBOOK] [--repeat 5] [--note "quiet machine"]

Both are timed as a student runs them, as fresh commands from a terminal, on the same notebook
(default: the bundled correct dropout submission). Ours runs the public checks in one plain child
process (``grader/runner/selfcheck.py``); nbgrader validate starts a kernel and executes every
cell (experiments shortened, since it sets NBGRADER_EXECUTION). Also timed, as the floor: a
fresh interpreter importing NumPy. Prints the median of each and their ratio, and writes them to
``docs/figures/bench_selfcheck.json`` (``--out`` elsewhere) for the README.
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

from figures import ROOT, machine, write_figures

DEFAULT = ROOT / "data" / "sample_class" / "submitted" / "ada" / "02_dropout" / "02_dropout.ipynb"


def timed(command: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: some check failed, still a complete self-check
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return seconds


def runs(command: list[str], cwd: Path, env: dict, repeat: int) -> list[float]:
    timed(command, cwd, env)  # warm the file cache once; not counted
    return [timed(command, cwd, env) for _ in range(repeat)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--note", default="", help="how quiet the machine was, in words")
    parser.add_argument("--out", type=Path, help="where the JSON goes (default docs/figures/)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    notebook = args.notebook.resolve()
    env = dict(
        os.environ,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    before = machine(args.note)
    with tempfile.TemporaryDirectory() as scratch:
        floor = runs([sys.executable, "-c", "import numpy"], ROOT, env, args.repeat)
        ours = runs(
            [sys.executable, "-m", "grader", "check", str(notebook)], ROOT, env, args.repeat
        )
        stock = runs(
            [sys.executable, "-m", "nbgrader", "validate", str(notebook)],
            Path(scratch),
            env,
            args.repeat,
        )
    floor_s, ours_s, stock_s = map(statistics.median, (floor, ours, stock))
    ratio = stock_s / ours_s

    def show(what: str, median: float, all_runs: list[float]) -> None:
        print(
            f"{what:<26} median {median:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in all_runs)})"
        )

    print(f"notebook: {notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook}")
    show("python -c 'import numpy'", floor_s, floor)
    show("python -m grader check", ours_s, ours)
    show("nbgrader validate", stock_s, stock)
    print(f"ratio (nbgrader / ours): {ratio:.1f}x")
    print(f"machine: {before['quiet']}")
    if not args.no_write:
        path = write_figures(
            "bench_selfcheck",
            {
                "notebook": notebook.name,
                "repeat": args.repeat,
                "selfcheck_seconds": round(ours_s, 3),
                "nbgrader_validate_seconds": round(stock_s, 3),
                "python_numpy_start_seconds": round(floor_s, 3),
                "ratio": round(ratio, 1),
            },
            f"{ours_s:.2f} s for `python -m grader check` on {notebook.name}, against "
            f"{stock_s:.1f} s for `nbgrader validate` ({ratio:.0f}×); a bare Python + NumPy "
            f"start takes {floor_s:.2f} s (medians of {args.repeat})",
            "python scripts/bench_selfcheck.py",
            before,
            args.out,
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
