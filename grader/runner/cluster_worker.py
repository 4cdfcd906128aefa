"""What a Dask worker runs to grade: its sandbox (a worker plugin) and the grading task.

A worker needs no course directory and no shared filesystem. The client sends it two things:

* once per batch, a :class:`CaseTable`: every check's cases (inputs, plans and expected values)
  built by the client from the salt and the reference solutions, inside a worker plugin
  (:class:`CaseTablePlugin`). The scheduler hands a plugin to every worker that joins, before
  it runs a task, so a worker restarted after a crash has the table too. (Scattered data, even
  broadcast, is lost for good when the workers holding it die, and every task that needs it
  is cancelled: the tests saw exactly that.) The salt and the reference never leave the
  client; the expected values stay in the worker's trusted process, exactly as with ``--jobs``
  (only each case's inputs reach the student's sandboxed child);
* per notebook, a job: the submission's bytes, its file and folder name, who submitted it.

Each worker process grades inside its own bubblewrap sandbox, as ``grade --jobs`` does on one
machine: :class:`SandboxPlugin` probes it when the worker joins (one fork server per worker
thread, started then or on first use) and closes it when the worker shuts down. Each task
answers with the worker's kit version and check-library fingerprint, so the client can refuse
a result from a worker running other checks.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from grader import __version__
from grader.grading import Target, grade_notebook
from grader.runner import sandbox
from grader.runner.process import Limits
from grader.store import check_set_fingerprint, result_to_dict

PLUGIN_NAME = "dnn-kit-sandbox"
TABLE_PLUGIN_PREFIX = "dnn-kit-cases-"

_state: dict = {}  # this worker process: the sandbox policy in force, its isolation or error
_state_lock = threading.Lock()
_tables: dict = {}  # batch token -> CaseTable


@dataclass
class CaseTable:
    """Every check's cases, built once by the client: ``check id -> [(case, wire JSON)]`` (the
    worker gives each case a fresh random key per run, as on one machine),
    or the message of the error that kept the client from building them."""

    built: dict

    def __call__(self, check) -> list:
        entry = self.built.get(check.id)
        if entry is None:
            raise RuntimeError(f"the client sent no cases for {check.id}")
        if isinstance(entry, str):
            raise RuntimeError(entry)
        return entry


def prepare(policy: str) -> dict:
    """Make this worker process grade under ``policy`` (``required`` or ``off``) and probe its
    sandbox once; returns what :func:`worker_status` reports. Idempotent."""
    with _state_lock:
        if _state.get("policy") == policy:
            return dict(_state)
        # read by grader.runner.sandbox in this process only (bwrap clears the children's env)
        os.environ["DNN_KIT_SANDBOX"] = policy
        sandbox.use_fallback(False)  # forget a probe made under another policy
        try:
            isolation, error = sandbox.require(), ""
        except Exception as exc:  # noqa: BLE001 - reported to the client, which refuses the worker
            isolation, error = sandbox.FALLBACK, f"{type(exc).__name__}: {exc}"
        _state.clear()
        _state.update(policy=policy, isolation=isolation, error=error)
        return dict(_state)


def shut_down() -> None:
    """End this worker's fork servers (and everything running in them)."""
    with _state_lock:
        _state.clear()
        sandbox.use_fallback(False)  # closes the pool of fork servers; the next use probes again


class CaseTablePlugin(WorkerPlugin):
    """Carries one batch's :class:`CaseTable` to every worker, present and future."""

    def __init__(self, token: str, table: CaseTable):
        self.token, self.table = token, table
        self.name = TABLE_PLUGIN_PREFIX + token

    def setup(self, worker) -> None:
        _tables[self.token] = self.table

    def teardown(self, worker) -> None:
        _tables.pop(self.token, None)


class SandboxPlugin(WorkerPlugin):
    """Probes the worker's sandbox when it joins; closes its fork servers when it leaves."""

    name = PLUGIN_NAME
    idempotent = True  # a worker keeps its fork servers from one batch to the next

    def __init__(self, policy: str):
        self.policy = policy

    async def setup(self, worker) -> None:
        # the probe starts bubblewrap and may take a second: keep the worker's event loop free
        await asyncio.to_thread(prepare, self.policy)

    def teardown(self, worker) -> None:
        shut_down()


def worker_status(dask_worker=None) -> dict:
    """What the client checks before a batch (``Client.run``)."""
    return {
        "kit_version": __version__,
        "checks": check_set_fingerprint(),
        "pid": os.getpid(),
        **{key: _state.get(key) for key in ("policy", "isolation", "error")},
    }


def _safe_name(name: str, fallback: str) -> str:
    name = Path(str(name)).name
    return name if name not in ("", ".", "..") else fallback


def grade_task(job: dict, token: str, policy: str, include_hidden: bool, limits: Limits):
    """Grade one submission on this worker; returns the result as plain data, with the
    worker's kit version, check fingerprint and address.

    ``job``: ``{"data": notebook bytes, "name": file name, "folder": its folder's name,
    "student", "assignment"}``; the file is recreated under a private temporary folder (its
    name and folder name can identify the assignment, as on the client).
    """
    status = prepare(policy)
    if status["error"]:
        raise RuntimeError(f"this worker has no working sandbox: {status['error']}")
    table = _tables.get(token)
    if table is None:
        raise RuntimeError(f"this worker has no case table for batch {token}")
    with tempfile.TemporaryDirectory(prefix="grader-task-") as folder:
        path = Path(folder) / _safe_name(job["folder"], "submission")
        path.mkdir()
        path = path / _safe_name(job["name"], "submission.ipynb")
        path.write_bytes(job["data"])
        target = Target(path, job["student"], job["assignment"])
        result = grade_notebook(
            target, include_hidden=include_hidden, limits=limits, case_source=table
        )
    return {
        "kit_version": __version__,
        "checks": check_set_fingerprint(),
        "worker": get_worker().address,
        "result": result_to_dict(result),
    }
