"""The grader's own memory on issue 9's attack: functions returning objects whose class name is
40 MiB long. Not a test: run it by hand (it writes ``docs/figures/bench_hostile_memory.json``)::

    python scripts/bench_hostile_memory.py [--copies 3] [--jobs 2]

For one attack notebook, for ``--copies`` of it, and for one correct notebook (the baseline),
it runs ``python -m grader grade ... --format json --out FILE`` in a fresh process and records
that process's peak resident memory (``ru_maxrss`` of the grader itself, not of the sandboxed
children), its wall-clock time and the size of the JSON it wrote. Times depend on the load of
the machine; memory much less so.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hostile"))
sys.path.insert(0, str(ROOT / "scripts"))
from figures import machine, write_figures  # noqa: E402

MEASURE = """
import resource, sys, time
from grader.__main__ import main
start = time.perf_counter()
code = main(["grade", *sys.argv[1:], "--no-progress"])
print(code, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
HUGE = "Huge = type('N' * (40 * 2**20), (), {})\n"
FORWARD = "def dropout_forward(x, p_drop, mode='train', rng=None):\n    return Huge()\n"
BACKWARD = "def dropout_backward(dout, cache):\n    return Huge()\n"


def measure(folder: Path, jobs: int) -> dict:
    """Grade ``folder`` in a fresh interpreter: its exit code, seconds, peak RSS, JSON size."""
    out = folder.parent / f"{folder.name}.json"
    command = [sys.executable, "-c", MEASURE, str(folder), "--format", "json", "--out", str(out)]
    command += ["--jobs", str(jobs)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    code, seconds, rss_kib = done.stdout.split()[-3:]
    return {
        "exit": int(code),
        "seconds": round(float(seconds), 2),
        "grader_peak_rss_mib": round(int(rss_kib) / 1024, 1),
        "json_bytes": out.stat().st_size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    from hostile_helpers import submission

    before = machine()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        base = Path(tmp)
        submission(base / "honest")
        for i in range(args.copies):  # different bytes, so none is graded once for all
            submission(base / "attack", HUGE + FORWARD + f"# {i}\n", BACKWARD, student=f"s{i}")
        one = base / "attack" / "submitted" / "s0"
        figures["honest_notebook"] = measure(base / "honest" / "submitted", 1)
        figures["attack_one_notebook"] = measure(one, 1)
        figures[f"attack_{args.copies}_notebooks_jobs_{args.jobs}"] = measure(
            base / "attack" / "submitted", args.jobs
        )
    attack = figures[f"attack_{args.copies}_notebooks_jobs_{args.jobs}"]
    summary = (
        f"grader peak memory {figures['honest_notebook']['grader_peak_rss_mib']:.0f} MiB on an "
        f"honest notebook, {attack['grader_peak_rss_mib']:.0f} MiB on {args.copies} notebooks "
        "returning 40 MiB type names"
    )
    path = write_figures(
        "bench_hostile_memory",
        figures,
        summary,
        "python scripts/bench_hostile_memory.py",
        before,
    )
    print(path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
