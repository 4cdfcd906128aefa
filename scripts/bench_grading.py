"""Benchmark: our sandboxed, parallel grader against stock ``nbgrader autograde``.

Builds one class (``--students`` students × every lecture notebook under ``notebooks/``),
each notebook filled with a sample answer from ``data/sample_class/answers/<assignment>/``
(correct and mistaken answers mixed, round robin), then grades the same submissions

1. with stock nbgrader 0.9.6, in a scratch course directory (``nbgrader_config.py`` and the
   solution notebooks as its source, ``nbgrader generate_assignment``, then
   ``nbgrader autograde <assignment>`` for each assignment, one student after another);
2. with ours: ``python -m grader grade submitted/ --jobs N`` (sandbox on), in a fresh process;

and prints both wall-clock times and the ratio. It then times ours on ``--total`` (600)
notebook submissions, and writes the figures to ``docs/figures/bench_grading.json`` (the
README's "Measured here" table, see ``scripts/figures.py``). Not a test: run it by hand on a
quiet machine::

    .venv/bin/python scripts/bench_grading.py                  # 50 students, jobs = all cores
    .venv/bin/python scripts/bench_grading.py --students 2 --jobs 2   # stock run on 8 notebooks
    .venv/bin/python scripts/bench_grading.py --jobs 2 --skip-nbgrader
    .venv/bin/python scripts/bench_grading.py --keep /tmp/bench  # keep the scratch course

Stock nbgrader takes seconds per notebook, so ``--students`` sets the size of the class both
graders grade (the ratio); the 600-notebook run is ours alone.

Wall-clock times depend on what else the machine runs: the load average is printed with each
figure. (CPU times are not compared: bubblewrap does not hand the times of the processes in its
sandbox back to the grader, so ours would be undercounted.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from figures import machine, write_figures  # noqa: E402
from make_sample_class import answer_functions, fill  # noqa: E402

ANSWERS = ROOT / "data" / "sample_class" / "answers"
VENV_BIN = Path(sys.executable).parent


def lecture_notebooks() -> list[str]:
    """Every released lecture notebook: ``notebooks/<a>/<a>.ipynb`` with a solution notebook."""
    return sorted(
        folder.name
        for folder in (ROOT / "notebooks").iterdir()
        if (folder / f"{folder.name}.ipynb").exists()
        and (ROOT / "solutions" / folder.name / f"{folder.name}.ipynb").exists()
    )


def build_class(course: Path, assignments: list[str], students: int, total: int | None = None):
    """``course/submitted/<student>/<a>/<a>.ipynb``; returns (notebooks written, answer mix)."""
    written, mix = 0, {"full marks": 0, "mistaken": 0, "untouched": 0}
    texts: dict[str, list[tuple[str, str]]] = {}
    for assignment in assignments:
        released = nbformat.read(
            ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4
        )
        answers = (
            sorted((ANSWERS / assignment).glob("*.py")) if (ANSWERS / assignment).is_dir() else []
        )
        texts[assignment] = [
            (
                "full marks" if "expect: full marks" in a.read_text() else "mistaken",
                nbformat.writes(fill(released, answer_functions(a))),
            )
            for a in answers
        ] or [("untouched", nbformat.writes(released))]
    for i in range(students):
        for assignment in assignments:
            if total is not None and written >= total:
                return written, mix
            kind, text = texts[assignment][i % len(texts[assignment])]
            path = course / "submitted" / f"s{i:03d}" / assignment / f"{assignment}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")
            written += 1
            mix[kind] += 1
    return written, mix


def timed(command: list[str], cwd: Path, env: dict | None = None) -> float:
    """Run ``command``; its wall-clock seconds."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return wall


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


def nbgrader_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # nbgrader runs `alembic`
    env.pop("DNN_KIT_QUICK", None)
    return env


def run_nbgrader(course: Path, assignments: list[str]) -> tuple[float, int]:
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    env = nbgrader_env()
    nbgrader = str(VENV_BIN / "nbgrader")
    for assignment in assignments:
        source = course / "solutions" / assignment
        source.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "solutions" / assignment / f"{assignment}.ipynb", source)
        timed([nbgrader, "generate_assignment", assignment, "--force"], course, env)
    wall = 0.0
    for assignment in assignments:
        print(f"  nbgrader autograde {assignment} ...", file=sys.stderr, flush=True)
        seconds = timed([nbgrader, "autograde", assignment, "--force"], course, env)
        wall += seconds
        print(f"    {seconds:.1f} s ({load()})", file=sys.stderr, flush=True)
    graded = len(list((course / "autograded").glob("*/*/*.ipynb")))
    return wall, graded


def run_ours(course: Path, jobs: int) -> tuple[float, list[dict]]:
    out = course / "ours.json"
    command = [sys.executable, "-m", "grader", "grade", str(course / "submitted")]
    command += ["--jobs", str(jobs), "--format", "json", "--out", str(out), "--no-progress"]
    env = dict(os.environ)
    env.pop("DNN_KIT_QUICK", None)
    wall = timed(command, ROOT, env)
    return wall, json.loads(out.read_text())


def summary(results: list[dict]) -> str:
    isolation = sorted({r["extra_data"].get("isolation", "?") for r in results})
    errors = sum(1 for r in results if r["extra_data"].get("isolation", "").startswith("none"))
    full = sum(1 for r in results if r["score"] == r["max_score"] and r["max_score"] > 0)
    return f"{len(results)} results, {full} with full marks, {errors} ungradable, isolation {isolation}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--total", type=int, default=600, help="notebooks in the second run")
    parser.add_argument("--skip-nbgrader", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the scratch courses here and keep them")
    parser.add_argument("--out", type=Path, help="write the figures here instead of docs/figures/")
    args = parser.parse_args()
    before = machine(f"sandbox on, --jobs {args.jobs}")
    figures: dict = {"jobs": args.jobs}

    assignments = lecture_notebooks()
    scratch = args.keep or Path(tempfile.mkdtemp(prefix="bench-grading-"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"assignments: {', '.join(assignments)}",
        flush=True,
    )
    try:
        course = scratch / "class"
        if course.exists():
            shutil.rmtree(course)
        count, mix = build_class(course, assignments, args.students)
        print(f"class: {args.students} students × {len(assignments)} notebooks = {count} ({mix})")

        ours_wall, results = run_ours(course, args.jobs)
        print(
            f"ours (--jobs {args.jobs}, sandbox on): {ours_wall:.1f} s, "
            f"{ours_wall / count * 1000:.0f} ms per notebook ({load()}); {summary(results)}",
            flush=True,
        )
        figures |= {"class_notebooks": count, "class_ours_seconds": round(ours_wall, 2)}
        if not args.skip_nbgrader:
            stock_wall, graded = run_nbgrader(course, assignments)
            print(
                f"stock nbgrader autograde: {stock_wall:.1f} s, {stock_wall / count:.2f} s per "
                f"notebook ({graded} notebooks autograded)"
            )
            print(f"ratio: ours is {stock_wall / ours_wall:.1f}x faster (wall clock)")
            figures |= {
                "class_stock_seconds": round(stock_wall, 2),
                "class_stock_autograded": graded,
                "ratio_stock_over_ours": round(stock_wall / ours_wall, 1),
            }

        big = scratch / "big"
        if big.exists():
            shutil.rmtree(big)
        students = -(-args.total // len(assignments))
        count, mix = build_class(big, assignments, students, total=args.total)
        load_before_big = round(os.getloadavg()[0], 2)
        wall, results = run_ours(big, args.jobs)
        print(
            f"ours on {count} notebook submissions (--jobs {args.jobs}): {wall:.1f} s "
            f"({load()}); {summary(results)}"
        )
        figures |= {
            "batch_notebooks": count,
            "batch_seconds": round(wall, 2),
            "batch_ms_per_notebook": round(wall / count * 1000, 1),
            "batch_load_before": load_before_big,
            "batch_mix": mix,
            "batch_results": summary(results),
        }
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    text = (
        f"{figures['batch_notebooks']} notebooks graded with the sandbox on, --jobs {args.jobs}: "
        f"{figures['batch_seconds']:.1f} s ({figures['batch_ms_per_notebook']:.0f} ms per "
        f"notebook; load average {load_before_big:.2f} before that run)"
    )
    if "class_stock_seconds" in figures:
        text += (
            f"; on {figures['class_notebooks']} notebooks ours {figures['class_ours_seconds']:.1f} s, "
            f"stock `nbgrader autograde` {figures['class_stock_seconds']:.1f} s "
            f"({figures['ratio_stock_over_ours']}× ours)"
        )
    reproduce = f"python scripts/bench_grading.py --students {args.students} --jobs {args.jobs}"
    reproduce += f" --total {args.total}" + (" --skip-nbgrader" if args.skip_nbgrader else "")
    path = write_figures("bench_grading", figures, text, reproduce, before, out=args.out)
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
