"""Code that crashes, exits, loops, reads stdin, exhausts resources or floods output.

Each submission gets a result with the exact score, status (failed checks) and reason; correct
functions next to the hostile code keep their points.
"""

from __future__ import annotations

import pytest
from hostile_helpers import (  # noqa: F401 - real_sandbox is an autouse fixture
    ALL_CHECKS,
    CORRECT_BACKWARD,
    CORRECT_FORWARD,
    FAST,
    FORWARD_CELL,
    FULL,
    NAME_ME,
    answer_cell,
    failed,
    grade,
    processes_named,
    real_sandbox,
    reasons,
    submission,
)

from grader.runner import sandbox

# test mode is called by the test-mode check (2 cases) and by one case of dropout_backward
TEST_MODE_CHECKS = ["dropout_backward", "dropout_test_mode"]
WITHOUT_TEST_MODE = FULL - 1 - 1


def in_test_mode(statement: str) -> str:
    """The correct forward pass, doing ``statement`` whenever it is called in test mode."""
    return CORRECT_FORWARD.replace(
        '    if mode == "test":\n', f'    if mode == "test":\n        {statement}\n', 1
    )


def test_segfault_in_a_call_costs_only_that_call(tmp_path, reference):
    forward = "import ctypes\n" + in_test_mode("ctypes.string_at(0)")
    result = grade(submission(tmp_path, forward), reference)
    assert result.score == WITHOUT_TEST_MODE
    assert failed(result) == TEST_MODE_CHECKS
    assert reasons(result) == {"the process crashed with a segmentation fault (SIGSEGV)"}


def test_os_exit_in_a_cell(tmp_path, reference):
    forward = "import os\nos._exit(3)\n" + CORRECT_FORWARD
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (0, ALL_CHECKS)
    assert reasons(result) == {
        "the process exited with code 3 before it finished (os._exit or sys.exit?) "
        "while your cells ran"
    }


def test_sys_exit_in_a_cell_is_caught_and_the_functions_still_run(tmp_path, reference):
    forward = 'import sys\nsys.exit("bye")\n' + CORRECT_FORWARD
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (FULL, [])
    assert f"cell {FORWARD_CELL} raised SystemExit: bye" in result.notes


def test_sys_exit_inside_a_function(tmp_path, reference):
    backward = CORRECT_BACKWARD.replace("    mask, mode = cache\n", "    raise SystemExit(2)\n")
    result = grade(submission(tmp_path, backward=backward), reference)
    assert result.score == round(FULL - 2 - 1 / 3, 4)
    assert failed(result) == ["dropout_backward", "dropout_hidden_backward"]
    assert {r.split("\n")[0] for r in reasons(result)} == {"your code raised SystemExit: 2"}


def test_reading_stdin_never_blocks(tmp_path, reference):
    forward = "import os, sys\nDATA = sys.stdin.read() + os.read(0, 100).decode()\n"
    forward += CORRECT_FORWARD
    backward = CORRECT_BACKWARD.replace("    mask, mode = cache\n", '    input("dx? ")\n')
    result = grade(submission(tmp_path, forward, backward), reference)
    assert result.score == round(FULL - 2 - 1 / 3, 4)
    assert failed(result) == ["dropout_backward", "dropout_hidden_backward"]
    assert {r.split("\n")[0] for r in reasons(result)} == {
        "your code raised EOFError: EOF when reading a line"
    }
    assert result.seconds < 10


def test_cell_loop_that_ignores_sigint_and_sigterm(tmp_path, reference):
    forward = NAME_ME.format(name="hostile-loop") + (
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "while True:\n    pass\n" + CORRECT_FORWARD
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (0, ALL_CHECKS)
    assert reasons(result) == {"your cells did not finish within 3 s (an endless loop?)"}
    assert processes_named("hostile-loop") == []


@pytest.mark.slow
def test_loop_in_one_call_times_out_only_that_call(tmp_path, reference):
    forward = "import signal\n" + in_test_mode(
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n        while True: pass"
    )
    result = grade(submission(tmp_path, forward), reference)
    assert result.score == WITHOUT_TEST_MODE
    assert failed(result) == TEST_MODE_CHECKS
    assert reasons(result) == {"timed out after 2 s (an endless loop?)"}


def test_memory_bomb_in_a_call(tmp_path, reference):
    result = grade(submission(tmp_path, in_test_mode("np.ones(2**31)")), reference)
    assert result.score == WITHOUT_TEST_MODE
    assert failed(result) == TEST_MODE_CHECKS
    assert {r.split("\n")[0] for r in reasons(result)} == {
        "your code raised MemoryError: Unable to allocate 16.0 GiB for an array with shape "
        "(2147483648,) and data type float64"
    }


def test_memory_bomb_in_a_cell_stops_at_the_cap(tmp_path, reference):
    forward = (
        "hoard = []\n"
        "try:\n"
        "    while True:\n"
        "        hoard.append(np.empty(2**23))\n"
        "except MemoryError:\n"
        "    got = len(hoard) * 64\n"
        "    hoard.clear()\n"
        "    raise RuntimeError(f'at most 2048 MiB: {got <= 2048}')\n" + CORRECT_FORWARD
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (FULL, [])
    assert f"cell {FORWARD_CELL} raised RuntimeError: at most 2048 MiB: True" in result.notes


# the processes a run may have besides its runner: as root the runner is alone under its uid;
# in user-namespace mode bwrap, the fork server, the monitor and the runner share the count
ROOM_FOR_CHILDREN = FAST.for_child(sandbox.mode())["processes"] - (
    1 if sandbox.mode() == "uid" else 4
)


def test_fork_bomb_is_capped_and_cleaned_up(tmp_path, reference):
    forward = NAME_ME.format(name="hostile-parent") + (
        "import os, time\n"
        "children = []\n"
        "try:\n"
        "    while True:\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            _ctypes.CDLL(None).prctl(15, b'hostile-bomb', 0, 0, 0)\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "        children.append(pid)\n"
        "except OSError as exc:\n"
        "    raise RuntimeError(f'forked {len(children)}, then {exc!r}')\n" + CORRECT_FORWARD
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (FULL, [])
    # 32 processes and threads per run: the runner itself and 31 children
    assert (
        f"cell {FORWARD_CELL} raised RuntimeError: forked {ROOM_FOR_CHILDREN}, then "
        "BlockingIOError(11, 'Resource temporarily unavailable')"
    ) in result.notes
    assert processes_named("hostile-bomb") == processes_named("hostile-parent") == []


def test_thread_bomb_is_capped(tmp_path, reference):
    forward = (
        "import threading\n"
        "stop = threading.Event()\n"
        "threads = []\n"
        "try:\n"
        "    while True:\n"
        "        t = threading.Thread(target=stop.wait, daemon=True)\n"
        "        t.start()\n"
        "        threads.append(t)\n"
        "except RuntimeError as exc:\n"
        "    stop.set()\n"
        "    raise RuntimeError(f'started {len(threads)}, then {exc}')\n" + CORRECT_FORWARD
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (FULL, [])
    started = f"started {ROOM_FOR_CHILDREN}, then can't start new thread"
    assert f"cell {FORWARD_CELL} raised RuntimeError: {started}" in result.notes


def test_file_bombs_hit_the_file_size_inode_and_descriptor_caps(tmp_path, reference):
    forward = (
        "import os\n"
        "hit = []\n"
        "try:\n"
        "    with open('/tmp/big', 'wb') as f:\n"
        "        f.write(b'x' * 2**25)\n"
        "except OSError as exc:\n"
        "    hit.append(exc.strerror)\n"
        "os.remove('/tmp/big')\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        open(f'/tmp/f{n}', 'wb').close()\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    hit.append(exc.strerror)\n"
        "kept = []\n"
        "try:\n"
        "    while True:\n"
        "        kept.append(open('/dev/null'))\n"
        "except OSError as exc:\n"
        "    hit.append(exc.strerror)\n"
        "for f in kept:\n"
        "    f.close()\n"
        "raise RuntimeError(f'{hit}, {n} files')\n" + CORRECT_FORWARD
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result)) == (FULL, [])
    assert (
        f"cell {FORWARD_CELL} raised RuntimeError: ['File too large', 'No space left on device', "
        "'Too many open files'], 4095 files"
    ) in result.notes


def test_output_floods_cost_nothing(tmp_path, reference):
    forward = (
        "import os, sys\n"
        "print('x' * 50_000_000)\n"
        "os.write(1, b'y' * 10_000_000)\n"
        "os.write(2, b'z' * 10_000_000)\n"
        "sys.stderr.write('w' * 10_000_000)\n"
        + CORRECT_FORWARD.replace("    if mode", "    print('#' * 1_000_000)\n    if mode", 1)
    )
    result = grade(submission(tmp_path, forward), reference)
    assert (result.score, failed(result), result.notes) == (FULL, [], [])
