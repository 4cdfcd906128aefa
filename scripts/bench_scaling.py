"""Benchmark: grading on a Dask cluster (1 and 2 local workers) against ``--jobs`` on one machine.

Builds one class (the sample answers, round robin, as ``bench_grading.py`` does), then grades
the same notebooks, sandbox on, in this process:

1. locally with ``grade_many(jobs=1)`` and ``jobs=2`` (what ``grade --jobs`` runs);
2. on a ``LocalCluster`` on loopback (worker processes with one thread each) with 1 worker and
   with 2 workers, through :func:`grader.runner.cluster.grade_on_cluster` (what
   ``grade --scheduler`` runs), cluster start-up excluded, the batch's own set-up included;
3. Dask's own cost per notebook: the same task payloads (the notebook's bytes) through
   ``client.map`` to a worker function that only returns a result-sized dict, streamed back with
   ``as_completed`` — serialisation and scheduling, no grading;
4. the fixed cost of a batch (connect, probe the workers, ship the case table): a batch of one.

To extrapolate to N machines: time ≈ batch set-up + notebooks × (per-notebook grading time /
workers + Dask's cost per notebook). Not a test; figures go to docs/figures/bench_scaling.json.
Run it on a quiet machine::

    .venv/bin/python scripts/bench_scaling.py               # 120 notebooks
    .venv/bin/python scripts/bench_scaling.py --total 600
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench_grading import build_class, lecture_notebooks  # noqa: E402
from figures import FIGURES, machine, write_figures  # noqa: E402

RESULT_BYTES = 6000  # about what one stored result holds


def echo_task(job: dict) -> dict:
    """A worker function that grades nothing: what Dask alone costs per notebook."""
    return {"result": {"name": job["name"], "padding": "x" * RESULT_BYTES}}


def cluster(workers: int):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )


def on_cluster(address: str, targets, reference) -> float:
    from grader.runner.cluster import grade_on_cluster

    results: dict = {}
    start = time.perf_counter()
    grade_on_cluster(
        targets, results.__setitem__, address=address, reference=reference, progress=False
    )
    wall = time.perf_counter() - start
    failed = [r.path for r in results.values() if r.grader_failure]
    if len(results) != len(targets) or failed:
        raise SystemExit(f"the cluster failed on {len(failed)} notebooks, e.g. {failed[:1]}")
    return wall


def dask_cost(address: str, targets) -> float:
    """Seconds per notebook of sending its bytes, scheduling, and streaming a result back."""
    from distributed import Client, as_completed

    from grader.runner.cluster import _job

    jobs = [_job(t) for t in targets]
    with Client(address, set_as_default=False) as client:
        client.submit(echo_task, jobs[0], pure=False).result()  # warm up
        start = time.perf_counter()
        futures = client.map(echo_task, jobs, pure=False)
        for _ in as_completed(futures, with_results=True, loop=client.loop):
            pass
        return (time.perf_counter() - start) / len(jobs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=int, default=120, help="notebooks in the class")
    parser.add_argument("--out", type=Path, default=FIGURES / "bench_scaling.json")
    args = parser.parse_args()

    from grader import references
    from grader.grading import discover, grade_many

    reference = references.load(ROOT / "solutions")
    before = machine("LocalCluster on loopback, worker processes with one thread each")
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as scratch:
        assignments = lecture_notebooks()
        written, mix = build_class(Path(scratch), assignments, args.total, total=args.total)
        targets = discover([Path(scratch) / "submitted"])
        figures["notebooks"] = written
        print(f"{written} notebooks ({mix}); load average {os.getloadavg()[0]:.2f}")
        grade_many(targets[:2], jobs=1, reference=reference, progress=False)  # sandbox probed

        for jobs in (1, 2):
            start = time.perf_counter()
            grade_many(targets, jobs=jobs, reference=reference, progress=False)
            figures[f"local_jobs{jobs}_seconds"] = round(time.perf_counter() - start, 3)
            print(f"local --jobs {jobs}: {figures[f'local_jobs{jobs}_seconds']:.2f} s")

        for workers in (1, 2):
            with cluster(workers) as running:
                address = running.scheduler_address
                on_cluster(address, targets[:1], reference)  # workers' sandboxes probed
                if workers == 1:
                    setup = on_cluster(address, targets[:1], reference)
                    figures["batch_setup_seconds"] = round(setup, 3)
                    figures["dask_ms_per_notebook"] = round(1000 * dask_cost(address, targets), 3)
                    print(
                        f"a batch of one: {setup:.2f} s; Dask alone: "
                        f"{figures['dask_ms_per_notebook']:.2f} ms per notebook"
                    )
                wall = on_cluster(address, targets, reference)
                figures[f"cluster_{workers}_workers_seconds"] = round(wall, 3)
                print(f"cluster, {workers} worker(s): {wall:.2f} s")

    for key in ("local_jobs1", "local_jobs2", "cluster_1_workers", "cluster_2_workers"):
        figures[f"{key}_notebooks_per_second"] = round(written / figures[f"{key}_seconds"], 2)
    figures["cluster_speedup_2_over_1_workers"] = round(
        figures["cluster_1_workers_seconds"] / figures["cluster_2_workers_seconds"], 3
    )
    figures["cluster_overhead_ms_per_notebook_vs_local"] = round(
        1000 * (figures["cluster_1_workers_seconds"] - figures["local_jobs1_seconds"]) / written,
        3,
    )
    summary = (
        f"{written} notebooks: --jobs 2 {figures['local_jobs2_seconds']:.1f} s; on a local Dask "
        f"cluster 1 worker {figures['cluster_1_workers_seconds']:.1f} s, 2 workers "
        f"{figures['cluster_2_workers_seconds']:.1f} s ({figures['cluster_speedup_2_over_1_workers']:.2f}x); "
        f"Dask's own cost {figures['dask_ms_per_notebook']:.1f} ms per notebook, "
        f"{figures['batch_setup_seconds']:.2f} s per batch"
    )
    reproduce = f"python scripts/bench_scaling.py --total {args.total}"
    write_figures("bench_scaling", figures, summary, reproduce, before, out=args.out)
    print(json.dumps(figures, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
