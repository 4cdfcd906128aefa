"""``grade --scheduler`` against a cluster started by hand with Dask's own command line.

A scheduler (``dask scheduler --scheduler-file F``) and two workers (``dask worker
--scheduler-file F --nworkers 1 --nthreads 1``), all bound to 127.0.0.1; one worker process
(not its nanny) is SIGKILLed while the batch runs. Every notebook must get exactly one result,
the same as a local ``grade --jobs 2`` with the same salt, and a second run must come entirely
from the store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("distributed")

from distributed import Client  # noqa: E402
from kit_testing import ROOT  # noqa: E402

from grader.grading import discover  # noqa: E402

SALT = "cluster-cli-test-salt"
DASK = str(Path(sys.executable).parent / "dask")
NOTEBOOKS = 20
SLEEP = "import time as _slow\n_slow.sleep(0.4)\n"  # a slow (but honest) student: ~0.4 s each


def _start(command: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def hand_started_cluster(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--host", "127.0.0.1", "--no-dashboard"]
    processes = [
        _start(
            [DASK, "scheduler", "--scheduler-file", str(scheduler_file), "--port", "0", *common],
            tmp_path / "scheduler.log",
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), (tmp_path / "scheduler.log").read_text()
        for n in range(2):
            processes.append(
                _start(
                    [DASK, "worker", "--scheduler-file", str(scheduler_file)]
                    + ["--nworkers", "1", "--nthreads", "1", *common],
                    tmp_path / f"worker-{n}.log",
                )
            )
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        with Client(address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
            yield address, client
    finally:
        for process in reversed(processes):
            _stop(process)


def slow_class(folder: Path) -> list[Path]:
    """The first notebooks of the sample class, each with a sleep in its first answer cell."""
    made = []
    for target in discover([ROOT / "data" / "sample_class" / "submitted"])[:NOTEBOOKS]:
        relative = target.path.relative_to(ROOT / "data" / "sample_class")
        copy = folder / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        notebook = nbformat.read(target.path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get(
                "solution"
            ):
                cell.source = SLEEP + cell.source
                break
        nbformat.write(notebook, copy)
        made.append(copy)
    return made


def grade(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", "grade", *args, "--salt", SALT, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def verdicts(report: list[dict]) -> dict:
    """Per notebook: score, maximum, and every test's score and status."""
    return {
        (entry["extra_data"]["student"], entry["extra_data"]["assignment"]): (
            entry["score"],
            entry["max_score"],
            [(t["name"], t["score"], t["status"]) for t in entry["tests"]],
        )
        for entry in report
    }


@pytest.mark.slow
@pytest.mark.cluster
def test_grade_on_a_hand_started_cluster_survives_a_killed_worker(hand_started_cluster, tmp_path):
    address, client = hand_started_cluster
    notebooks = slow_class(tmp_path / "class")
    submitted = tmp_path / "class" / "submitted"
    store = tmp_path / "store"
    out = tmp_path / "cluster.json"
    command = [sys.executable, "-m", "grader", "grade", str(submitted), "--scheduler", address]
    command += ["--store", str(store), "--format", "json", "--out", str(out)]
    command += ["--salt", SALT, "--no-progress"]
    batch = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while len(list(store.glob("*/*.json"))) < 3 and time.monotonic() < deadline:
            assert batch.poll() is None, batch.communicate()
            time.sleep(0.05)
        victim_address, victim = sorted(client.run(os.getpid).items())[0]
        os.kill(victim, signal.SIGKILL)  # the worker process itself, not its nanny
        stored_at_kill = len(list(store.glob("*/*.json")))
        _, stderr = batch.communicate(timeout=600)
    finally:
        if batch.poll() is None:
            batch.kill()
    assert stored_at_kill < len(notebooks), "the worker was killed after the batch"
    assert batch.returncode == 0, stderr
    assert "graded on" in stderr and "Dask worker" in stderr
    report = json.loads(out.read_text())
    names = [(e["extra_data"]["student"], e["extra_data"]["assignment"]) for e in report]
    assert len(names) == len(set(names)) == len(notebooks)  # exactly one result each
    assert len(list(store.glob("*/*.json"))) == len({p.read_bytes() for p in notebooks})

    local = grade(str(submitted), "--jobs", "2", "--format", "json")
    assert local.returncode == 0, local.stderr
    assert verdicts(report) == verdicts(json.loads(local.stdout))

    again = grade(str(submitted), "--scheduler", address, "--store", str(store))
    assert again.returncode == 0, again.stderr
    assert f"{len(notebooks)} from the store, 0 graded" in again.stderr
    shutil.rmtree(store)
