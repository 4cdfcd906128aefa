"""Attacks on what runs share: /dev, /tmp and /dev/shm of the fork server's sandbox.

The issue's hole (10) shows only when the grader is not root (isolation ``bwrap+userns``):
there /dev belonged to the sandbox's user and every run could write to it. Run this module
as an unprivileged user too (see docs/grading-limits.md), where it failed before.
"""

from __future__ import annotations

import ast
import errno

from hostile_helpers import (  # noqa: F401 - real_sandbox is an autouse fixture
    CORRECT_FORWARD,
    FORWARD_CELL,
    FULL,
    answer_cell,
    failed,
    grade,
    real_sandbox,
    submission,
)

from grader.runner import sandbox
from grader.runner.process import DEFAULT_LIMITS, run_in_child

READ_ONLY = "[Errno 30] Read-only file system"


def printed(source: str):
    """Run one cell in the sandbox; the value its last line printed."""
    outcome = run_in_child([{"index": 0, "source": source}], [], DEFAULT_LIMITS)
    assert "fatal" not in outcome.ready and not outcome.ready["cell_errors"], outcome.ready
    assert outcome.isolation.startswith("bwrap+")
    return ast.literal_eval(outcome.ready["stdout"].strip().splitlines()[-1])


def test_a_file_left_in_dev_for_the_next_submission(tmp_path, reference):
    """The issue's attack: one submission writes /dev/planted, the next (same fork server)
    reads it. Now /dev is read-only in every run: the write fails, there is nothing to read."""
    shared = sandbox.pool()
    server = shared.acquire()
    shared.release(server)
    planter = "open('/dev/planted', 'w').write('for the next one')\n" + CORRECT_FORWARD
    reader = (
        "import os\nraise RuntimeError(f\"left for me: {os.path.exists('/dev/planted')}\")\n"
    ) + CORRECT_FORWARD
    first = grade(submission(tmp_path, planter, student="first"), reference)
    second = grade(submission(tmp_path, reader, student="second"), reference)
    assert (first.score, failed(first), second.score, failed(second)) == (FULL, [], FULL, [])
    assert f"cell {FORWARD_CELL} raised OSError: {READ_ONLY}: '/dev/planted'" in first.notes
    assert f"cell {FORWARD_CELL} raised RuntimeError: left for me: False" in second.notes
    assert server.alive() and server in shared.idle


def test_two_gib_written_to_dev_outside_every_memory_limit():
    """The issue's attack: 2 GiB in /dev stayed for the whole batch. Now not one byte lands."""
    assert (
        printed(
            "try:\n"
            "    with open('/dev/hoard', 'wb') as f:\n"
            "        for _ in range(2048):\n"
            "            f.write(b'x' * 2**20)\n"
            "    print(repr('written'))\n"
            "except OSError as exc:\n"
            "    print(repr(str(exc)))\n"
        )
        == f"{READ_ONLY}: '/dev/hoard'"
    )


def test_variant_nothing_in_the_whole_tree_is_writable_but_the_runs_own_tmp():
    """Variant: every folder a run can see, tried by creating a file, a folder and a link in
    it: only its own /tmp and /dev/shm take them; the device nodes still work."""
    writable = printed(
        "import os\n"
        "found = []\n"
        "for top, folders, _ in os.walk('/'):\n"
        "    for how in (lambda p: open(p, 'x').close(), os.mkdir, lambda p: os.symlink('/', p)):\n"
        "        try:\n"
        "            how(os.path.join(top, '.probe'))\n"
        "            found.append(top)\n"
        "            break\n"
        "        except OSError:\n"
        "            pass\n"
        "with open('/dev/null', 'w') as null:\n"
        "    null.write('still works')\n"
        "assert len(open('/dev/urandom', 'rb').read(8)) == 8\n"
        "print(sorted(set(found)))\n"
    )
    assert writable == ["/dev/shm", "/tmp"]


def test_variant_tmp_and_dev_shm_are_private_and_bounded_in_both_modes():
    """Variant: what one run writes in /tmp or /dev/shm the next one never sees, and neither
    takes more than the limit (``Limits.tmp_bytes``; files of ``file_bytes`` at most)."""
    piece = DEFAULT_LIMITS.file_bytes - 2**20
    pieces = DEFAULT_LIMITS.tmp_bytes // piece + 2
    first = printed(
        "import os\n"
        "full = []\n"
        "for folder in ('/tmp', '/dev/shm'):\n"
        "    open(folder + '/planted', 'w').write('for the next one')\n"
        "    try:\n"
        f"        for i in range({pieces}):\n"
        f"            open(f'{{folder}}/big{{i}}', 'wb').write(b'x' * {piece})\n"
        "    except OSError as exc:\n"
        "        full.append(exc.errno)\n"
        "print(full)\n"
    )
    assert first == [errno.ENOSPC, errno.ENOSPC]
    assert printed("import os\nprint(os.listdir('/tmp') + os.listdir('/dev/shm'))") == []
