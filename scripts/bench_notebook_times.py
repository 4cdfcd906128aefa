"""Measure how long each solution notebook takes top to bottom: the default run and ``FULL=1``.

Budgets (docs/experiments.md): the default run at most 30 s per notebook on 2 cores, ``FULL=1`` at
most 3 minutes. Each notebook is executed with nbclient in a fresh kernel; the figures are the wall
time and the kernel's own CPU time (user + system; on a busy machine the wall time is inflated by the
other processes, the CPU time much less). Writes ``docs/figures/bench_notebook_times.json``.

Usage::

    python scripts/bench_notebook_times.py                 # default run of every notebook
    python scripts/bench_notebook_times.py --full          # and the FULL=1 run
    python scripts/bench_notebook_times.py 02_dropout      # only some notebooks
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from figures import machine, write_figures  # noqa: E402

CPU_CELL = (
    "import resource as _r\n_u = _r.getrusage(_r.RUSAGE_SELF)\nprint(_u.ru_utime + _u.ru_stime)"
)


def run(path: Path, full: bool) -> dict[str, float]:
    """Wall and kernel CPU seconds of one notebook, top to bottom."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(CPU_CELL))
    env = {k: v for k, v in os.environ.items() if k not in ("NBGRADER_EXECUTION", "DNN_KIT_QUICK")}
    env["FULL"] = "1" if full else "0"
    start = time.perf_counter()
    client = NotebookClient(notebook, timeout=900, kernel_name="python3")
    client.execute(env=env)
    wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 1),
        "kernel_cpu_s": round(float(notebook.cells[-1].outputs[0].text), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="e.g. 02_dropout (default: all)")
    parser.add_argument("--full", action="store_true", help="also measure the FULL=1 run")
    args = parser.parse_args()
    paths = sorted(
        p
        for p in (ROOT / "solutions").glob("*/*.ipynb")
        if p.parent.name == p.stem and (not args.notebooks or p.stem in args.notebooks)
    )
    figures = {}
    before = machine()
    for path in paths:
        for full in (False, True) if args.full else (False,):
            key = f"{path.stem}{' FULL=1' if full else ''}"
            figures[key] = run(path, full)
            print(key, figures[key], flush=True)
    default = {k: v for k, v in figures.items() if "FULL" not in k}
    summary = "solution notebooks top to bottom (default run): " + ", ".join(
        f"{k} {v['wall_s']:.0f} s" for k, v in default.items()
    )
    path = write_figures(
        "bench_notebook_times",
        figures,
        summary,
        "python scripts/bench_notebook_times.py" + (" --full" if args.full else ""),
        before,
    )
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
