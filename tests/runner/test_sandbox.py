"""The sandbox: the bubblewrap command, what a run can see and do, the fork server, fallbacks."""

from __future__ import annotations

import ast
import os
import select
import signal
import sys
from pathlib import Path

import pytest
from kit_testing import install_hint

from grader.runner import forkserver, sandbox
from grader.runner.process import DEFAULT_LIMITS, Limits, run_in_child

ROOT = Path(__file__).resolve().parents[2]
needs_bwrap = pytest.mark.skipif(
    sandbox.bwrap_path() is None and not sandbox.in_ci(),
    reason=f"bubblewrap is not installed: {install_hint('bubblewrap')} (CI=true makes this an error)",
)


def run_cell(source: str, limits: Limits = DEFAULT_LIMITS):
    """Run one cell; returns (isolation, the value its last line printed, cell errors)."""
    outcome = run_in_child([{"index": 0, "source": source}], [], limits)
    ready = outcome.ready
    assert "fatal" not in ready, ready
    printed = ready["stdout"].strip().splitlines()
    return outcome.isolation, (ast.literal_eval(printed[-1]) if printed else None), ready


# --------------------------------------------------------------------------- the command line
def test_bwrap_command_isolates_and_mounts_only_python_and_numpy():
    command = sandbox.bwrap_command(7, "uid")
    for flag in (
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-net",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ):
        assert flag in command
    assert command[command.index("--remount-ro") + 1] == "/"
    destinations = [command[i + 2] for i, a in enumerate(command) if a == "--ro-bind"]
    assert "/opt/site/numpy" in destinations
    assert "/opt/run/child.py" in destinations and "/opt/run/forkserver.py" in destinations
    assert not [d for d in destinations if d.startswith(str(ROOT))]  # nothing of the repository
    assert not [d for d in destinations if "site-packages" in d or "dist-packages" in d]
    assert not [a for a in command if a in ("--bind", "--dev-bind", "--proc")]  # read-only only
    env = {command[i + 1] for i, a in enumerate(command) if a == "--setenv"}
    assert env == set(sandbox.ENVIRONMENT)
    assert command[-3:] == ["7", "uid", "/opt/site"]
    user = sandbox.bwrap_command(7, "userns")
    assert "--unshare-user" in user and "--disable-userns" in user


def test_seccomp_programs_are_well_formed():
    for machine in ("x86_64", "aarch64"):
        program = forkserver.seccomp_program(machine)
        assert program is not None and len(program) % 8 == 0
        count = len(program) // 8
        import struct

        for i in range(count):
            code, jt, jf, _ = struct.unpack_from("HBBI", program, 8 * i)
            if code & 0x07 == 0x05:  # a jump stays inside the program
                assert i + 1 + max(jt, jf) < count
    assert forkserver.seccomp_program("riscv64") is None


def test_limits_for_the_child():
    limits = Limits(memory_bytes=2**30, processes=10, total_seconds=20)
    assert limits.for_child("uid") == {
        "memory_bytes": 2**30,
        "open_files": 64,
        "file_bytes": 16 * 2**20,
        "processes": 10,
        "tmp_bytes": 64 * 2**20,
        "cpu_seconds": 25,
    }
    assert limits.for_child("userns")["processes"] == 14


# --------------------------------------------------------------------------- inside a run
@needs_bwrap
def test_a_run_sees_only_python_and_numpy_and_cannot_act_outside():
    probe = f"""
import ctypes, errno, os, resource, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
facts = {{}}
facts["uid"] = os.getuid()
facts["pid"] = os.getpid()
facts["repo"] = os.path.exists({str(ROOT)!r})
facts["cwd_of_grader"] = os.path.exists({os.getcwd()!r})
facts["proc"] = os.path.exists("/proc/self")
facts["tmp"] = os.listdir("/tmp")
try:
    import grader
    facts["grader"] = "imported"
except ImportError:
    facts["grader"] = "hidden"
try:
    socket.create_connection(("127.0.0.1", 9), timeout=1)
except OSError as exc:
    facts["net"] = type(exc).__name__
facts["ptrace"] = (libc.ptrace(16, 1, 0, 0), ctypes.get_errno())
facts["unshare"] = (libc.unshare(0x10000000), ctypes.get_errno())
facts["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)
facts["as"] = resource.getrlimit(resource.RLIMIT_AS)
facts["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)
facts["fsize"] = resource.getrlimit(resource.RLIMIT_FSIZE)
try:
    os.setuid(0)
    facts["setuid0"] = "worked"
except PermissionError:
    facts["setuid0"] = "refused"
print(facts)
"""
    isolation, facts, _ = run_cell(probe)
    if isolation == sandbox.FALLBACK:
        pytest.skip("the sandbox is unavailable here")
    assert isolation in ("bwrap+uid+seccomp+rlimits", "bwrap+userns+seccomp+rlimits")
    if sandbox.mode() == "uid":
        assert facts["uid"] >= 0x50000000
    assert facts["pid"] == 1
    assert not facts["repo"] and not facts["cwd_of_grader"] and not facts["proc"]
    assert facts["tmp"] == []
    assert facts["grader"] == "hidden"
    assert facts["net"] == "ConnectionRefusedError"
    assert facts["ptrace"] == (-1, 1) and facts["unshare"] == (-1, 1)  # EPERM from seccomp
    assert facts["nproc"] == ((32, 32) if sandbox.mode() == "uid" else (36, 36))
    assert facts["as"] == (DEFAULT_LIMITS.memory_bytes,) * 2
    assert facts["nofile"] == (64, 64) and facts["fsize"] == (16 * 2**20,) * 2
    assert facts["setuid0"] == "refused"


@needs_bwrap
def test_every_run_gets_a_fresh_uid_and_a_fresh_tmp_on_the_same_server():
    shared = sandbox.pool()
    if shared is None:
        pytest.skip("the sandbox is unavailable here")
    server = shared.acquire()
    shared.release(server)
    seen = []
    for _ in range(3):
        _, (uid, tmp), _ = run_cell(
            "import os\nopen('/tmp/mine', 'w').close()\nprint((os.getuid(), os.listdir('/tmp')))"
        )
        seen.append((uid, tmp))
    assert all(tmp == ["mine"] for _, tmp in seen)
    if sandbox.mode() == "uid":
        assert len({uid for uid, _ in seen}) == 3
    assert server in shared.idle and server.alive()


@needs_bwrap
def test_a_dead_server_is_replaced_transparently():
    shared = sandbox.pool()
    if shared is None:
        pytest.skip("the sandbox is unavailable here")
    server = shared.acquire()
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    shared.release(server)  # dead: not kept
    assert server not in shared.idle
    isolation, value, _ = run_cell("print(6 * 7)")
    assert isolation.startswith("bwrap+") and value == 42


@needs_bwrap
def test_a_server_killed_during_a_run_is_the_graders_problem_not_the_students():
    shared = sandbox.pool()
    if shared is None:
        pytest.skip("the sandbox is unavailable here")
    server = shared.acquire()
    handle = server.start(b'{"cells": [], "cases": []}', DEFAULT_LIMITS.for_child(server.mode))
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    select.select([server.control], [], [], 5)  # the server inside dies with the sandbox
    with pytest.raises(sandbox.SandboxError):
        server.end(handle, kill=True)
    shared.release(server)
    assert server not in shared.idle


# --------------------------------------------------------------------------- availability
@pytest.fixture
def fresh_state():
    sandbox.use_fallback(False)
    yield
    sandbox.use_fallback(False)


def test_without_bwrap_ci_is_a_hard_error(monkeypatch, fresh_state):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("DNN_KIT_SANDBOX", raising=False)
    with pytest.raises(sandbox.SandboxUnavailable, match="CI=true requires the sandbox"):
        sandbox.require()
    from grader.grading import grade_many

    with pytest.raises(sandbox.SandboxUnavailable):
        grade_many([], jobs=1, progress=False)


def test_a_students_self_check_never_fails_or_warns_for_want_of_bwrap(
    monkeypatch, capsys, tmp_path, fresh_state
):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    monkeypatch.setenv("CI", "true")
    sys.path.insert(0, str(ROOT / "tests" / "hostile"))
    from hostile_helpers import submission

    from grader.grading import Target, grade_notebook

    result = grade_notebook(Target(submission(tmp_path)), include_hidden=False)
    assert (result.score, result.max_score, result.isolation) == (7.0, 7.0, "rlimits only")
    assert capsys.readouterr().err == ""
    with pytest.raises(sandbox.SandboxUnavailable):  # grading for real still refuses
        grade_notebook(Target(submission(tmp_path)))


def test_required_by_choice(monkeypatch, fresh_state):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("DNN_KIT_SANDBOX", "required")
    with pytest.raises(sandbox.SandboxUnavailable, match="DNN_KIT_SANDBOX=required requires"):
        sandbox.require()


def test_turned_off_by_choice(monkeypatch, capsys, fresh_state):
    monkeypatch.setenv("DNN_KIT_SANDBOX", "off")
    assert sandbox.require() == sandbox.FALLBACK
    assert "turned off by DNN_KIT_SANDBOX=off" in capsys.readouterr().err


def test_without_bwrap_elsewhere_a_loud_warning_and_rlimits_only(monkeypatch, capsys, fresh_state):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("DNN_KIT_SANDBOX", raising=False)
    assert sandbox.require() == sandbox.FALLBACK
    warning = capsys.readouterr().err
    assert "WARNING: bubblewrap sandbox unavailable: bwrap is not installed" in warning
    assert "apt-get install bubblewrap" in warning
    isolation, value, _ = run_cell("print(6 * 7)")
    assert (isolation, value) == ("rlimits only", 42)


def test_the_fallback_runner_still_protects_the_protocol(fresh_state, monkeypatch):
    monkeypatch.setenv("DNN_KIT_SANDBOX", "off")  # under CI=true the fallback would be refused
    sandbox.use_fallback(True)
    isolation, value, ready = run_cell(
        "import os, sys\nos.write(1, b'junk\\n')\nx = input\nprint(sys.stdin.read() == '')"
    )
    assert (isolation, value) == ("rlimits only", True)


# --------------------------------------------------------------------------- grade_many
def test_grade_many_in_parallel_keeps_order_and_reports_each_result(tmp_path, reference):
    sys.path.insert(0, str(ROOT / "tests" / "hostile"))
    from hostile_helpers import UNSCALED_FORWARD, submission

    from grader.grading import Target, grade_many

    paths = [
        submission(tmp_path, student="a"),
        submission(tmp_path, UNSCALED_FORWARD, student="b"),
        submission(tmp_path, student="c"),
    ]
    seen = {}
    results = grade_many(
        [Target(p, student=p.parts[-3]) for p in paths],
        jobs=2,
        reference=reference,
        progress=False,
        on_result=lambda index, result: seen.setdefault(index, result.student),
    )
    assert [r.student for r in results] == ["a", "b", "c"]
    assert [r.score for r in results] == [10.0, 6.0, 10.0]
    assert seen == {0: "a", 1: "b", 2: "c"}
