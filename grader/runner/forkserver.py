"""The fork server that runs inside the sandbox: NumPy imported once, one fresh child per run.

This script is started by :mod:`grader.runner.sandbox` inside bubblewrap (read-only view of
Python, NumPy and this folder; no network; its own PID, IPC and UTS namespaces). It imports
only the standard library and :mod:`child` (standard library + NumPy), and it never sees a
submission: the request of each run travels in a memfd that only the run's child reads.

Control protocol (``SOCK_SEQPACKET``, one JSON object per message)::

    server → parent   {"hello": {"seccomp": bool, "mode": "uid"|"userns"}}
    parent → server   {"op": "run", "uid": U, "limits": {...}}   + fds [request memfd, event pipe]
    server → parent   {"ok": true} | {"ok": false, "error": "..."}
    parent → server   {"op": "end", "kill": bool, "grace": seconds}
    server → parent   {"status": exit code (negative: killed by that signal), "killed": bool,
                       "setup_error": null | "why the run could not be prepared"}

The child's event pipe carries only what the child (and so the student's code) writes: it is
untrusted. A run that cannot be prepared (before any student code) says so on a setup pipe that
is closed before the student's code starts, read by the monitor and reported on this control
socket, which no run ever holds.

A run is three processes::

    server ── monitor (still privileged; unshares mount, PID and IPC namespaces; waits)
                 └── runner: PID 1 of a fresh PID namespace, its own /tmp and /dev/shm, a
                     read-only /dev (its device nodes still work),
                     rlimits, then drops to an unprivileged uid (root mode) or all capabilities
                     (user-namespace mode), no_new_privs, seccomp, and runs the student's code.

When the runner ends or is killed, the kernel kills every process it started (they live in its
PID namespace). Nothing a run leaves behind is visible to the next one: its files live in its
own tmpfs, its IPC objects in its own namespace, its processes die with it, and it runs as a uid
no other run uses. The server is not dumpable and lives in a PID namespace the runs cannot see.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import platform
import random
import resource
import select
import signal
import socket
import struct
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWCGROUP = 0x02000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP = 1, 4, 22
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
SECCOMP_MODE_FILTER = 2

# fixed descriptor numbers in the monitor and the runner
REQUEST_FD, EVENT_FD, STATUS_FD = 3, 4, 5
SETUP_ERROR_CHARS = 2000

_libc = ctypes.CDLL(None, use_errno=True)


def _call(function, *args, what: str) -> None:
    if function(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _prctl(option: int, arg: int = 0) -> None:
    ulong = ctypes.c_ulong
    _call(_libc.prctl, option, ulong(arg), ulong(0), ulong(0), ulong(0), what=f"prctl({option})")


def _mount_tmpfs(target: str, options: str) -> None:
    _call(
        _libc.mount,
        b"tmpfs",
        target.encode(),
        b"tmpfs",
        ctypes.c_ulong(MS_NOSUID | MS_NODEV),
        options.encode(),
        what=f"mount tmpfs on {target}",
    )


# --------------------------------------------------------------------------- seccomp
# Syscalls an unprivileged student process never needs, and which would let it look at or
# act on other processes, keep state in the kernel, or build new namespaces.
_BLOCKED = {
    "x86_64": {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
        "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308,
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "open_by_handle_at": 304,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442,
    },
    "aarch64": {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
        "add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268,
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "open_by_handle_at": 265,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442,
    },
}  # fmt: skip
_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_CLONE = {"x86_64": 56, "aarch64": 220}
_CLONE3 = 435
_NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
) | CLONE_NEWCGROUP
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS = 1, 38


def seccomp_program(machine: str) -> bytes | None:
    """A classic-BPF seccomp filter: EPERM for the syscalls above and for namespace clones."""
    if machine not in _BLOCKED:
        return None
    ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|..., BPF_RET
    deny = (ret, 0, 0, _RET_ERRNO | _EPERM)
    program = [(ld, 0, 0, 4), (jeq, 1, 0, _ARCH[machine]), deny]  # a foreign ABI: refuse
    program.append((ld, 0, 0, 0))  # the syscall number
    if machine == "x86_64":
        program += [(jge, 0, 1, 0x40000000), deny]  # the x32 ABI
    program += [(jeq, 0, 1, _CLONE3), (ret, 0, 0, _RET_ERRNO | _ENOSYS)]  # glibc uses clone()
    program += [
        (jeq, 0, 4, _CLONE[machine]),
        (ld, 0, 0, 16),  # clone's flags: the low 32 bits of its first argument
        (jset, 0, 1, _NAMESPACE_FLAGS),
        deny,
        (ret, 0, 0, _RET_ALLOW),
    ]
    blocked = sorted(set(_BLOCKED[machine].values()))
    for i, number in enumerate(blocked):
        program.append((jeq, len(blocked) - i, 0, number))  # to the final deny
    program += [(ret, 0, 0, _RET_ALLOW), deny]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


def install_seccomp(program: bytes) -> None:
    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    ulong = ctypes.c_ulong
    result = _libc.prctl(
        PR_SET_SECCOMP, ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ulong(0), ulong(0)
    )
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"seccomp: {os.strerror(errno)}")


# --------------------------------------------------------------------------- privileges
def _clear_capabilities() -> None:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    _call(_libc.capset, ctypes.byref(header), ctypes.byref(data), what="capset")


def _drop_privileges(mode: str, uid: int) -> None:
    if mode == "uid":
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to another uid: every capability is gone
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:  # pragma: no cover - would mean the drop did not happen
            os._exit(125)
    else:
        _clear_capabilities()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)


def _set_limits(limits: dict) -> None:
    def cap(which, value):
        value = int(value)
        resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_AS, limits["memory_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NOFILE, limits["open_files"])
    cap(resource.RLIMIT_FSIZE, limits["file_bytes"])
    cap(resource.RLIMIT_NPROC, limits["processes"])
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))


# --------------------------------------------------------------------------- one run
def _read_only_dev() -> None:
    """/dev of the sandbox is one tmpfs shared by every run of the server (writable in
    user-namespace mode): each run sees it read-only in its own mount namespace. Device nodes
    on a read-only mount still open for writing (/dev/null, /dev/zero).

    Flags the kernel locked on the mount (when the server's user namespace is nested below the
    one that mounted /dev, as with bwrap's --disable-userns) must be kept, or the remount fails.
    """
    kept = os.statvfs("/dev").f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC
    for st_flag, ms_flag in _ST_TO_MS.items():
        if kept & st_flag:
            flags |= ms_flag
    _call(_libc.mount, None, b"/dev", None, ctypes.c_ulong(flags), None, what="remount /dev")


# statvfs flags -> the mount flags that keep them (nodev and the atime behaviour)
_ST_TO_MS = {os.ST_NODEV: MS_NODEV, os.ST_NOATIME: 1024, os.ST_NODIRATIME: 2048, 4096: 1 << 21}


def _runner(mode: str, uid: int, limits: dict, program: bytes | None, setup_fd: int) -> None:
    """PID 1 of the run's namespace: private mounts, limits, drop privileges, run the student.

    A failure before the student's code runs is written to ``setup_fd`` (the monitor reports
    it on the control socket); that descriptor is closed before the student's code starts.
    """
    try:
        _read_only_dev()
        size = int(limits["tmp_bytes"])
        owner = f"uid={uid},gid={uid}" if mode == "uid" else ""
        for target in ("/tmp", "/dev/shm"):
            _mount_tmpfs(target, f"size={size},nr_inodes=4096,mode=0700,{owner}".rstrip(","))
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.setsid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _set_limits(limits)
        _drop_privileges(mode, uid)
        if program is not None:
            install_seccomp(program)
        os.chdir("/tmp")
        # a fresh interpreter would seed these from the OS; forked copies must not share a state
        random.seed()
        child.np.random.seed()
    except BaseException as exc:  # noqa: BLE001 - nothing of the student's has run yet
        message = f"{type(exc).__name__}: {exc}"[:SETUP_ERROR_CHARS]
        os.write(setup_fd, message.encode(errors="replace"))
        os._exit(126)
    os.close(setup_fd)  # from here on, everything this process writes is the student's
    child.run_with_fds(REQUEST_FD, EVENT_FD)
    os._exit(0)


def _monitor(message: dict, mode: str, program: bytes | None) -> None:
    """Still privileged: new namespaces for the run, then wait for its PID 1 and report."""
    status_w = STATUS_FD
    try:
        uid, limits = int(message["uid"]), dict(message["limits"])
        _call(
            _libc.unshare, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS, what="unshare"
        )
        _call(
            _libc.mount, None, b"/", None, ctypes.c_ulong(MS_REC | MS_PRIVATE), None, what="mount"
        )
        setup_r, setup_w = os.pipe()
        pid = os.fork()
    except BaseException as exc:  # noqa: BLE001
        os.write(status_w, f"error {exc}\n".encode())
        os._exit(1)
    if pid == 0:
        os.close(status_w)
        os.close(setup_r)
        _runner(mode, uid, limits, program, setup_w)
    os.close(setup_w)
    os.close(REQUEST_FD)
    os.close(EVENT_FD)
    os.write(status_w, f"pid {pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    setup_error = os.read(setup_r, SETUP_ERROR_CHARS * 4)  # the runner wrote it before exiting
    if setup_error:
        os.write(status_w, b"setup " + json.dumps(setup_error.decode(errors="replace")).encode())
        os.write(status_w, b"\n")
    os.write(status_w, f"status {os.waitstatus_to_exitcode(status)}\n".encode())
    os._exit(0)


class Server:
    def __init__(self, control: socket.socket, mode: str):
        self.control, self.mode = control, mode
        self.program = seccomp_program(platform.machine())
        self.monitor: int | None = None
        self.runner: int | None = None
        self.status_r: int | None = None
        self.status_buffer = b""

    def send(self, message: dict) -> None:
        self.control.send(json.dumps(message).encode())

    def serve(self) -> None:
        self.send({"hello": {"seccomp": self.program is not None, "mode": self.mode}})
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 4)
            except OSError:
                return
            if not data:
                return
            message = json.loads(data)
            if message.get("op") == "run":
                self.send(self.start(message, fds))
            elif message.get("op") == "end":
                for fd in fds:
                    os.close(fd)
                self.send(self.end(bool(message.get("kill")), float(message.get("grace", 0.5))))
            else:
                for fd in fds:
                    os.close(fd)
                self.send({"ok": False, "error": "unknown operation"})

    def _status_line(self, deadline: float | None) -> str | None:
        while b"\n" not in self.status_buffer:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.status_r], [], [], remaining)[0]:
                    return None
            chunk = os.read(self.status_r, 4096)
            if not chunk:
                return ""
            self.status_buffer += chunk
        line, self.status_buffer = self.status_buffer.split(b"\n", 1)
        return line.decode()

    def start(self, message: dict, fds: list[int]) -> dict:
        if self.monitor is not None:
            self.end(True, 0)
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return {"ok": False, "error": "expected two descriptors"}
        status_r, status_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                # request, events and status to fds 3, 4, 5; everything else closed
                high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (*fds, status_w)]
                for target, fd in enumerate(high, start=REQUEST_FD):
                    os.dup2(fd, target)
                os.closerange(STATUS_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
                _monitor(message, self.mode, self.program)
            finally:
                os._exit(1)
        for fd in (*fds, status_w):
            os.close(fd)
        self.monitor, self.status_r, self.status_buffer = pid, status_r, b""
        line = self._status_line(time.monotonic() + 10)
        if line and line.startswith("pid "):
            self.runner = int(line.split()[1])
            return {"ok": True}
        self.end(True, 0)
        return {"ok": False, "error": f"could not start the run ({line or 'no answer'})"}

    def _final_line(self, deadline: float | None, found: dict) -> str | None:
        """The monitor's last line (``status N``), noting a ``setup`` line before it."""
        while True:
            line = self._status_line(deadline)
            if line and line.startswith("setup "):
                found["setup_error"] = json.loads(line[len("setup ") :])
                continue
            return line

    def end(self, kill: bool, grace: float) -> dict:
        if self.monitor is None:
            return {"status": None, "killed": False, "setup_error": None}
        killed = False
        line = None
        found: dict = {"setup_error": None}
        if not kill:
            line = self._final_line(time.monotonic() + grace, found)
        if not line:
            if self.runner is not None:
                try:
                    os.kill(self.runner, signal.SIGKILL)
                    killed = True
                except ProcessLookupError:
                    pass
            line = self._final_line(None, found)
        os.waitpid(self.monitor, 0)
        os.close(self.status_r)
        self.monitor = self.runner = self.status_r = None
        status = int(line.split()[1]) if line and line.startswith("status ") else None
        return {"status": status, "killed": killed, **found}


def main() -> None:
    control_fd, mode = int(sys.argv[1]), sys.argv[2]
    _prctl(PR_SET_DUMPABLE, 0)  # nothing may ptrace or read the server's memory
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    control = socket.socket(fileno=control_fd)
    Server(control, mode).serve()


if __name__ == "__main__":
    # argv: control fd, mode, the folder holding numpy
    sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), sys.argv[3]]
    import child  # noqa: E402 - found next to this script inside the sandbox

    # warm up what every run needs, so forked children start ready
    child.np.random.default_rng(0).random(8)
    child.encode_array(child.np.zeros(3))
    main()
