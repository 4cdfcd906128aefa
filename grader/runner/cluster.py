"""Grading on a running Dask distributed cluster (``grade/export --scheduler ADDRESS``).

The client (this module) does what needs the course: it builds every check's cases from the
salt and the reference once and ships them to every worker in a worker plugin, reads each submission (size
bounded, as on one machine) and sends its bytes with the task, and writes each result to the
store the moment it arrives (:func:`grader.store.grade_with_store`), so an interrupted batch
resumes and ``--student``/``--force`` work as locally. The workers
(:mod:`grader.runner.cluster_worker`) grade in their own sandboxes and judge there; the
results are the same as ``--jobs`` with the same salt.

What can go wrong, and what each notebook then gets (every notebook gets exactly one result):

* a worker dies mid-task (killed, out of memory, machine lost): the scheduler runs its tasks
  elsewhere; nothing is lost or graded twice;
* a task keeps killing workers: the scheduler gives up after ``allowed-failures``
  (:class:`~distributed.KilledWorker`). Innocent tasks that only shared a worker with it can be
  charged too, so every such task is tried once more, alone on the cluster; a notebook that
  kills workers again gets a "could not be graded" result (a grader failure: not stored, so the
  next run tries again) and the batch goes on;
* a worker with another kit version or check library: its results are refused;
* a worker without a working sandbox: the batch does not start (fail closed) unless the
  sandbox is turned off (``DNN_KIT_SANDBOX=off``);
* a task that outlives its budget (the submission's ``total_seconds``, twice, plus a minute),
  or a cluster left without workers for a minute: cancelled, a grader failure.

Security: a Dask client runs arbitrary code on the workers, and ``tcp://`` carries the hidden
inputs in clear, so the cluster must be the course's own and anything beyond loopback must be
``tls://`` (configured with :class:`distributed.Security`, e.g. from Dask's configuration);
``tcp://`` is refused for any host but loopback.
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import json
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

from grader import __version__
from grader.budget import Budget, Refusal
from grader.checks import NOTEBOOKS, checks_for
from grader.checks.cases import salt_from_environment
from grader.grading import (
    SubmissionResult,
    Target,
    _cases,
    _ungradable,
    budget_holder,
    grade_notebook,
    refused,
)
from grader.runner import sandbox
from grader.runner.process import DEFAULT_LIMITS, Limits
from grader.runner.submission import MAX_NOTEBOOK_BYTES

MAX_RESULT_BYTES = 16 * 2**20  # a result is a few kB; anything near this is not one
CONNECT_TIMEOUT = 30.0
WORKER_TIMEOUT = 60.0  # to wait for the first worker
POLL_SECONDS = 0.1
STATUS_SECONDS = 1.0  # how often the progress bar asks the scheduler what is running
TASK_PREFIX = "dnn-kit-grade"
LOST_ROUNDS = 3  # times tasks the cluster cancelled are sent again
IN_FLIGHT_PER_THREAD = 2  # tasks on the cluster per worker thread (the rest wait for a grant)


class ClusterError(RuntimeError):
    """The cluster cannot be used: unreachable, insecure, mismatched, or without a sandbox."""


@dataclasses.dataclass
class ClusterSummary:
    """What a batch did: notebooks per worker, and the notebooks that failed on the cluster."""

    per_worker: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    retried_alone: int = 0
    failed: int = 0
    local: int = 0  # unreadable or oversized notebooks, judged on the client (nothing runs)


# --------------------------------------------------------------------------- connecting
def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_address(address: str) -> str:
    """The scheduler address if it is safe to use; :class:`ClusterError` otherwise.

    ``tls://`` anywhere, and ``gateway://`` (Dask Gateway's proxy, always TLS with the
    ``Security`` the gateway hands out); ``tcp://`` (or no scheme) only on loopback.
    """
    from distributed.comm.addressing import get_address_host, parse_address

    try:
        scheme, _ = parse_address(address)
        host = get_address_host(address)
    except (ValueError, TypeError) as exc:
        raise ClusterError(f"not a scheduler address: {address!r} ({exc})") from None
    if scheme in ("tls", "gateway"):
        return address
    if scheme == "tcp" and _is_loopback(host):
        return address
    if scheme == "tcp":
        raise ClusterError(
            f"refusing {address}: tcp:// sends the hidden inputs and the results in clear and "
            "lets anyone who reaches the scheduler run code on the workers. Beyond loopback use "
            "tls:// with certificates (see docs/cluster.md)"
        )
    raise ClusterError(
        f"unsupported scheduler protocol {scheme}:// (use tls:// or tcp:// on loopback)"
    )


def connect(address: str, security=None):
    """A :class:`distributed.Client` for ``address`` (or a scheduler file's address)."""
    try:
        from distributed import Client, Security
    except ImportError:
        raise ClusterError(
            "--scheduler needs Dask distributed: pip install 'dnn-discussion-kit[cluster]'"
        ) from None
    scheduler_file = Path(address)
    if scheduler_file.suffix == ".json" and scheduler_file.is_file():
        try:
            address = json.loads(scheduler_file.read_text(encoding="utf-8"))["address"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ClusterError(f"cannot read the scheduler file {scheduler_file}: {exc}") from None
    check_address(address)
    if security is None and address.startswith("tls://"):
        security = Security(require_encryption=True)  # certificates from Dask's configuration
    try:
        return Client(address, security=security, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ssl errors, bad config
        hint = (
            " (for tls:// the client's certificates come from Dask's configuration, e.g. "
            "DASK_DISTRIBUTED__COMM__TLS__CA_FILE, ..._CLIENT__CERT, ..._CLIENT__KEY: see "
            "docs/cluster.md)"
            if address.startswith("tls://")
            else ""
        )
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}{hint}") from None


def worker_policy() -> str:
    """The sandbox policy for the workers: ``off`` only when turned off here, else ``required``
    (a warning on a remote worker's stderr would go unseen, so no silent fallback there)."""
    return "off" if sandbox.policy() == "off" else "required"


def check_workers(client, policy: str) -> dict[str, dict]:
    """Probe every worker's sandbox and versions; :class:`ClusterError` if any is unusable."""
    from grader.runner.cluster_worker import SandboxPlugin, prepare, worker_status
    from grader.store import check_set_fingerprint

    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
    except Exception:  # noqa: BLE001 - TimeoutError
        raise ClusterError(
            f"the scheduler has no workers (waited {WORKER_TIMEOUT:.0f} s)"
        ) from None
    client.register_plugin(SandboxPlugin(policy))
    client.run(prepare, policy)  # in case a worker registered the plugin before this batch
    statuses = client.run(worker_status)
    problems = []
    for address, status in sorted(statuses.items()):
        if status["kit_version"] != __version__ or status["checks"] != check_set_fingerprint():
            problems.append(
                f"{address} runs kit {status['kit_version']} with checks {status['checks']}; "
                f"this client has kit {__version__} with checks {check_set_fingerprint()}"
            )
        elif status["error"]:
            problems.append(f"{address} has no working sandbox: {status['error']}")
    if problems:
        hint = (
            " (install the same kit on every worker; for the sandbox see docs/cluster.md, or "
            "set DNN_KIT_SANDBOX=off here to grade without it)"
        )
        raise ClusterError("unusable workers:\n  " + "\n  ".join(problems) + hint)
    return statuses


# --------------------------------------------------------------------------- the batch
def assignments_of(targets: list[Target]) -> list[str]:
    """The assignments a batch can need cases for: those the layout names, or every one when
    a notebook's assignment is only known once it is read (on the worker)."""
    named = {target.assignment for target in targets}
    return [a for a in NOTEBOOKS if a in named] if named <= set(NOTEBOOKS) else list(NOTEBOOKS)


def build_case_table(include_hidden: bool, salt: str, reference, assignments=None):
    """Every check's cases of ``assignments`` (default: all), as
    :class:`~grader.runner.cluster_worker.CaseTable` (built here, where the salt and the
    reference are, and only here). A check of another assignment has no entry: a worker that
    meets one anyway reports it as a case-building problem of that check."""
    from grader.runner.cluster_worker import CaseTable

    built: dict = {}
    for notebook in NOTEBOOKS if assignments is None else assignments:
        for check in checks_for(notebook, include_hidden):
            if check.id in built:
                continue
            try:
                built[check.id] = _cases(check, salt, reference, batch=include_hidden)
            except Exception as exc:  # noqa: BLE001 - the worker reports it as grading does
                built[check.id] = str(exc)
    return CaseTable(built)


def _job(target: Target) -> dict | None:
    """What travels with a task; None when the notebook cannot be read or is too large (it is
    then judged here, where that costs nothing: no code runs)."""
    try:
        with open(target.path, "rb") as stream:
            data = stream.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None
    return {
        "data": data,
        "name": target.path.name,
        "folder": target.path.parent.name,
        "student": target.student,
        "assignment": target.assignment,
    }


def _failed(target: Target, why: str) -> SubmissionResult:
    result = _ungradable(target, f"could not be graded on the cluster: {why}")
    result.grader_failure = True
    return result


def _received(target: Target, answer, summary: ClusterSummary) -> SubmissionResult:
    """A worker's answer as a result, or a grader failure when it cannot be accepted."""
    from grader.store import check_set_fingerprint, result_from_dict

    if not isinstance(answer, dict) or "result" not in answer:
        return _failed(target, "the worker sent something that is not a result")
    worker = answer.get("worker", "?")
    if answer.get("kit_version") != __version__ or answer.get("checks") != check_set_fingerprint():
        return _failed(
            target,
            f"worker {worker} runs kit {answer.get('kit_version')} with checks "
            f"{answer.get('checks')}; this client has kit {__version__} with checks "
            f"{check_set_fingerprint()} (its result is refused)",
        )
    try:
        if len(json.dumps(answer["result"])) > MAX_RESULT_BYTES:
            return _failed(target, f"worker {worker} sent a result over {MAX_RESULT_BYTES} bytes")
        result = result_from_dict(answer["result"])
    except (TypeError, ValueError, KeyError) as exc:
        return _failed(target, f"worker {worker} sent a malformed result ({exc!r})")
    summary.per_worker[worker] += 1
    return dataclasses.replace(result, path=target.path, student=target.student)


class _Batch:
    """The tasks of one batch on the cluster, their progress bar, and their client-side budget.

    The time budgets of :mod:`grader.budget` are kept here, as ``grade --jobs`` keeps them: a
    notebook's task is submitted only once its student's budget (and the batch's) grants it
    time, with the granted limits; the time its worker reports settles the grant. So that the
    batch budget means "no notebook starts after it" here too, only about two tasks per worker
    thread are on the cluster at a time (the rest wait here, not in the scheduler's queue).
    """

    def __init__(self, client, targets, on_result, summary, options: dict, progress: bool):
        from tqdm.auto import tqdm

        self.client, self.targets, self.on_result = client, targets, on_result
        self.options = {k: v for k, v in options.items() if k != "limits"}
        self.summary, self.limits = summary, options["limits"]
        self.budget = Budget(self.limits)
        self.granted: dict[int, Limits] = {}  # target index -> its running task's limits
        self.cap = IN_FLIGHT_PER_THREAD
        self.held = 0  # notebooks waiting here for a grant or a free slot
        self.jobs: dict[int, dict] = {}
        self.token = secrets.token_hex(6)
        self.table_plugin = None
        self.attempts: collections.Counter = collections.Counter()
        self.bar = tqdm(
            total=len(targets),
            disable=not progress,
            unit="notebook",
            desc="grading on the cluster",
            file=sys.stderr,
        )
        self.index: dict = {}  # future -> target index, while it runs
        self.first_seen: dict = {}  # task key -> when the scheduler first had it on a worker
        self.cancelled: dict = {}  # task key -> why this client cancelled it
        self.running: set = set()  # task keys on a worker at the last look
        self.why_cancelled: dict = {}  # target index -> what the last cancellation said
        self.no_workers_since: float | None = None
        self.last_status = 0.0

    def broadcast(self, table) -> None:
        """Send the case table to every worker, and to every worker that joins later."""
        from grader.runner.cluster_worker import CaseTablePlugin

        plugin = CaseTablePlugin(self.token, table)
        self.client.register_plugin(plugin)
        self.table_plugin = plugin.name

    def withdraw(self) -> None:
        """Drop the case table from the workers and the scheduler."""
        if self.table_plugin is not None:
            try:
                self.client.unregister_worker_plugin(self.table_plugin)
            except Exception:  # noqa: BLE001 - the scheduler is gone: so is the table
                pass
            self.table_plugin = None

    def report(self, i: int, result: SubmissionResult) -> None:
        self.summary.failed += result.grader_failure
        self.on_result(i, result)
        self.bar.update(1)
        self._postfix()

    def _postfix(self) -> None:
        """done (the bar itself), running and queued (as the scheduler last said)."""
        keys = {f.key for f in self.index}
        running = len(self.running & keys)
        queued = len(keys) - running + self.held  # on the scheduler, or here awaiting a grant
        self.bar.set_postfix(running=running, queued=queued, refresh=False)

    def submit(self, waiting: list[int], finished) -> list[int]:
        """Submit what the budget grants of ``waiting`` (in order, up to the in-flight cap),
        report what it refuses; returns the indices still waiting."""
        from grader.runner.cluster_worker import grade_task

        still = []
        for n, i in enumerate(waiting):
            if len(self.index) >= self.cap:
                return still + waiting[n:]
            target = self.targets[i]
            granted = self.budget.grant(budget_holder(target), wait=False)
            if granted is None:  # the student's running notebooks hold the rest of the budget
                still.append(i)
                continue
            if isinstance(granted, Refusal):
                self.report(i, refused(target, granted, self.limits))
                continue
            self.attempts[i] += 1  # a new key for every attempt
            future = self.client.submit(
                grade_task,
                self.jobs[i],
                token=self.token,
                limits=granted,
                key=(f"{TASK_PREFIX}-{self.token}", i, self.attempts[i]),
                pure=False,
                **self.options,
            )
            self.granted[i] = granted
            self.index[future] = i
            finished.add(future)
        return still

    def release(self, i: int, key, result: SubmissionResult | None) -> None:
        """Settle a task's grant: the time its worker reports, else how long it ran."""
        granted = self.granted.pop(i)
        if result is not None and result.seconds is not None:
            seconds = float(result.seconds)
        else:
            seen = self.first_seen.get(key)
            seconds = time.monotonic() - seen if seen is not None else 0.0
        self.budget.settle(budget_holder(self.targets[i]), granted, seconds)

    def settle(self, indices: list[int], alone: bool = False) -> list[int]:
        """Grade ``indices`` (one at a time if ``alone``), sending again the tasks the cluster
        cancelled; returns those that ended in KilledWorker when not ``alone`` (unreported)."""
        killed: list[int] = []
        pending = indices
        for _ in range(LOST_ROUNDS):
            unfinished = []
            for group in [[i] for i in pending] if alone else [pending]:
                unfinished += self._run(group, alone)
            killed += [i for i, why in unfinished if why == "killed"]
            pending = [i for i, why in unfinished if why == "lost"]
            if not pending:
                return killed
        for i in pending:
            why = self.why_cancelled.get(i, "")
            self.report(
                i, _failed(self.targets[i], f"the cluster kept cancelling its task ({why})")
            )
        return killed

    def _run(self, indices: list[int], alone: bool) -> list[tuple[int, str]]:
        """Run ``indices`` to the end; ``(index, "killed" | "lost")`` for those not reported."""
        from concurrent.futures import CancelledError

        from distributed import KilledWorker, as_completed

        unfinished = []
        finished = as_completed([], with_results=True, raise_errors=False, loop=self.client.loop)
        waiting = self.submit(list(indices), finished)
        while waiting or not finished.is_empty():
            done = finished.next_batch(block=False) if not finished.is_empty() else []
            for future, answer in done:
                i = self.index.pop(future)
                key, status = future.key, future.status
                future.release()
                if status == "error" and isinstance(answer, tuple) and len(answer) == 3:
                    answer = answer[1]  # (type, exception, traceback)
                target = self.targets[i]
                result = None
                if key in self.cancelled:
                    result = _failed(target, self.cancelled[key])
                elif isinstance(answer, dict):  # what grade_task returns
                    result = _received(target, answer, self.summary)
                elif isinstance(answer, KilledWorker) and not alone:
                    unfinished.append((i, "killed"))
                elif isinstance(answer, KilledWorker):
                    result = _failed(
                        target,
                        f"its grading task kept killing Dask workers ({answer.allowed_failures + 1} "
                        f"in a row, the last {answer.last_worker.address}), also when run alone",
                    )
                elif status == "cancelled" or isinstance(answer, CancelledError):
                    unfinished.append((i, "lost"))  # by the cluster (e.g. a scheduler restart)
                    self.why_cancelled[i] = str(answer)
                else:
                    result = _failed(target, f"{type(answer).__name__}: {answer} ({status})")
                self.release(i, key, result if isinstance(answer, dict) else None)
                if result is not None:
                    self.report(i, result)
            if waiting and (done or len(self.index) < self.cap):
                waiting = self.submit(waiting, finished)
            self.held = len(waiting)
            if not done:
                self._watch()
                time.sleep(POLL_SECONDS)
        return unfinished

    def _cancel(self, keys: list, ours: dict, why: str) -> None:
        keys = [key for key in keys if key not in self.cancelled]
        if keys:
            self.cancelled.update(dict.fromkeys(keys, why))
            self.client.cancel([ours[key] for key in keys], reason=why)

    def _watch(self) -> None:
        """Refresh running/queued on the bar and cancel tasks past their budget."""
        now = time.monotonic()
        if now - self.last_status < STATUS_SECONDS:
            return
        self.last_status = now
        try:
            processing = self.client.processing()
            threads = sum(self.client.nthreads().values())
        except Exception:  # noqa: BLE001 - the scheduler is gone: the futures will say so
            return
        self.cap = IN_FLIGHT_PER_THREAD * max(1, threads)  # workers come and go
        ours = {f.key: f for f in self.index}
        running = [key for keys in processing.values() for key in keys if key in ours]
        self.running = set(running)
        for key in running:
            started = self.first_seen.setdefault(key, now)
            allowed = 2 * self.granted[self.index[ours[key]]].total_seconds + 60
            if now - started > allowed:
                self._cancel([key], ours, f"no answer within {allowed:.0f} s")
        if processing:
            self.no_workers_since = None
        elif self.no_workers_since is None:
            self.no_workers_since = now
        elif now - self.no_workers_since > WORKER_TIMEOUT:
            self._cancel(list(ours), ours, f"the cluster had no worker for {WORKER_TIMEOUT:.0f} s")
        self._postfix()
        self.bar.refresh()


def grade_on_cluster(
    targets: list[Target],
    on_result: Callable[[int, SubmissionResult], None],
    *,
    address: str,
    include_hidden: bool = True,
    salt: str | None = None,
    reference=None,
    limits: Limits = DEFAULT_LIMITS,
    progress: bool = True,
    security=None,
) -> ClusterSummary:
    """Grade ``targets`` on the cluster at ``address``; ``on_result(index, result)`` is called
    (in this thread) as each result arrives. Raises :class:`ClusterError` before any work when
    the cluster cannot be used; KeyboardInterrupt cancels what is still running."""
    client = connect(address, security)
    summary = ClusterSummary()
    try:
        policy = worker_policy()
        statuses = check_workers(client, policy)
        options = {"policy": policy, "include_hidden": include_hidden, "limits": limits}
        batch = _Batch(client, targets, on_result, summary, options, progress)
        batch.cap = IN_FLIGHT_PER_THREAD * max(1, sum(client.nthreads().values()), len(statuses))
        try:
            salt = salt or salt_from_environment()
            batch.broadcast(
                build_case_table(include_hidden, salt, reference, assignments_of(targets))
            )
            for i, target in enumerate(targets):
                job = _job(target)
                if job is None:  # unreadable or too large: the same result as locally, here
                    summary.local += 1
                    batch.report(
                        i, grade_notebook(target, include_hidden=include_hidden, limits=limits)
                    )
                else:
                    batch.jobs[i] = job
            killed = batch.settle(sorted(batch.jobs))
            summary.retried_alone = len(killed)
            batch.settle(killed, alone=True)
        except BaseException:
            client.cancel(list(batch.index), force=True)
            raise
        finally:
            batch.bar.close()
            batch.withdraw()
        _report(summary)
        return summary
    finally:
        client.close()


def _report(summary: ClusterSummary) -> None:
    lines = [
        f"  {worker}: {count} notebooks" for worker, count in sorted(summary.per_worker.items())
    ]
    extra = []
    if summary.local:
        extra.append(f"{summary.local} judged on the client (unreadable or too large)")
    if summary.retried_alone:
        extra.append(f"{summary.retried_alone} retried alone after killing workers")
    if summary.failed:
        extra.append(f"{summary.failed} could not be graded on the cluster")
    print(
        f"graded on {len(summary.per_worker)} Dask worker(s)"
        + (f" ({'; '.join(extra)})" if extra else "")
        + (":\n" + "\n".join(lines) if lines else ""),
        file=sys.stderr,
    )


def grade_function(address: str, context, progress: bool, security=None):
    """A ``grade`` function for :func:`grader.store.grade_with_store` that uses the cluster."""

    def grade(targets: list[Target], on_result) -> None:
        grade_on_cluster(
            targets,
            on_result,
            address=address,
            include_hidden=context.include_hidden,
            salt=context.salt,
            reference=context.reference,
            limits=context.limits,
            progress=progress,
            security=security,
        )

    return grade
