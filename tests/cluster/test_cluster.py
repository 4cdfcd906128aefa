"""Grading on a real Dask cluster on loopback (``grader.runner.cluster``): no mocks of Dask.

The fast tests check what the client refuses before it connects. The slow ones start a
``LocalCluster`` (two worker processes, one thread each, bound to 127.0.0.1) and compare every
result with a local ``grade_many`` run with the same salt; faults are injected by a worker
plugin that SIGKILLs the worker process (``cluster_faults``).
"""

from __future__ import annotations

import dataclasses
import sys

import cloudpickle
import pytest

pytest.importorskip("distributed")

import cluster_faults  # noqa: E402
from distributed import Client, LocalCluster, Security  # noqa: E402
from hostile.hostile_helpers import (  # noqa: E402
    FULL,
    IDLE_LIMITS,
    SLACK,
    idle_class,
)
from kit_testing import ROOT  # noqa: E402

from grader.__main__ import main  # noqa: E402
from grader.checks import NOTEBOOKS  # noqa: E402
from grader.grading import Target, discover, grade_many  # noqa: E402
from grader.runner import cluster  # noqa: E402
from grader.runner.cluster import ClusterError, check_address, grade_on_cluster  # noqa: E402
from grader.runner.cluster_worker import CaseTable  # noqa: E402
from grader.runner.process import Limits  # noqa: E402
from grader.store import Context, Store, grade_with_store, result_to_dict  # noqa: E402

cloudpickle.register_pickle_by_value(cluster_faults)

SALT = "cluster-test-salt"
# generous: on a loaded machine a capstone must not time out in one run and not in the other
ALLOWED_FAILURES = 2  # the scheduler gives a task up after it killed three workers (default: 3)
LIMITS = Limits(cells_seconds=120, case_seconds=60, total_seconds=600)
CLASS = ROOT / "data" / "sample_class" / "submitted"


def assert_same(results, expected) -> None:
    """Compare results one notebook at a time (a readable diff when one differs)."""
    assert len(results) == len(expected)
    for got, want in zip(results, expected, strict=True):
        assert comparable(got) == comparable(want), got.path


def comparable(result) -> dict:
    """What a result decides: scores, errors, notes, and every case's verdict and diagnosis.

    Not the measured figures in case messages: a student's dropout that draws from NumPy's
    default generator drops a different 30.2 % or 29.7 % on every run, locally too.
    Of the stated ``limits``, not the time the per-student budget granted (``total_seconds``):
    both paths keep the budget, but what one of a student's notebooks is granted depends on how
    long the student's other notebooks took.
    """
    data = result_to_dict(result)
    for key in ("seconds", "path"):
        data.pop(key)
    data["limits"].pop("total_seconds")
    data["score"] = result.score
    for check in data["checks"]:
        check["cases"] = [(c["name"], c["passed"], c["diagnosis"]) for c in check["cases"]]
    return data


# --------------------------------------------------------------------------- refused at once
@pytest.mark.parametrize(
    "address",
    ["tcp://10.0.0.5:8786", "10.0.0.5:8786", "tcp://example.org:8786", "ws://127.0.0.1:8786"],
)
def test_plaintext_or_unknown_protocol_beyond_loopback_is_refused(address):
    with pytest.raises(ClusterError):
        check_address(address)


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:8786", "tcp://localhost:8786", "tcp://[::1]:8786", "tls://10.0.0.5:8786"],
)
def test_loopback_and_tls_addresses_are_accepted(address):
    assert check_address(address) == address


def test_cli_refuses_plaintext_scheduler_beyond_loopback(capsys):
    notebook = next(iter(discover([CLASS]))).path
    code = main(["grade", str(notebook), "--scheduler", "tcp://192.0.2.7:8786", "--no-progress"])
    assert code == 2
    assert "tls://" in capsys.readouterr().err


def test_scheduler_option_defaults_to_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("DNN_KIT_SCHEDULER", "tcp://192.0.2.7:8786")
    notebook = next(iter(discover([CLASS]))).path
    assert main(["grade", str(notebook), "--no-progress"]) == 2
    assert "refusing tcp://192.0.2.7:8786" in capsys.readouterr().err


def test_the_case_table_holds_the_assignments_the_batch_names(tmp_path):
    """Cases for the assignments the layout names; all of them when one is not named (the
    worker identifies it from the notebook itself)."""
    named = [
        Target(tmp_path / "a.ipynb", "s", "02_dropout"),
        Target(tmp_path / "b", "s", "01_norms"),
    ]
    assert cluster.assignments_of(named) == ["01_norms", "02_dropout"]
    unnamed = [*named, Target(tmp_path / "c.ipynb", "s", None)]
    assert cluster.assignments_of(unnamed) == list(NOTEBOOKS)


def test_case_table_reports_what_the_client_could_not_build(reference):
    table = cluster.build_case_table(True, SALT, reference)
    check = next(iter(table.built))
    assert table.built[check] and not isinstance(table.built[check], str)
    broken = CaseTable({check: "no reference solutions"})
    probe = type("Probe", (), {"id": check})()
    with pytest.raises(RuntimeError, match="no reference solutions"):
        broken(probe)


# --------------------------------------------------------------------------- a real cluster
def _two_workers():
    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"allowed_failures": ALLOWED_FAILURES},
    )


@pytest.fixture(scope="module")
def local_cluster():
    with _two_workers() as running:
        yield running


@pytest.fixture
def faulty_cluster():
    """A cluster of its own for each test that kills workers (whether they come back is the
    nannies' business, not the next test's)."""
    with _two_workers() as running:
        yield running


@pytest.fixture(scope="module")
def sample_class():
    return discover([CLASS])


@pytest.fixture(scope="module")
def local_results(sample_class, reference):
    return grade_many(
        sample_class, jobs=2, salt=SALT, reference=reference, limits=LIMITS, progress=False
    )


@pytest.fixture
def control(local_cluster):
    """A client of our own on the shared cluster, to change a worker."""
    with Client(local_cluster.scheduler_address, set_as_default=False) as client:
        yield client


@pytest.fixture
def faulty_control(faulty_cluster):
    """A client of our own on a cluster of the test's own, to inject faults."""
    with Client(faulty_cluster.scheduler_address, set_as_default=False) as client:
        yield client


def on_cluster(local_cluster, targets, reference, **options):
    results: dict = {}

    def collect(index, result):
        assert index not in results, "a notebook got two results"
        results[index] = result
        if result.grader_failure:
            print(f"grader failure for {result.path}: {result.error}", file=sys.stderr)

    summary = grade_on_cluster(
        targets,
        collect,
        address=local_cluster.scheduler_address,
        salt=SALT,
        reference=reference,
        limits=options.pop("limits", LIMITS),
        progress=False,
        **options,
    )
    return [results[i] for i in range(len(targets))], summary


@pytest.mark.slow
@pytest.mark.cluster
def test_scores_are_identical_to_a_local_run(local_cluster, sample_class, local_results, reference):
    results, summary = on_cluster(local_cluster, sample_class, reference)
    assert_same(results, local_results)
    assert [r.path for r in results] == [t.path for t in sample_class]
    assert len(summary.per_worker) == 2, "both workers graded"
    assert sum(summary.per_worker.values()) == len(sample_class)
    assert all(r.isolation.startswith("bwrap") for r in results if not r.error)


@pytest.mark.slow
@pytest.mark.cluster
def test_results_stream_into_the_store_and_an_interrupted_batch_resumes(
    local_cluster, sample_class, local_results, reference, tmp_path
):
    store = Store(tmp_path / "store")
    context = Context(salt=SALT, reference=reference, limits=LIMITS)
    grade = cluster.grade_function(local_cluster.scheduler_address, context, progress=False)
    seen = []

    def interrupted(targets, on_result):
        def stop_after_five(index, result):
            on_result(index, result)  # saved to the store here, at once
            seen.append(index)
            if len(seen) == 5:
                raise KeyboardInterrupt

        grade(targets, stop_after_five)

    with pytest.raises(KeyboardInterrupt):
        grade_with_store(sample_class, store=store, context=context, grade=interrupted)
    assert len(store.files()) == 5

    from grader.store import BatchSummary

    summary = BatchSummary()
    graded = grade_with_store(
        sample_class, store=store, context=context, grade=grade, summary=summary
    )
    distinct = len({r.sha256 for r in local_results})
    assert summary.from_store == sum(1 for g in graded if g.from_store) >= 5
    assert summary.graded == distinct - 5  # nothing graded twice
    assert_same([g.result for g in graded], local_results)

    # --student: only that student's notebook is graded again
    student = sample_class[3].student
    again = BatchSummary()
    grade_with_store(
        sample_class,
        store=store,
        context=context,
        grade=grade,
        regrade=lambda t: t.student == student,
        summary=again,
    )
    assert again.graded == 1
    assert again.from_store == len(sample_class) - 1


@pytest.mark.slow
@pytest.mark.cluster
def test_a_worker_killed_mid_task_costs_nothing(
    faulty_cluster, faulty_control, sample_class, local_results, reference, tmp_path
):
    targets, expected = sample_class[:16], local_results[:16]
    faulty_control.register_plugin(cluster_faults.KillWorkerOnTask(5, tmp_path, times=1))
    results, summary = on_cluster(faulty_cluster, targets, reference)
    assert cluster_faults.kills(tmp_path) == 1
    assert_same(results, expected)
    assert summary.failed == 0
    assert sum(summary.per_worker.values()) == len(targets)


@pytest.mark.slow
@pytest.mark.cluster
def test_a_task_that_keeps_killing_workers_gets_a_could_not_be_graded_result(
    faulty_cluster, faulty_control, sample_class, local_results, reference, tmp_path
):
    targets, expected = sample_class[:8], local_results[:8]
    bad = 2
    faulty_control.register_plugin(cluster_faults.KillWorkerOnTask(bad, tmp_path, times=None))
    results, summary = on_cluster(faulty_cluster, targets, reference)
    # allowed-failures + 1 workers in the batch, as many again when tried alone
    assert cluster_faults.kills(tmp_path) == 2 * (ALLOWED_FAILURES + 1)
    failed = results[bad]
    assert failed.grader_failure and "could not be graded" in failed.error
    assert "kept killing Dask workers" in failed.error
    assert failed.max_score == expected[bad].max_score and failed.score == 0
    others = [comparable(r) for i, r in enumerate(results) if i != bad]
    assert others == [comparable(r) for i, r in enumerate(expected) if i != bad]
    assert summary.failed == 1 and summary.retried_alone >= 1


def _set_worker_version(version, dask_worker=None):
    """Make this worker process claim another kit version (a worker installed at another time)."""
    import grader.runner.cluster_worker as worker_side

    previous, worker_side.__version__ = worker_side.__version__, version
    return previous


@pytest.mark.slow
@pytest.mark.cluster
def test_a_worker_with_another_kit_version_is_refused(
    local_cluster, control, sample_class, reference
):
    from grader import __version__

    control.run(_set_worker_version, "0.0.0-other")
    try:
        with pytest.raises(ClusterError, match="runs kit 0.0.0-other"):
            on_cluster(local_cluster, sample_class[:2], reference)
    finally:
        control.run(_set_worker_version, __version__)


def _hide_bubblewrap(hidden: bool, dask_worker=None) -> None:
    """Make this worker process find no bwrap (a worker without bubblewrap), or find it again;
    its fork servers are closed, so the next use probes again."""
    import shutil

    from grader.runner import cluster_worker, sandbox

    cluster_worker.shut_down()
    if hidden:
        sandbox.bwrap_path = lambda: None
    else:
        sandbox.bwrap_path = lambda: shutil.which("bwrap") or "/usr/bin/bwrap"


@pytest.mark.slow
@pytest.mark.cluster
def test_a_worker_without_a_sandbox_stops_the_batch_before_it_starts(
    local_cluster, control, sample_class, reference, monkeypatch
):
    monkeypatch.delenv("DNN_KIT_SANDBOX", raising=False)  # the default: a sandbox is required
    [worker, *_] = sorted(control.scheduler_info()["workers"])
    control.run(_hide_bubblewrap, True, workers=[worker])
    graded = []
    try:
        with pytest.raises(ClusterError, match="has no working sandbox: .*bwrap is not installed"):
            grade_on_cluster(
                sample_class[:2],
                lambda i, r: graded.append(i),
                address=local_cluster.scheduler_address,
                salt=SALT,
                reference=reference,
                progress=False,
            )
    finally:
        control.run(_hide_bubblewrap, False, workers=[worker])
    assert graded == []


@pytest.mark.slow
@pytest.mark.cluster
def test_tls_on_loopback_with_generated_certificates(
    sample_class, local_results, reference, tmp_path
):
    """A TLS cluster (certificates generated here, as files), graded by ``grade --scheduler
    tls://`` with the certificates read from Dask's configuration, as docs/cluster.md says."""
    import json
    import os
    import subprocess

    generated = Security.temporary()  # a self-signed CA-and-certificate (cryptography)
    (tmp_path / "cert.pem").write_text(generated.tls_ca_file)
    (tmp_path / "key.pem").write_text(generated.tls_client_key)
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    security = Security(
        tls_ca_file=cert,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
        require_encryption=True,
    )
    targets = sample_class[:6]
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        protocol="tls://",
        security=security,
        dashboard_address="127.0.0.1:0",
    ) as running:
        address = running.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        # without certificates the client cannot even connect
        with pytest.raises(ClusterError, match="cannot reach"):
            cluster.connect(address, Security())
        env = dict(os.environ)
        env.update(
            DASK_DISTRIBUTED__COMM__TLS__CA_FILE=cert,
            DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=cert,
            DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=key,
        )
        done = subprocess.run(
            [sys.executable, "-m", "grader", "grade", *[str(t.path) for t in targets]]
            + ["--scheduler", address, "--salt", SALT, "--format", "json", "--no-progress"]
            + ["--timeout", str(LIMITS.case_seconds)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    expected = local_results[:6]
    assert [e["score"] for e in report] == [r.score for r in expected]
    assert [[t["status"] for t in e["tests"]] for e in report] == [
        ["passed" if c.passed else "failed" for c in r.checks] for r in expected
    ]


def test_oversized_or_unreadable_notebooks_are_not_sent(tmp_path, monkeypatch):
    """What cannot be sent is judged on the client (no code runs there); the rest travels whole."""
    small = tmp_path / "01_norms.ipynb"
    small.write_bytes(b'{"cells": []}')
    target = discover([small])[0]
    job = cluster._job(target)
    assert job["data"] == small.read_bytes() and job["name"] == "01_norms.ipynb"
    assert job["folder"] == tmp_path.name
    monkeypatch.setattr(cluster, "MAX_NOTEBOOK_BYTES", 8)
    assert cluster._job(target) is None
    small.unlink()
    assert cluster._job(target) is None


# --------------------------------------------------------------------------- time budgets
@pytest.mark.slow
@pytest.mark.cluster
def test_the_student_budget_holds_on_the_cluster(local_cluster, reference, tmp_path):
    """One student's idle notebooks stop after her budget on the cluster as with --jobs: the
    client grants before it submits and settles on the result; the others are graded in full."""
    limits = dataclasses.replace(IDLE_LIMITS, student_seconds=5.0)
    targets = idle_class(tmp_path, 6)
    results, summary = on_cluster(local_cluster, targets, reference, limits=limits)
    assert summary.failed == 0
    by_student: dict[str, list] = {}
    for result in results:
        by_student.setdefault(result.student, []).append(result)
    assert [r.score for r in by_student["alice"] + by_student["bob"]] == [FULL, FULL]
    mallory = by_student["mallory"]
    refused = [r for r in mallory if r.error.startswith("not graded: this student's")]
    started = [r for r in mallory if r not in refused]
    assert 1 <= len(started) <= limits.student_seconds // 1
    granted = [r.limits["total_seconds"] for r in started]
    assert sum(granted) <= limits.student_seconds and max(granted) <= limits.total_seconds
    assert sum(r.seconds for r in started) <= limits.student_seconds + SLACK * len(started)
    assert len(refused) == 6 - len(started) > 0 and all(r.final for r in refused)
    assert all(r.score == 0 for r in refused)
    assert all(r.score < FULL and not r.grader_failure for r in mallory)
    stated = dataclasses.asdict(limits)
    for result in results:
        assert {k: v for k, v in result.limits.items() if k != "total_seconds"} == {
            k: v for k, v in stated.items() if k != "total_seconds"
        }


@pytest.mark.slow
@pytest.mark.cluster
def test_a_spent_batch_budget_on_the_cluster_leaves_the_rest_for_the_next_run(
    local_cluster, reference, tmp_path
):
    """No task is submitted once the batch budget is spent: those notebooks get the same
    non-final result as locally, are not stored, and the same command grades them next time."""
    limits = dataclasses.replace(IDLE_LIMITS, batch_seconds=2.0)
    targets = idle_class(tmp_path, 6)
    # the client's cases are built once per salt (cached): build them before the clock starts,
    # so that the 2 s are spent on grading whichever tests ran before this one
    cluster.build_case_table(True, SALT, reference, ["02_dropout"])
    store = Store(tmp_path / "store")
    context = Context(salt=SALT, reference=reference, limits=limits)
    grade = cluster.grade_function(local_cluster.scheduler_address, context, progress=False)
    first = grade_with_store(targets, store=store, context=context, grade=grade)
    unstarted = [g for g in first if not g.result.final]
    assert unstarted and len(unstarted) < len(targets)
    assert all(g.result.error.startswith("not graded yet: the batch used") for g in unstarted)
    assert all(g.result.score == 0 and not g.result.grader_failure for g in unstarted)
    assert len(store.files()) == len(targets) - len(unstarted)
    second = grade_with_store(targets, store=store, context=context, grade=grade)
    assert {g.target.path for g in second if not g.from_store} >= {g.target.path for g in unstarted}
    assert {g.target.path for g in second if g.from_store} == {
        g.target.path for g in first if g.result.final
    }
