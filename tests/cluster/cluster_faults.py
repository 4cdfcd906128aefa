"""Fault injection for the cluster tests (test code only: nothing of it ships in ``grader``).

:class:`KillWorkerOnTask` is a real Dask worker plugin: when the task of a chosen notebook
starts executing on a worker, it SIGKILLs that worker's process, as the kernel's OOM killer
or a lost machine would. It is pickled by value (``cloudpickle.register_pickle_by_value``), so
workers need not import this file.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from grader.runner.cluster import TASK_PREFIX


class KillWorkerOnTask(WorkerPlugin):
    """SIGKILL the worker process when the task grading target ``index`` starts.

    ``times``: how many workers to kill in all (counted with marker files in ``markers``);
    None kills every worker that tries, so the task ends in ``KilledWorker``.
    """

    name = "test-kill-worker"

    def __init__(self, index: int, markers: Path, times: int | None = 1):
        self.index, self.markers, self.times = index, str(markers), times

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or not isinstance(key, tuple):
            return
        if not str(key[0]).startswith(TASK_PREFIX) or key[1] != self.index:
            return
        if self.times is not None:
            claimed = False
            for n in range(self.times):
                try:  # atomic: one worker claims each kill
                    os.close(os.open(Path(self.markers) / f"kill-{n}", os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    continue
                claimed = True
                break
            if not claimed:
                return
        else:
            (Path(self.markers) / f"kill-{os.getpid()}").touch()
        os.kill(os.getpid(), signal.SIGKILL)


def kills(markers: Path) -> int:
    return len(list(Path(markers).glob("kill-*")))
