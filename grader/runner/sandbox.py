"""The sandbox student code runs in: bubblewrap around a fork server, one fresh child per run.

Each grading worker owns one **fork server** (:mod:`grader.runner.forkserver`), started once
inside bubblewrap with NumPy already imported; every run of a submission is a child forked
from it (a few milliseconds instead of a fresh interpreter's 0.15 s). What the sandbox holds:

* a read-only view of the interpreter, its standard library (its site-packages hidden), the
  shared libraries these and NumPy load (listed by ``ldd``), NumPy, and the two runner scripts;
  nothing else: not the repository, the references, the hidden cases, the course directory,
  other submissions or the grade store (the editable install's finder lives in the venv, which
  is not mounted at all);
* no network (``--unshare-net``: a loopback of its own), its own PID, IPC and UTS namespaces,
  a new session, and ``--die-with-parent``;
* an environment of our choosing (``--clearenv``): nothing in it names the grader.

Each run then gets, inside the server's sandbox: new mount, PID and IPC namespaces (its own
/tmp and /dev/shm, small tmpfs; everything it starts dies with it), rlimits (address space,
processes/threads, open files, file size, CPU, no core dumps), an unprivileged uid of its own
when the grader runs as root (``RLIMIT_NPROC`` does nothing for root), no capabilities,
``no_new_privs``, and a seccomp filter (no ptrace, no namespaces, no keyrings, no mounts).

When bubblewrap is missing or cannot start, grading refuses (:func:`require`; the policy
``DNN_KIT_SANDBOX=required`` is the default) unless ``DNN_KIT_SANDBOX=off`` (``--no-sandbox``)
chooses the fallback deliberately: a fresh interpreter with rlimits only, with a loud warning. Every result
records which isolation it got: ``bwrap+uid+seccomp+rlimits`` (grader run as root),
``bwrap+userns+seccomp+rlimits`` (as another user) or ``rlimits only``.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import secrets
import selectors
import shutil
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy

RUNNER_DIR = Path(__file__).resolve().parent
SANDBOX_RUN = "/opt/run"  # where child.py and forkserver.py appear inside the sandbox
SANDBOX_SITE = "/opt/site"  # where NumPy appears inside the sandbox
FALLBACK = "rlimits only"
START_TIMEOUT = 20.0
CONTROL_TIMEOUT = 15.0
ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class SandboxUnavailable(RuntimeError):
    """bubblewrap is required (``CI=true``) but missing or not working."""


class SandboxError(RuntimeError):
    """The sandbox itself failed during a run (the grader's problem, not the submission's)."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def policy() -> str:
    """``required`` (grading refuses without the sandbox), ``auto`` (falls back with a loud
    warning) or ``off`` (the fallback, chosen deliberately; ``--no-sandbox``).

    ``DNN_KIT_SANDBOX`` (read by the grader, never passed to student code) sets it. The default
    is ``required`` everywhere: grading fails closed. A student's self-check never asks (it runs
    the student's own code on their own machine, sandboxed only when it can be).
    """
    value = os.environ.get("DNN_KIT_SANDBOX", "").strip().lower()
    if value in ("required", "auto", "off"):
        return value
    return "required"


def bwrap_path() -> str | None:
    return shutil.which("bwrap") or (
        "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None
    )


def mode() -> str:
    """``uid``: the grader is root, runs drop to unprivileged uids. ``userns``: it is not."""
    return "uid" if os.geteuid() == 0 else "userns"


# --------------------------------------------------------------------------- the command
def _inside(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _top_level_links() -> list[str]:
    """/lib, /lib64, ...: symlinks into /usr on merged-/usr systems (the loader's path uses them)."""
    args = []
    for directory in ("/lib", "/lib64", "/lib32", "/libx32", "/bin"):
        if os.path.islink(directory):
            args += ["--symlink", os.readlink(directory), directory]
    return args


def _objects() -> list[str]:
    """The interpreter, its extension modules and NumPy's: what the loader must find."""
    stdlib = Path(sysconfig.get_path("platstdlib", vars=_base_vars()))
    objects = [interpreter()]
    objects += sorted(
        str(p) for p in (stdlib / "lib-dynload").glob("*.so") if not p.name.startswith("_tkinter")
    )
    numpy_dir = Path(numpy.__file__).resolve().parent
    objects += sorted(str(p) for p in numpy_dir.rglob("*.so"))
    return objects


@functools.cache
def shared_libraries() -> tuple[str, ...] | None:
    """Every shared library the interpreter, the standard library and NumPy load (``ldd``), or
    None when ``ldd`` is unavailable (then the system's library folders are mounted whole)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        listing = subprocess.run(
            [ldd, *_objects()], capture_output=True, text=True, timeout=120, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    numpy_dir = os.path.dirname(os.path.realpath(numpy.__file__))
    own = [numpy_dir, numpy_dir + ".libs"]  # mounted elsewhere, found through $ORIGIN
    found = set()
    for line in listing.splitlines():
        line = line.strip()
        if "=>" in line:
            line = line.split("=>", 1)[1].strip()
        path = line.split(" (", 1)[0].strip()
        if (
            path.startswith("/")
            and os.path.exists(path)
            and not _inside(os.path.realpath(path), own)
        ):
            found.add(path)
    return tuple(sorted(found)) or None


def _system_mounts(visible: list[str]) -> list[str]:
    """bwrap arguments for the shared libraries (each file, or whole folders without ``ldd``)."""
    args = _top_level_links()
    libraries = shared_libraries()
    if libraries is None:
        for directory in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64"):
            if os.path.isdir(directory) and not os.path.islink(directory):
                args += ["--ro-bind", directory, directory]
                visible.append(directory)
    else:
        destinations: dict[str, str] = {}
        for library in libraries:
            # where the loader looks: the real folder, under the name it asks for
            destination = os.path.join(
                os.path.realpath(os.path.dirname(library)), os.path.basename(library)
            )
            if not _inside(destination, visible):
                destinations.setdefault(destination, library)
        for destination, library in sorted(destinations.items()):
            args += ["--ro-bind", library, destination]
        for locale in ("/usr/lib/locale/C.utf8", "/usr/lib/locale/C.UTF-8"):
            if os.path.isdir(locale):
                args += ["--ro-bind", locale, locale]
    if os.path.exists("/etc/ld.so.cache"):
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


def _base_vars() -> dict[str, str]:
    base = sys.base_prefix
    return {"base": base, "platbase": base, "installed_base": base, "installed_platbase": base}


def _traversable(args: list[str]) -> list[str]:
    """bwrap creates the parents of mount points as root-only directories; the unprivileged uid
    of a run must be able to pass through them (to import the rest of the standard library)."""
    parents: set[str] = set()
    destinations = []
    for i, arg in enumerate(args[:-2]):
        if arg in ("--ro-bind", "--bind", "--symlink"):
            destinations.append(args[i + 2])
        elif arg in ("--tmpfs", "--dir", "--dev"):
            destinations.append(args[i + 1])
    binds = [args[i + 2] for i, arg in enumerate(args[:-2]) if arg == "--ro-bind"]
    for destination in destinations:
        parent = os.path.dirname(destination.rstrip("/"))
        while parent not in ("", "/") and not _inside(parent, binds):
            parents.add(parent)
            parent = os.path.dirname(parent)
    result = []
    for parent in sorted(parents):
        result += ["--chmod", "0755", parent]
    return result


def interpreter() -> str:
    """The real (base) interpreter: a venv's own python is only a link to it."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


def bwrap_command(control_fd: int, run_mode: str | None = None) -> list[str]:
    """The full bubblewrap command line that starts one fork server."""
    run_mode = run_mode or mode()
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
    args = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--hostname", "localhost", "--die-with-parent"]
    args += ["--new-session"]
    if run_mode == "userns":
        args += ["--unshare-user", "--disable-userns"]
    # what the server needs to give each run its own namespaces, mounts and uid
    args += ["--cap-drop", "ALL"]
    for capability in ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"):
        args += ["--cap-add", capability]
    args += ["--clearenv"]
    for key, value in ENVIRONMENT.items():
        args += ["--setenv", key, value]
    # the interpreter and its standard library (not the rest of its installation)
    python = interpreter()
    visible: list[str] = []
    for key in ("stdlib", "platstdlib"):
        folder = os.path.realpath(sysconfig.get_path(key, vars=_base_vars()))
        if not _inside(folder, visible):
            args += ["--ro-bind", folder, folder]
            visible.append(folder)
    args += ["--ro-bind", python, python]
    visible.append(python)
    # the installation's own site-packages (inside the standard library's folder) is hidden
    for packages in sorted({os.path.realpath(p) for p in site.getsitepackages([sys.base_prefix])}):
        if os.path.isdir(packages) and _inside(packages, visible):
            args += ["--tmpfs", packages]
    args += _system_mounts(visible)
    numpy_dir = os.path.dirname(os.path.realpath(numpy.__file__))
    args += ["--ro-bind", numpy_dir, f"{SANDBOX_SITE}/numpy"]
    libs = numpy_dir + ".libs"
    if os.path.isdir(libs):
        args += ["--ro-bind", libs, f"{SANDBOX_SITE}/numpy.libs"]
    for script in ("child.py", "forkserver.py"):
        args += ["--ro-bind", str(RUNNER_DIR / script), f"{SANDBOX_RUN}/{script}"]
    args += ["--dev", "/dev", "--dir", "/tmp", "--chdir", "/tmp"]
    args += _traversable(args)
    args += ["--remount-ro", "/"]
    args += [python, "-I", f"{SANDBOX_RUN}/forkserver.py", str(control_fd), run_mode, SANDBOX_SITE]
    return args


# --------------------------------------------------------------------------- fork servers
# bwrap's --die-with-parent follows the *thread* that started it, so every server is started
# from this one long-lived thread, never from a short-lived worker thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")


@dataclass
class RunHandle:
    """One run on a fork server: read its events from ``fd``, then :meth:`ForkServer.end` it."""

    fd: int
    server: ForkServer
    setup_error: str | None = None  # set by :meth:`ForkServer.end`: the run could not be prepared


class ForkServer:
    """One sandbox with a fork server inside it, owned by one grading worker at a time."""

    def __init__(self, run_mode: str | None = None):
        self.mode = run_mode or mode()
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log = tempfile.TemporaryFile()
        command = bwrap_command(theirs.fileno(), self.mode)
        choom = shutil.which("choom")
        if choom:  # if memory runs out, the kernel kills sandboxed processes first
            command = [choom, "-n", "1000", "--", *command]
        try:
            self.process = _SPAWNER.submit(
                subprocess.Popen,
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.log,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env={"PATH": "/usr/bin:/bin"},
            ).result()
        finally:
            theirs.close()
        self.running: RunHandle | None = None
        try:
            hello = self._receive(START_TIMEOUT).get("hello")
        except SandboxError as exc:
            log = self.log_text()
            self.close()
            raise SandboxUnavailable(f"{exc}: {log}") from None
        if not isinstance(hello, dict):
            log = self.log_text()
            self.close()
            raise SandboxUnavailable(f"unexpected answer from the sandbox: {log}")
        self.seccomp = bool(hello.get("seccomp"))
        self.isolation = "+".join(
            ["bwrap", "uid" if self.mode == "uid" else "userns"]
            + (["seccomp"] if self.seccomp else [])
            + ["rlimits"]
        )

    def log_text(self) -> str:
        try:
            self.log.seek(0)
            return self.log.read()[-2000:].decode(errors="replace").strip() or "(no message)"
        except (OSError, ValueError):
            return "(no message)"

    def _receive(self, timeout: float) -> dict:
        self.control.settimeout(timeout)
        try:
            data = self.control.recv(1 << 16)
        except TimeoutError:
            raise SandboxError("the sandbox did not answer") from None
        except OSError as exc:
            raise SandboxError(f"the sandbox is gone ({exc})") from None
        if not data:
            raise SandboxError("the sandbox ended")
        return json.loads(data)

    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self, request: bytes, limits: dict) -> RunHandle:
        """Fork a child for ``request``; its events arrive on the returned handle's ``fd``."""
        if self.running is not None:
            self.end(self.running, kill=True)
        memfd = os.memfd_create("request", os.MFD_CLOEXEC)
        read_end, write_end = os.pipe()
        try:
            view = memoryview(request)
            while view:
                view = view[os.write(memfd, view) :]
            uid = mode_uid() if self.mode == "uid" else 0
            message = json.dumps({"op": "run", "uid": uid, "limits": limits}).encode()
            try:
                socket.send_fds(self.control, [message], [memfd, write_end])
            except OSError as exc:
                raise SandboxError(f"the sandbox is gone ({exc})") from None
        finally:
            os.close(memfd)
            os.close(write_end)
        try:
            answer = self._receive(CONTROL_TIMEOUT)
        except SandboxError:
            os.close(read_end)
            raise
        if not answer.get("ok"):
            os.close(read_end)
            raise SandboxError(answer.get("error", "the sandbox refused the run"))
        self.running = RunHandle(read_end, self)
        return self.running

    def end(self, handle: RunHandle, *, kill: bool, grace: float = 0.5) -> int | None:
        """Finish a run (killing it and everything it started if asked, or if it lingers);
        returns its exit code (negative: the signal that ended it), or None if unknown."""
        self.running = None
        try:
            os.close(handle.fd)
        except OSError:
            pass
        message = json.dumps({"op": "end", "kill": kill, "grace": grace}).encode()
        try:
            self.control.send(message)
        except OSError as exc:
            raise SandboxError(f"the sandbox is gone ({exc})") from None
        answer = self._receive(CONTROL_TIMEOUT + grace)
        handle.setup_error = answer.get("setup_error")
        status = answer.get("status")
        return int(status) if isinstance(status, int) else None

    def close(self) -> None:
        """End the sandbox: politely (the server exits when its control socket closes), then
        for certain (bubblewrap killed: its PID namespace, and all in it, goes with it)."""
        try:
            self.control.close()
        except OSError:
            pass
        if getattr(self, "process", None) is not None:
            if self.running is None:
                try:
                    self.process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.log.close()


def mode_uid() -> int:
    """A uid no account and no other run uses: a run's processes count only against its own
    RLIMIT_NPROC, and it can signal or trace nothing but itself."""
    return 0x50000000 + secrets.randbelow(0x20000000)


class Pool:
    """Idle fork servers, handed to one grading thread at a time."""

    def __init__(self) -> None:
        self.idle: list[ForkServer] = []
        self.lock = threading.Lock()
        self.closed = False

    def acquire(self) -> ForkServer:
        with self.lock:
            while self.idle:
                server = self.idle.pop()
                if server.alive():
                    return server
                server.close()
        return ForkServer()

    def release(self, server: ForkServer, healthy: bool = True) -> None:
        with self.lock:
            if healthy and not self.closed and server.alive() and server.running is None:
                self.idle.append(server)
                return
        server.close()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            idle, self.idle = self.idle, []
        for server in idle:
            server.close()


# --------------------------------------------------------------------------- availability
_state: dict = {}
_state_lock = threading.Lock()


def pool(strict: bool = True) -> Pool | None:
    """The fork-server pool, or None when runs must fall back to rlimits only.

    The first call probes bubblewrap by starting one server and making one trial run. When it
    is unavailable and ``strict`` (grading for real, as opposed to a student's self-check):
    with the :func:`policy` ``required`` (``CI=true``) this raises :class:`SandboxUnavailable`,
    otherwise it prints a loud warning, once.
    """
    with _state_lock:
        if "pool" not in _state:
            if policy() == "off":
                _state["pool"], _state["reason"] = None, "turned off by DNN_KIT_SANDBOX=off"
            else:
                _state["pool"], _state["reason"] = _probe()
        if _state["pool"] is None and strict and not _state.get("warned"):
            message = (
                f"bubblewrap sandbox unavailable: {_state['reason']}.\n"
                "Student code will run with resource limits only: it could read the "
                "references and other submissions, and reach the network.\n"
                "Install it with: apt-get install bubblewrap"
            )
            if policy() == "required":
                why = "CI=true" if in_ci() else "DNN_KIT_SANDBOX=required"
                raise SandboxUnavailable(f"{why} requires the sandbox. {message}")
            _state["warned"] = True
            print(
                "\n" + "!" * 78 + f"\nWARNING: {message}\n" + "!" * 78 + "\n",
                file=sys.stderr,
                flush=True,
            )
        return _state["pool"]


def _probe() -> tuple[Pool | None, str]:
    if not sys.platform.startswith("linux"):
        return None, f"not available on {sys.platform}"
    if bwrap_path() is None:
        return None, "bwrap is not installed"
    try:
        server = ForkServer()
    except (SandboxUnavailable, OSError) as exc:
        return None, _with_hint(str(exc))
    try:
        trial_run(server)
    except (SandboxError, OSError) as exc:
        server.close()
        return None, _with_hint(str(exc))
    shared = Pool()
    shared.release(server)
    atexit.register(shared.close)
    return shared, ""


def trial_run(server: ForkServer) -> None:
    """One empty run: proves the server can give a run its namespaces, uid and limits."""
    handle = server.start(b'{"cells": [], "cases": []}', TRIAL_LIMITS)
    selector = selectors.DefaultSelector()
    selector.register(handle.fd, selectors.EVENT_READ)
    line = b""
    deadline = time.monotonic() + START_TIMEOUT
    while b"\n" not in line and time.monotonic() < deadline:
        if not selector.select(deadline - time.monotonic()):
            break
        chunk = os.read(handle.fd, 1 << 16)
        if not chunk:
            break
        line += chunk
    selector.close()
    server.end(handle, kill=True)
    try:
        event = json.loads(line.split(b"\n", 1)[0])
    except ValueError:
        event = {}
    if event.get("event") != "ready":
        raise SandboxError(f"a trial run failed: {handle.setup_error or 'no answer'}")


TRIAL_LIMITS = {
    "memory_bytes": 2**31,
    "open_files": 64,
    "file_bytes": 2**20,
    "processes": 64,
    "tmp_bytes": 2**20,
    "cpu_seconds": 30,
}


def _with_hint(reason: str) -> str:
    if mode() == "userns" and ("denied" in reason or "not permitted" in reason):
        reason += (
            " (unprivileged user namespaces may be restricted: on Ubuntu 24.04, "
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0; or grade as root)"
        )
    return reason


INSTALL_HINT = (
    "Install bubblewrap (Debian/Ubuntu, as root: apt-get install bubblewrap); when grading as "
    "an ordinary user, unprivileged user namespaces must be allowed too (Ubuntu 24.04: "
    "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0), or grade as root. "
    "To grade without the sandbox anyway (student code could then read the references, other "
    "submissions and the network): --no-sandbox, or DNN_KIT_SANDBOX=off."
)


def require() -> str:
    """The isolation grading will get; refuses (:class:`SandboxUnavailable`, saying how to
    install bubblewrap) when the sandbox does not work and the :func:`policy` is ``required``,
    the default. With ``auto`` or ``off`` the fallback is used, with a loud warning."""
    try:
        shared = pool()
    except SandboxUnavailable as exc:
        if os.environ.get("DNN_KIT_SANDBOX", "").strip():
            why = f"DNN_KIT_SANDBOX={policy()}"
        else:
            why = "CI=true" if in_ci() else "the default policy (DNN_KIT_SANDBOX=required)"
        reason = _state.get("reason", "") or str(exc)
        raise SandboxUnavailable(
            f"refusing to grade: {why} requires the sandbox (bubblewrap), and it does not work "
            f"here: {reason}. {INSTALL_HINT}"
        ) from exc
    if shared is None:
        return FALLBACK
    server = shared.acquire()
    try:
        return server.isolation
    finally:
        shared.release(server)


def use_fallback(enabled: bool) -> None:
    """Force the rlimits-only runner (tests of the fallback), or go back to probing."""
    with _state_lock:
        previous = _state.pop("pool", None)
        _state.pop("warned", None)
        if enabled:
            _state["pool"], _state["reason"] = None, "disabled"
    if previous is not None:
        previous.close()
