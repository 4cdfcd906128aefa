"""Attacks on the grader through the child's channel: its memory, its control events, restarts.

Student code runs in the same process as the child, so it can write anything on the channel
the child answers on. Every expected outcome is computed: by grading a twin submission that
differs only in the attack, or from the channel's own caps.
"""

from __future__ import annotations

import json

from hostile_helpers import (  # noqa: F401 - real_sandbox is an autouse fixture
    CORRECT_FORWARD,
    FAST,
    FORWARD_CELL,
    FULL,
    UNSCALED_FORWARD,
    answer_cell,
    failed,
    grade,
    real_sandbox,
    submission,
)

from grader.grading import Target
from grader.runner import channel, sandbox
from grader.runner.process import Limits
from grader.store import Context, Store, grade_with_store, result_to_dict

CUT = "more characters cut by the grader"
INTERFERED = channel.INTERFERED
# what a result may hold of one text from the child: its cap plus the marker
TEXT_BOUND = channel.TRACE_CHARS + channel.MESSAGE_CHARS + 200

WRITE_TO_EVERY_DESCRIPTOR = (
    "import os\n"
    "def _send(lines):\n"
    "    data = ''.join(line + '\\n' for line in lines).encode()\n"
    "    for fd in range(3, 64):\n"
    "        try:\n"
    "            os.write(fd, data)\n"
    "        except OSError:\n"
    "            pass\n"
)


def texts(result) -> list[str]:
    """Every text of a result that came (in part) from the student's process."""
    found = list(result.notes) + [result.error]
    for check in result.checks:
        found.append(check.error)
        for case in check.cases:
            found += [case.message, *case.notes]
    return found


def size(result) -> int:
    return len(json.dumps(result_to_dict(result)))


def all_messages(result) -> set[str]:
    return {case.message for check in result.checks for case in check.cases}


# --------------------------------------------------------------------------- hole 3: memory
HUGE_CLASS = "Huge = type('N' * (40 * 2**20), (), {})\n"
SHORT_CLASS = "Huge = type('N', (), {})\n"


def test_functions_returning_objects_whose_class_name_is_40_mib_long(tmp_path, reference):
    """The issue's attack: 69 s, 2.5 GB of grader RSS and a 629 MB results.json before. Now
    each name keeps 200 characters with a marker, and the result is the size of an honest one."""
    forward = "def dropout_forward(x, p_drop, mode='train', rng=None):\n    return Huge()\n"
    backward = "def dropout_backward(dout, cache):\n    return Huge()\n"
    attacked = grade(submission(tmp_path / "a", HUGE_CLASS + forward, backward), reference)
    twin = grade(submission(tmp_path / "b", SHORT_CLASS + forward, backward), reference)
    assert (attacked.score, failed(attacked)) == (twin.score, failed(twin))
    assert attacked.score == 0 and attacked.checks
    assert any(CUT in message for message in all_messages(attacked))
    assert max(map(len, texts(attacked))) <= TEXT_BOUND
    assert size(attacked) < size(twin) + 40 * channel.MESSAGE_CHARS


def test_variant_warning_categories_with_40_mib_names(tmp_path, reference):
    """Variant: the name travels as a warning's category, twice, from the cells (warnings
    never cost points, so the score is the honest one)."""
    cell = (
        "import warnings\n"
        "Loud = type('W' * (40 * 2**20), (UserWarning,), {})\n"
        "warnings.warn('from a cell', Loud)\n"
        "warnings.warn('again', Loud)\n"
    )
    forward = CORRECT_FORWARD
    attacked = grade(submission(tmp_path / "a", cell + forward), reference)
    twin = grade(submission(tmp_path / "b", cell.replace("40 * 2**20", "1") + forward), reference)
    assert (attacked.score, failed(attacked)) == (twin.score, failed(twin)) == (FULL, [])
    assert any(CUT in note for note in attacked.notes)
    assert max(map(len, texts(attacked))) <= TEXT_BOUND
    assert size(attacked) < size(twin) + 40 * channel.MESSAGE_CHARS


def test_long_exception_names_in_cells_and_in_calls(tmp_path, reference):
    """Exception names reach the notes (cell errors) and the case messages: both are cut."""
    cell = (
        "Boom = type('E' * (20 * 2**20), (Exception,), {})\n"
        "for _ in range(40):\n"
        "    exec('raise Boom(\"x\" * 2**20)', {'Boom': Boom})\n"
    )
    forward = (
        "def dropout_forward(x, p_drop, mode='train', rng=None):\n    raise Boom('y' * 2**22)\n"
    )
    attacked = grade(submission(tmp_path / "a", cell + forward), reference)
    twin = grade(submission(tmp_path / "b", cell.replace("20 * 2**20", "1") + forward), reference)
    assert (attacked.score, failed(attacked)) == (twin.score, failed(twin))
    assert attacked.score < FULL
    assert max(map(len, texts(attacked))) <= TEXT_BOUND
    # the child stops a cell after 20 errors; a note says which type each raised, cut
    cell_notes = [n for n in attacked.notes if n.startswith(f"cell {FORWARD_CELL} raised")]
    assert cell_notes and all(CUT in n for n in cell_notes)
    assert size(attacked) < size(twin) + 100 * channel.MESSAGE_CHARS


def test_many_notes_in_a_forged_ready_event(tmp_path, reference):
    """A forged ``ready`` with 3,000 cell errors and 5,000 warnings (valid in form): the grader
    keeps 20 errors and 10 warnings, cut; then the genuine ``ready`` arrives where a case's
    result belongs, which ends the run as interference."""
    cell = WRITE_TO_EVERY_DESCRIPTOR + (
        "import json\n"
        f"error = {{'cell': {FORWARD_CELL}, 'type': 'T' * 3000, 'message': 'm' * 10_000, "
        "'trace': ''}\n"
        "_send([json.dumps({'event': 'ready', 'cell_errors': [error] * 3000, "
        "'stdout': 's' * 2**20, "
        "'warnings': [f'UserWarning: {i}' + 'w' * 1000 for i in range(5000)]})])\n"
    )
    result = grade(submission(tmp_path, cell + CORRECT_FORWARD), reference)
    cell_notes = [n for n in result.notes if n.startswith(f"cell {FORWARD_CELL} raised")]
    warned = [n for n in result.notes if n.startswith("your cells warned")]
    assert len(cell_notes) == channel.MAX_CELL_ERRORS
    assert len(warned) == channel.MAX_WARNINGS + 1  # and one saying how many were cut
    assert max(map(len, texts(result))) <= TEXT_BOUND
    why = f"{INTERFERED}: it sent something that is not a case's result"
    assert all_messages(result) == {why} and result.score == 0
    assert not result.grader_failure


def test_variant_a_flood_of_results_larger_than_the_cap_costs_only_that_case(tmp_path, reference):
    """Variant: a genuine-looking result bigger than one event may be (a list of 2 arrays of
    the child's largest size) fails its case with the cap's reason; the run restarts."""
    forward = CORRECT_FORWARD.replace(
        "    if mode",
        "    if p_drop == 0.3:\n        return [np.zeros(2**22)] * 2, None\n    if mode",
        1,
    )
    slow = Limits(cells_seconds=5.0, case_seconds=10.0, total_seconds=60.0)  # 86 MB to move
    result = grade(submission(tmp_path, forward), reference, limits=slow)
    capped = {m for m in all_messages(result) if "results are capped" in m}
    assert capped and not result.grader_failure
    assert max(map(len, texts(result))) <= TEXT_BOUND


# --------------------------------------------------------------------------- hole 4: forged events
def _stored(tmp_path, path, reference):
    store = Store(tmp_path / "store")
    context = Context(salt="a course salt", reference=reference, limits=FAST)
    (graded,) = grade_with_store([Target(path)], store=store, context=context, progress=False)
    return graded.result, store


def test_a_forged_sandbox_error_costs_only_the_forger_and_is_stored(tmp_path, reference):
    """The issue's attack: a cell writes ``sandbox_error`` to the result channel. Before: the
    submission became "unknown, 0/0, no tests", the batch exited 1, the fork server was thrown
    away and nothing was stored. Now the child's channel cannot carry that event at all."""
    shared = sandbox.pool()
    server = shared.acquire()
    shared.release(server)
    forged = {"event": "sandbox_error", "message": "the grader is broken: give everyone 10/10"}
    cell = WRITE_TO_EVERY_DESCRIPTOR + f"_send([{json.dumps(forged)!r}])\n"
    path = submission(tmp_path, cell + CORRECT_FORWARD)
    result, store = _stored(tmp_path, path, reference)
    why = f"{INTERFERED}: while the cells ran, it sent something that is not a result"
    assert result.assignment == "02_dropout" and result.max_score == FULL
    assert (result.score, all_messages(result), result.grader_failure) == (0, {why}, False)
    assert why in result.notes
    assert len(store.files()) == 1  # stored: a re-run does not grade it again
    assert server.alive() and server in shared.idle  # the fork server was kept


def test_a_forged_ready_with_cell_errors_that_are_not_objects(tmp_path, reference):
    """The issue's attack: ``cell_errors: ["x"]`` raised a TypeError in ``_grade_loaded``."""
    forged = {"event": "ready", "cell_errors": ["x"], "stdout": "", "warnings": []}
    cell = WRITE_TO_EVERY_DESCRIPTOR + f"_send([{json.dumps(forged)!r}])\n"
    result, store = _stored(tmp_path, submission(tmp_path, cell + CORRECT_FORWARD), reference)
    why = f"{INTERFERED}: an error that is not an object"
    assert (result.score, all_messages(result), result.grader_failure) == (0, {why}, False)
    assert len(store.files()) == 1


def test_variant_forged_control_fields_and_results_for_other_cases(tmp_path, reference):
    """Variants: a ``ready`` carrying the parent's own ``fatal`` field; a genuine-looking
    ``case`` event sent ahead for a case that is not running yet."""
    forged = {"event": "ready", "cell_errors": [], "stdout": "", "warnings": [], "fatal": "x"}
    cell = WRITE_TO_EVERY_DESCRIPTOR + f"_send([{json.dumps(forged)!r}])\n"
    result = grade(submission(tmp_path / "a", cell + CORRECT_FORWARD), reference)
    assert all_messages(result) == {f"{INTERFERED}: a ready event with unexpected fields"}
    ahead = {"event": "case", "key": "dropout_hidden_forward/0", "outputs": {}, "error": None}
    forward = CORRECT_FORWARD.replace(
        "    if mode", f"    _send([{json.dumps(ahead)!r}])\n    if mode", 1
    )
    result = grade(submission(tmp_path / "b", WRITE_TO_EVERY_DESCRIPTOR + forward), reference)
    why = f"{INTERFERED}: a result for another case than the one running"
    assert all_messages(result) == {why} and result.score == 0
    assert not result.grader_failure


def test_cells_that_run_out_of_time_again_after_a_restart(tmp_path, reference):
    """Found while automating: a case times out, the child restarts, and its cells then run
    into the submission's total time. Before: "grader failure: KeyError('fatal')" (the first
    attempt's ``ready`` was read). Now each case has its own reason."""
    limits = Limits(cells_seconds=4.0, case_seconds=2.0, total_seconds=5.0)
    cell = "import time\ntime.sleep(2)\n"
    forward = "def dropout_forward(x, p_drop, mode='train', rng=None):\n    while True: pass\n"
    path = submission(tmp_path, cell + forward)
    result = grade(path, reference, limits=limits)
    # the case order is secret (shuffled per run): whichever case ran first timed out
    messages = sorted(case.message for check in result.checks for case in check.cases)
    timed_out = "timed out after 2 s (an endless loop?)"
    assert messages.count(timed_out) == 1
    assert set(messages) - {timed_out} == {"not run: the submission used its 5 s"}
    assert (result.score, result.grader_failure, result.error) == (0, False, "")


def test_variant_cells_out_of_time_after_a_crash(tmp_path, reference):
    """Variant: the first case ends the process (``os._exit``) instead of looping."""
    limits = Limits(cells_seconds=4.0, case_seconds=2.0, total_seconds=4.0)
    cell = "import os, time\ntime.sleep(2.5)\n"
    forward = UNSCALED_FORWARD.replace("    if mode", "    os._exit(3)\n    if mode", 1)
    result = grade(submission(tmp_path, cell + forward), reference, limits=limits)
    messages = [case.message for check in result.checks for case in check.cases]
    crashed = [m for m in messages if m.startswith("the process exited with code 3")]
    assert len(crashed) == 1  # whichever case ran first (the order is secret)
    assert set(messages) - set(crashed) == {"not run: the submission used its 4 s"}
    assert (result.score, result.grader_failure) == (0, False)
