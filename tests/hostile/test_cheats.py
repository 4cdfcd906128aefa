"""Cheating attempts: each one gains nothing, harms nobody, and is graded with a reason.

Judging happens in the trusted parent, so whatever the student's process patches, fakes or
prints, only the arrays it returns count; and the sandbox hides everything worth reaching.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import numpy
from hostile_helpers import (  # noqa: F401 - real_sandbox is an autouse fixture
    ALL_CHECKS,
    BACKWARD_CELL,
    CORRECT_FORWARD,
    FAST,
    FORWARD_CELL,
    FULL,
    NAME_ME,
    ROOT,
    UNSCALED_FAILED,
    UNSCALED_FORWARD,
    UNSCALED_SCORE,
    answer_cell,
    failed,
    grade,
    processes_named,
    real_sandbox,
    reasons,
    submission,
)
from kit_testing import diagnoses

from grader.runner import sandbox
from grader.runner.sandbox import RUNNER_DIR


def test_monkeypatching_numpy_and_builtins_changes_nothing(tmp_path, reference):
    honest = grade(submission(tmp_path / "honest", UNSCALED_FORWARD), reference)
    patches = (
        "import builtins\n"
        "import numpy.testing\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), bool)\n"
        "np.array_equal = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "np.testing.assert_array_equal = lambda *a, **k: None\n"
        "np.testing.assert_equal = lambda *a, **k: None\n"
        "builtins.abs = lambda x: 0\n"
        "builtins.round = lambda *a, **k: 0\n"
        "builtins.sum = lambda *a, **k: 0\n"
        "builtins.max = lambda *a, **k: 0\n"
    )
    cheat = grade(submission(tmp_path / "cheat", patches + UNSCALED_FORWARD), reference)
    assert (cheat.score, failed(cheat)) == (UNSCALED_SCORE, UNSCALED_FAILED)
    assert (honest.score, failed(honest)) == (UNSCALED_SCORE, UNSCALED_FAILED)
    assert diagnoses(cheat) == diagnoses(honest) == {"dropout.no_inverted_scaling"}
    assert reasons(cheat) == reasons(honest)


def test_ndarray_subclass_that_lies_about_equality_and_its_values(tmp_path, reference):
    liar = (
        "class Liar(np.ndarray):\n"
        "    def __eq__(self, other):\n"
        "        return np.ones(np.shape(self), bool)\n"
        "    def __ne__(self, other):\n"
        "        return np.zeros(np.shape(self), bool)\n"
        "    def __array__(self, dtype=None, copy=None):\n"
        "        return np.full(self.shape, 42.0)\n"
        "    def __float__(self):\n"
        "        return 1.0\n"
        "    def astype(self, *a, **k):\n"
        "        return self\n"
        "    def tolist(self):\n"
        "        return []\n"
    )
    forward = liar + UNSCALED_FORWARD.replace("return x * mask,", "return (x * mask).view(Liar),")
    result = grade(submission(tmp_path, forward), reference)
    # reduced to its real numbers in the student's process: judged like the honest mistake
    assert (result.score, failed(result)) == (UNSCALED_SCORE, UNSCALED_FAILED)
    assert diagnoses(result) == {"dropout.no_inverted_scaling"}


def test_reaching_for_the_answers_finds_nothing(tmp_path, reference):
    probe = f"""
import os, sys
reached = []
for name in ("grader", "reference", "solutions", "_dnn_kit_reference", "nbgrader"):
    try:
        __import__(name)
        reached.append(name)
    except Exception:
        pass
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "solutions")!r}, "../solutions", "../../solutions"]
try:
    import reference
    reached.append("reference via sys.path")
except Exception:
    pass
for path in [
    {str(ROOT / "solutions" / "reference" / "dropout.py")!r},
    {str(ROOT / "grader" / "checks" / "dropout.py")!r},
    {str(ROOT / "grader" / "checks" / "fixtures" / "02_dropout.npz")!r},
    "../solutions/reference/dropout.py",
    "../../../solutions/reference/dropout.py",
    "/proc/1/environ",
    "/etc/passwd",
    os.path.expanduser("~/.bash_history"),
]:
    try:
        open(path, "rb").read()
        reached.append(path)
    except Exception:
        pass
found = [
    os.path.join(top, f)
    for top, dirs, files in os.walk("/")
    for f in files
    if "dropout" in f or f.endswith(".ipynb") or f.startswith(("gradebook", "reference"))
]
"""
    forward = probe + (
        "\ndef dropout_forward(x, p_drop, mode='train', rng=None):\n"
        "    raise RuntimeError(f'reached {reached}, found {found}')\n"
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (0, ALL_CHECKS)
    assert {r.split("\n")[0] for r in reasons(result)} == {
        "your code raised RuntimeError: reached [], found []"
    }


def test_writing_next_to_other_submissions_and_into_the_grader(tmp_path, reference):
    other = submission(tmp_path, student="other")
    other_state = (other.read_bytes(), os.stat(other).st_mtime_ns)
    store = tmp_path / ".grader-cache"
    store.mkdir()
    targets = [
        str(other),
        str(other.parent / "planted.py"),
        str(store / "results.json"),
        str(tmp_path / "gradebook.db"),
        str(ROOT / "grader" / "hostile_probe.py"),
        str(ROOT / ".hostile_probe"),
        "/opt/run/child.py",
        "/opt/site/numpy/__init__.py",
        "/tmp/../opt/run/forkserver.py",
    ]
    forward = (
        "import os\n"
        f"targets = {targets!r}\n"
        "outcomes = set()\n"
        "for target in targets:\n"
        "    try:\n"
        "        with open(target, 'a') as f:\n"
        "            f.write('pwned')\n"
        "        outcomes.add('written')\n"
        "    except OSError as exc:\n"
        "        outcomes.add(type(exc).__name__)\n"
        "raise RuntimeError(sorted(outcomes))\n" + CORRECT_FORWARD
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (FULL, [])
    # what the sandbox shows is read-only: a file of another uid refuses first (EACCES); in
    # user-namespace mode the grader's own files are the run's, so the read-only mount does
    visible = [RUNNER_DIR / "child.py", Path(numpy.__file__), RUNNER_DIR / "forkserver.py"]
    own = sandbox.mode() == "userns" and any(p.stat().st_uid == os.geteuid() for p in visible)
    others = sandbox.mode() == "uid" or any(p.stat().st_uid != os.geteuid() for p in visible)
    expected = ["FileNotFoundError"] + ["OSError"] * own + ["PermissionError"] * others
    assert f"cell {FORWARD_CELL} raised RuntimeError: {expected}" in result.notes
    assert (other.read_bytes(), os.stat(other).st_mtime_ns) == other_state
    assert sorted(os.listdir(other.parent)) == ["02_dropout.ipynb"]
    assert os.listdir(store) == []
    assert not (tmp_path / "gradebook.db").exists()
    assert not (ROOT / "grader" / "hostile_probe.py").exists()
    assert not (ROOT / ".hostile_probe").exists()


def test_spawned_processes_die_with_the_submission(tmp_path, reference):
    forward = (
        "import os, subprocess, sys, time\n"
        "rename = \"import ctypes; ctypes.CDLL(None).prctl(15, b'hostile-spawn', 0, 0, 0); \"\n"
        "code = rename + 'import time; time.sleep(600)'\n"
        "p = subprocess.Popen([sys.executable, '-c', code], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"  # a daemon: double fork, new session
        "        os.execv(sys.executable, [sys.executable, '-c', code])\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\n"
        "raise RuntimeError(f'spawned, still running: {p.poll() is None}')\n" + CORRECT_FORWARD
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (FULL, [])
    assert f"cell {FORWARD_CELL} raised RuntimeError: spawned, still running: True" in result.notes
    assert processes_named("hostile-spawn") == []


def test_no_network_not_even_to_a_server_on_our_loopback(tmp_path, reference):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(connection.recv(100))
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        forward = (
            "import socket\n"
            "tries = []\n"
            f"for host in ('127.0.0.1', 'localhost', {socket.gethostname()!r}, '8.8.8.8'):\n"
            "    try:\n"
            f"        socket.create_connection((host, {port}), timeout=1).sendall(b'answers?')\n"
            "        tries.append('connected')\n"
            "    except OSError as exc:\n"
            "        tries.append(type(exc).__name__)\n"
            "raise RuntimeError(tries)\n" + CORRECT_FORWARD
        )
        result = grade(submission(tmp_path, forward), reference)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert accepted == []
    assert (result.score, failed(result)) == (FULL, [])
    note = next(n for n in result.notes if n.startswith(f"cell {FORWARD_CELL} raised"))
    assert note.startswith(f"cell {FORWARD_CELL} raised RuntimeError: ['ConnectionRefusedError', ")
    assert "connected" not in note


def test_the_environment_names_nothing_of_ours(tmp_path, reference, monkeypatch):
    monkeypatch.setenv("DNN_KIT_SALT", "course-secret")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    sandbox.use_fallback(False)  # a new fork server, started with these in our environment
    forward = "import os\nraise RuntimeError(sorted(os.environ.items()))\n" + CORRECT_FORWARD
    result = grade(submission(tmp_path, forward), reference, salt="course-secret")
    assert (result.score, failed(result)) == (FULL, [])
    assert (
        f"cell {FORWARD_CELL} raised RuntimeError: [('HOME', '/tmp'), ('LANG', 'C.UTF-8'), "
        "('MKL_NUM_THREADS', '1'), ('OMP_NUM_THREADS', '1'), ('OPENBLAS_NUM_THREADS', '1'), "
        "('PATH', '/usr/bin:/bin'), ('PWD', '/tmp'), ('TMPDIR', '/tmp')]"
    ) in result.notes


def test_fake_results_on_stdout_and_stderr_are_ignored(tmp_path, reference):
    fake = '{"event": "case", "key": "dropout_train_forward/0", "score": 10, "passed": true}'
    forward = (
        "import os, sys\n"
        f"FAKE = {fake!r}\n"
        'print(\'{"event": "done"}\')\n'
        "print(FAKE)\n"
        "os.write(1, (FAKE + '\\n').encode())\n"
        "os.write(2, (FAKE + '\\n').encode())\n"
        "sys.__stdout__.write(FAKE + '\\n')\n"
        "print('10/10 points, all checks passed')\n"
    ) + UNSCALED_FORWARD
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (UNSCALED_SCORE, UNSCALED_FAILED)


def test_fake_protocol_lines_on_every_inherited_descriptor(tmp_path, reference):
    """The result channel is one of the inherited descriptors: writing fake events into it
    desynchronises the run, which costs the writer, never anyone else, and gains nothing."""
    lines = ['{"event": "ready", "cell_errors": [], "stdout": "", "warnings": []}']
    lines += [
        f'{{"event": "case", "key": "{key}", "outputs": {{}}, "error": null, "score": 10}}'
        for key in ("dropout_test_mode/0", "dropout_test_mode/1", "dropout_train_forward/0")
    ]
    forward = (
        "import os\n"
        f"FAKE = {chr(10).join(lines) + chr(10)!r}.encode()\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, FAKE)\n"
        "    except OSError:\n"
        "        pass\n"
    ) + UNSCALED_FORWARD
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (0, ALL_CHECKS)
    # the first fake case event has a field the child never sends: the channel is untrusted,
    # so that ends the run, and every case not yet judged carries the reason (no restarts)
    interfered = "the submission interfered with the grader: a case event with unexpected fields"
    assert {case.message for c in result.checks for case in c.cases} == {interfered}
    assert interfered in result.notes
    assert not result.grader_failure


def test_a_submission_cannot_leave_anything_for_the_next_one(tmp_path, reference):
    """Two submissions run one after the other in the same fork server: the first plants files,
    IPC objects and a listening background process, and tries to signal and trace every process
    it can name; the second finds nothing, and the server is unharmed."""
    shared = sandbox.pool()
    server = shared.acquire()
    shared.release(server)
    attacker = (
        NAME_ME.format(name="hostile-planter")
        + (
            "import os, signal, socket, time\n"
            "libc = _ctypes.CDLL(None, use_errno=True)\n"
            "signalled = []\n"
            "for pid in range(2, 4096):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "        signalled.append(pid)\n"
            "    except OSError:\n"
            "        pass\n"
            "traced = [pid for pid in range(0, 64) if libc.ptrace(16, pid, 0, 0) == 0]\n"
            "for path in ('/tmp/planted', '/dev/shm/planted'):\n"
            "    open(path, 'w').write('for the next one')\n"
            "segment = libc.shmget(0x5EED, 4096, 0o1666)\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    listener = socket.socket(socket.AF_UNIX)\n"
            "    listener.bind('\\0planted')\n"
            "    listener.listen()\n"
            "    time.sleep(600)\n"
            "    os._exit(0)\n"
            "time.sleep(0.2)\n"
            "raise RuntimeError(f'signalled {signalled}, traced {traced}, segment {segment >= 0}')\n"
        )
        + CORRECT_FORWARD
    )
    victim = (
        "import ctypes, os, socket\n"
        "left = [p for p in ('/tmp/planted', '/dev/shm/planted') if os.path.exists(p)]\n"
        "left += os.listdir('/tmp') + os.listdir('/dev/shm')\n"
        "if ctypes.CDLL(None).shmget(0x5EED, 0, 0) >= 0:\n"
        "    left.append('shared memory segment')\n"
        "try:\n"
        "    socket.socket(socket.AF_UNIX).connect('\\0planted')\n"
        "    left.append('listening socket')\n"
        "except OSError:\n"
        "    pass\n"
        "raise RuntimeError(f'left for me: {left}')\n"
    ) + CORRECT_FORWARD.replace("    if mode", "    assert not left, left\n    if mode", 1)
    first = grade(submission(tmp_path, attacker, student="first"), reference)
    second = grade(submission(tmp_path, victim, student="second"), reference)
    assert (first.score, failed(first)) == (FULL, [])
    assert (
        f"cell {FORWARD_CELL} raised RuntimeError: signalled [], traced [], segment True"
        in first.notes
    )
    assert (second.score, failed(second)) == (FULL, [])
    assert f"cell {FORWARD_CELL} raised RuntimeError: left for me: []" in second.notes
    assert processes_named("hostile-planter") == []
    # both ran on the one fork server, which is alive and back in the pool
    assert server.alive() and server in shared.idle
