"""Attacks on the judges (trust issue, holes 6-9): each earns exactly what the check library says.

* Hole 6, in-place tampering: a backward pass (or a later call) rewrites what an earlier call
  returned. Values are copied in the child when the call that made them returns, so it cannot.
* Hole 7, structured or reused dropout masks: the statistical battery of
  :mod:`grader.checks.dropout` rejects them (its false-fail bound is in that module).
* Hole 8, memorised public cases: the batch grade runs every case on salted inputs, in a shuffled
  order, under opaque keys, so a notebook that looks the public fixtures up earns nothing there.
* Hole 9, ``bn_alt_matches_staged`` compares with the reference, not only with the other function.

Expected scores are computed from the check library (points and case counts), never typed in.
"""

from __future__ import annotations

import hashlib

import nbformat
import numpy as np
from hostile_helpers import (  # noqa: F401 - real_sandbox is an autouse fixture
    CORRECT_BACKWARD,
    CORRECT_FORWARD,
    FULL,
    failed,
    grade,
    real_sandbox,
    released,
    submission,
    write,
)
from kit_testing import ANSWERS
from make_sample_class import answer_functions, fill

from grader.checks import NOTEBOOKS, checks_for
from grader.checks.cases import batch_cases, load_fixtures, salt_from_environment

DROPOUT = "02_dropout"


def batch(check_id: str, reference, assignment: str = DROPOUT):
    """The cases of one check as the batch grade builds them (the course salt of these tests)."""
    (check,) = [c for c in checks_for(assignment) if c.id == check_id]
    return batch_cases(check, salt=salt_from_environment(), reference=reference)


def expected_score(assignment: str, failing: dict[str, int], reference) -> float:
    """The score when exactly ``failing[check]`` cases of each named check fail (the rest pass)."""
    total = 0.0
    for check in checks_for(assignment):
        n = len(batch(check.id, reference, assignment))
        total += round(check.points * (n - failing.get(check.id, 0)) / n, 4)
    return round(total, 4)


def case_count(check_id: str, reference, kind=None) -> int:
    """How many cases of a check there are (of one kind: a predicate on the case)."""
    return len(case_names(check_id, reference, kind))


def case_names(check_id: str, reference, kind=None, assignment: str = DROPOUT) -> list[str]:
    return [c.name for c in batch(check_id, reference, assignment) if kind is None or kind(c)]


def failed_cases(result) -> dict[str, list[str]]:
    """The names of the failed cases, by check."""
    return {
        c.check.id: [case.name for case in c.cases if not case.passed]
        for c in result.checks
        if not c.passed
    }


def is_train_backward(case) -> bool:
    return "dout" in case.inputs and case.params.get("mode") == "train"


def is_backward(case) -> bool:
    return "dout" in case.inputs


def is_fresh(case) -> bool:
    return case.params.get("property") == "fresh"


def typed(assignment: str, sources: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with raw source (module-level code allowed) in the answer cells."""
    return fill(released(assignment), {k: v.strip("\n") for k, v in sources.items()})


# --------------------------------------------------------------------------- hole 6: in place
FORWARD_KEEPING_OUT = """
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        out = x.copy()
        return out, {"out": out, "x": x, "mode": mode}
    rng = np.random.default_rng() if rng is None else rng
    out = x * (rng.random(x.shape) >= p_drop) / (1 - p_drop)
    return out, {"out": out, "x": x, "mode": mode}
"""

BACKWARD_REWRITING_OUT = """
def dropout_backward(dout, cache):
    cache["out"][...] = cache["x"]  # now out / x == 1 everywhere: "no unit was dropped"
    return dout
"""

BACKWARD_ZEROING_OUT = """
def dropout_backward(dout, cache):
    cache["out"][...] = 0.0  # now out / x == 0 everywhere: "every unit was dropped"
    return np.zeros_like(dout)
"""


def test_backward_that_rewrites_the_forward_output_in_place(tmp_path, reference):
    """The review's attack: 10/10 before. Every train-mode backward case fails now."""
    result = grade(submission(tmp_path, FORWARD_KEEPING_OUT, BACKWARD_REWRITING_OUT), reference)
    lost = {
        "dropout_backward": case_count("dropout_backward", reference, is_train_backward),
        "dropout_hidden_backward": case_count(
            "dropout_hidden_backward", reference, is_train_backward
        ),
    }
    assert (result.score, failed(result)) == (
        expected_score(DROPOUT, lost, reference),
        sorted(lost),
    )
    assert result.score < FULL


def test_backward_that_zeroes_the_forward_output_in_place(tmp_path, reference):
    """Variant: claim every unit was dropped and return dx = 0; test mode is caught too."""
    result = grade(submission(tmp_path, FORWARD_KEEPING_OUT, BACKWARD_ZEROING_OUT), reference)
    lost = {
        "dropout_backward": case_count("dropout_backward", reference, is_backward),
        "dropout_hidden_backward": case_count("dropout_hidden_backward", reference, is_backward),
    }
    assert (result.score, failed(result)) == (
        expected_score(DROPOUT, lost, reference),
        sorted(lost),
    )


FORWARD_REWRITING_ITS_LAST_OUTPUT = """
_last = {}


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), None
    rng = np.random.default_rng() if rng is None else rng
    key = x.shape
    if key not in _last:
        _last[key] = [(rng.random(x.shape) >= p_drop) / (1 - p_drop), None]
    mask, previous = _last[key]
    if previous is not None and previous[1] is rng:  # the same generator again: look fresh
        previous[0][...] = x * np.roll(mask, 1, axis=0)
    out = x * mask
    _last[key][1] = (out, rng)
    return out, mask
"""


def test_reused_mask_hidden_by_rewriting_the_earlier_output(tmp_path, reference):
    """Variant (a later *forward* call tampers): one mask per shape, the previous output rewritten
    so two calls look different. The earlier output was copied when it returned."""
    backward = (
        "def dropout_backward(dout, cache):\n    return dout if cache is None else dout * cache"
    )
    result = grade(submission(tmp_path, FORWARD_REWRITING_ITS_LAST_OUTPUT, backward), reference)
    lost = {
        "dropout_fresh_mask": case_count("dropout_fresh_mask", reference, is_fresh),
        "dropout_hidden_backward": case_count("dropout_hidden_backward", reference, is_fresh),
    }
    assert (result.score, failed(result)) == (
        expected_score(DROPOUT, lost, reference),
        sorted(lost),
    )
    assert failed_cases(result) == {
        check: case_names(check, reference, is_fresh) for check in sorted(lost)
    }


# --------------------------------------------------------------------------- hole 9: alt vs staged
BATCHNORM = "03_batchnorm"
BN_BACKWARD_CHECKS = (
    "bn_alt_matches_staged",
    "bn_backward",
    "bn_backward_alt",
    "bn_hidden_backward",
)


def bn_submission(tmp_path, **sources):
    """The correct sample answer of notebook 03 with some functions replaced by ``sources``."""
    functions = answer_functions(ANSWERS / BATCHNORM / "bashir_correct.py") | sources
    return write(tmp_path / f"{BATCHNORM}.ipynb", typed(BATCHNORM, functions))


def all_cases_fail(check_ids, reference, assignment) -> dict[str, int]:
    return {cid: len(batch(cid, reference, assignment)) for cid in check_ids}


ZEROS = """
def {name}(dout, cache):
    return np.zeros_like(dout), np.zeros(dout.shape[1]), np.zeros(dout.shape[1])
"""


def test_two_backward_stubs_returning_the_same_zeros(tmp_path, reference):
    """The review's free point: identical zeros 'agree'. Now every backward check fails."""
    path = bn_submission(
        tmp_path,
        batchnorm_backward=ZEROS.format(name="batchnorm_backward"),
        batchnorm_backward_alt=ZEROS.format(name="batchnorm_backward_alt"),
    )
    result = grade(path, reference)
    lost = all_cases_fail(BN_BACKWARD_CHECKS, reference, BATCHNORM)
    assert (result.score, failed(result)) == (
        expected_score(BATCHNORM, lost, reference),
        sorted(BN_BACKWARD_CHECKS),
    )


WITHOUT_MEAN_PATH = """
def batchnorm_backward(dout, cache):
    x_centered, std, x_norm, gamma, mode = cache
    dx_norm = dout * gamma
    dx = dx_norm / std - x_norm * (dx_norm * x_norm).mean(axis=0) / std
    return dx, (dout * x_norm).sum(axis=0), dout.sum(axis=0)
"""


def test_closed_form_aliased_to_a_wrong_staged_backward(tmp_path, reference):
    """Variant: ``batchnorm_backward_alt = batchnorm_backward`` with a staged pass that forgets the
    mean path. Agreement with itself earned the point before; now nothing of the backward does."""
    path = bn_submission(
        tmp_path,
        batchnorm_backward=WITHOUT_MEAN_PATH + "\n\nbatchnorm_backward_alt = batchnorm_backward\n",
        batchnorm_backward_alt="",
    )
    result = grade(path, reference)
    lost = all_cases_fail(BN_BACKWARD_CHECKS, reference, BATCHNORM)
    assert (result.score, failed(result)) == (
        expected_score(BATCHNORM, lost, reference),
        sorted(BN_BACKWARD_CHECKS),
    )


def test_closed_form_aliased_to_a_correct_staged_backward_cannot_be_told(tmp_path, reference):
    """The documented limit (see ``judge_consistency``): an alias of a *correct* staged pass returns
    the right numbers, so it earns what a correct closed form earns; only timing could tell."""
    staged = answer_functions(ANSWERS / BATCHNORM / "bashir_correct.py")["batchnorm_backward"]
    path = bn_submission(
        tmp_path,
        batchnorm_backward=staged + "\n\nbatchnorm_backward_alt = batchnorm_backward\n",
        batchnorm_backward_alt="",
    )
    result = grade(path, reference)
    assert (result.score, failed(result)) == (result.max_score, [])


# --------------------------------------------------------------------------- hole 7: masks
MASK_BACKWARD = """
def dropout_backward(dout, cache):
    return dout if cache is None else dout * cache
"""


def masked_forward(keep: str) -> str:
    """A forward pass whose kept units are ``keep`` (an expression in x, p_drop, rng)."""
    return f"""
def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), None
    rng = np.random.default_rng() if rng is None else rng
    n, d = x.shape
    scale = {keep} / (1 - p_drop)
    return x * scale, scale
"""


LATTICE = masked_forward(  # a fixed pattern, period 20 along each row, shifted by the generator
    "((np.arange(d) + 7 * np.arange(n)[:, None] + 10 * rng.integers(2)) % 20 >= round(20 * p_drop))"
)
ROWS_IN_PAIRS = masked_forward("np.repeat(rng.random(((n + 1) // 2, d)) >= p_drop, 2, axis=0)[:n]")
COLUMNS_IN_PAIRS = masked_forward(
    "np.repeat(rng.random((n, (d + 1) // 2)) >= p_drop, 2, axis=1)[:, :d]"
)
WHOLE_ROWS = masked_forward("np.repeat(rng.random((n, 1)) >= p_drop, d, axis=1)")

CACHED_MASK_ONE_FLIP = """
_masks = {}


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), None
    rng = np.random.default_rng() if rng is None else rng
    key = (x.shape, p_drop)
    if key not in _masks:
        _masks[key] = np.random.default_rng(0).random(x.shape) >= p_drop
    keep = _masks[key].copy()
    keep.flat[rng.integers(keep.size)] ^= True  # "a new mask": one unit differs
    scale = keep / (1 - p_drop)
    return x * scale, scale
"""

PERMUTED_ROWS_OF_THE_LAST_MASK = """
_masks = {}


def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x.copy(), None
    rng = np.random.default_rng() if rng is None else rng
    key = (x.shape, p_drop)
    if key not in _masks:
        _masks[key] = np.random.default_rng(0).random(x.shape) >= p_drop
    keep = _masks[key][rng.permutation(x.shape[0])]  # the same rows, in a new order
    scale = keep / (1 - p_drop)
    return x * scale, scale
"""


def same_lattice_shift_twice(case) -> bool:
    """Whether the lattice attack's two calls in a fresh-mask case draw the same shift."""
    if not is_fresh(case):
        return False
    rng = np.random.default_rng(case.plan[0]["value"]["rng"])
    return rng.integers(2) == rng.integers(2)


def is_random_train(case) -> bool:
    """A train-mode forward case with 0 < p_drop < 1 (where a mask can be structured)."""
    return "dout" not in case.inputs and 0 < case.params.get("p_drop", 0) < 1


def mask_failures(check_ids, kind, reference) -> dict[str, list[str]]:
    return {cid: case_names(cid, reference, kind) for cid in check_ids}


FORWARD_MASK_CHECKS = ("dropout_hidden_forward", "dropout_train_forward")
FRESH_CHECKS = ("dropout_fresh_mask", "dropout_hidden_backward")


def assert_charged(result, expected: dict[str, list[str]], reference) -> None:
    lost = {cid: len(names) for cid, names in expected.items()}
    assert (result.score, failed_cases(result)) == (
        expected_score(DROPOUT, lost, reference),
        expected,
    )
    assert result.score < FULL


def test_fixed_lattice_shifted_by_the_generator(tmp_path, reference):
    """The review's attack: right rate, right rows and columns, 10/10 before; the pairwise-row and
    neighbour tests reject it, and its two shifts are never independent across calls."""
    result = grade(submission(tmp_path, LATTICE, MASK_BACKWARD), reference)
    expected = mask_failures(FORWARD_MASK_CHECKS, is_random_train, reference)
    # a structured mask is charged by the forward checks; the fresh-mask check then asks only for
    # two different masks, which this one gives unless both calls draw the same shift
    expected |= mask_failures(FRESH_CHECKS, same_lattice_shift_twice, reference)
    assert_charged(result, {k: v for k, v in expected.items() if v}, reference)
    messages = " ".join(c.message for check in result.checks for c in check.cases)
    assert "pairwise-row agreement" in messages and "neighbour agreement" in messages


def test_one_cached_mask_with_a_single_unit_flipped(tmp_path, reference):
    """The review's attack: a different mask each call (by one unit), 10/10 before."""
    result = grade(submission(tmp_path, CACHED_MASK_ONE_FLIP, MASK_BACKWARD), reference)
    expected = mask_failures(FRESH_CHECKS, is_fresh, reference)
    # with p_drop = 0 the flipped unit is a dropped one, where nothing may be dropped
    expected["dropout_train_forward"] = case_names(
        "dropout_train_forward", reference, lambda c: c.params["p_drop"] == 0
    )
    assert_charged(result, dict(sorted(expected.items())), reference)
    fresh = [
        c
        for check in result.checks
        if check.check.id in FRESH_CHECKS
        for c in check.cases
        if not c.passed
    ]
    assert all("dropout.reused_mask" in c.diagnosis for c in fresh)
    assert all("agreement across calls" in c.message for c in fresh)


def test_rows_sharing_masks_in_pairs(tmp_path, reference):
    """The review's attack: rows 2k and 2k+1 share a mask (not *all* rows equal), 10/10 before."""
    result = grade(submission(tmp_path, ROWS_IN_PAIRS, MASK_BACKWARD), reference)
    assert_charged(
        result, mask_failures(FORWARD_MASK_CHECKS, is_random_train, reference), reference
    )


def test_columns_sharing_masks_in_pairs(tmp_path, reference):
    """Variant: features 2j and 2j+1 share a mask; only the neighbour test sees it."""
    result = grade(submission(tmp_path, COLUMNS_IN_PAIRS, MASK_BACKWARD), reference)
    assert_charged(
        result, mask_failures(FORWARD_MASK_CHECKS, is_random_train, reference), reference
    )
    messages = {c.message for check in result.checks for c in check.cases if not c.passed}
    assert all("neighbour agreement" in m for m in messages)


def test_whole_examples_dropped(tmp_path, reference):
    """Variant: a mask of shape (N, 1), dropping whole rows: the row drop rates reject it."""
    result = grade(submission(tmp_path, WHOLE_ROWS, MASK_BACKWARD), reference)
    assert_charged(
        result, mask_failures(FORWARD_MASK_CHECKS, is_random_train, reference), reference
    )
    messages = {c.message for check in result.checks for c in check.cases if not c.passed}
    assert all("row drop rates" in m for m in messages)


def test_the_last_mask_again_with_its_rows_permuted(tmp_path, reference):
    """Variant: every call reuses one mask per shape with its rows shuffled: each unit agrees
    across calls about as often as chance, but whole rows recur."""
    result = grade(submission(tmp_path, PERMUTED_ROWS_OF_THE_LAST_MASK, MASK_BACKWARD), reference)
    assert_charged(result, mask_failures(FRESH_CHECKS, is_fresh, reference), reference)
    messages = {c.message for check in result.checks for c in check.cases if not c.passed}
    assert all("row agreement across calls" in m for m in messages)


# --------------------------------------------------------------------------- hole 8: fixtures
def lookup_notebook(assignment: str, table: dict, sources: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with ``sources`` typed in and the memorised ``table`` defined in the
    first answer cell (as a student who copied the installed fixtures would)."""
    notebook = typed(assignment, sources)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            if any(f"def {name}(" in cell.source for name in sources):
                cell.source = f"import hashlib, sys\n_T = {table!r}\n\n" + cell.source
                break
    return notebook


def norms_table() -> dict:
    """(function, sha256 of the first array argument) -> the fixture's expected value."""
    table = {}
    for cases in load_fixtures("01_norms").values():
        for case in cases:
            function = case.plan[-1]["call"]
            first = case.inputs.get("W", case.inputs.get("W0"))
            value = case.expected.get("grads", case.expected.get(function))
            key = hashlib.sha256(np.ascontiguousarray(first).tobytes()).hexdigest()
            table[(function, key)] = (
                [np.asarray(v).tolist() for v in value] if isinstance(value, list) else float(value)
            )
    return table


NORMS_BY_ARGUMENT = {
    name: f"""
def {name}({args}):
    first = {first}
    found = _T.get(({name!r}, hashlib.sha256(np.ascontiguousarray(first).tobytes()).hexdigest()))
    if found is None:
        return {fallback}
    return {answer}
"""
    for name, args, first, fallback, answer in [
        ("l1_norm", "W", "W", "0.0", "found"),
        ("l2_norm", "W", "W", "0.0", "found"),
        ("l1_penalty", "weights, lam", "weights[0]", "0.0", "found"),
        ("l2_penalty", "weights, lam", "weights[0]", "0.0", "found"),
        (
            "l1_penalty_grad",
            "weights, lam",
            "weights[0]",
            "[np.zeros_like(w) for w in weights]",
            "[np.array(g) for g in found]",
        ),
        (
            "l2_penalty_grad",
            "weights, lam",
            "weights[0]",
            "[np.zeros_like(w) for w in weights]",
            "[np.array(g) for g in found]",
        ),
    ]
}


def test_memorised_public_norms_found_by_their_arguments(tmp_path, reference):
    """The review's attack (8/12 before): the shipped fixtures looked up by the arguments. It
    still fools its author's own self-check (the fixtures are public), and earns 0 in ``grade``."""
    path = write(
        tmp_path / "01_norms.ipynb", lookup_notebook("01_norms", norms_table(), NORMS_BY_ARGUMENT)
    )
    public = sum(c.points for c in checks_for("01_norms") if not c.hidden)
    selfcheck = grade(path, reference, include_hidden=False)
    assert (selfcheck.score, failed(selfcheck)) == (public, [])
    result = grade(path, reference)
    assert (result.score, failed(result)) == (0, sorted(c.id for c in checks_for("01_norms")))


def bn_table() -> dict:
    """Fixture key as the old grader sent it ("check/index") -> the expected values."""
    return {
        f"{check_id}/{i}": {name: np.asarray(v).tolist() for name, v in case.expected.items()}
        for check_id, cases in load_fixtures(BATCHNORM).items()
        for i, case in enumerate(cases)
    }


BN_BY_FRAME = {
    "batchnorm_forward": """
def _case_key():
    frame = sys._getframe(1)
    while frame is not None:  # up to the runner's frame that holds the case it is running
        case = frame.f_locals.get("case")
        if isinstance(case, dict) and "key" in case:
            return case["key"]
        frame = frame.f_back
    return None


def batchnorm_forward(x, gamma, beta, bn_param):
    key = _case_key()
    found = _T.get(key, {})
    for name in ("running_mean", "running_var"):
        if name in found:
            bn_param[name] = np.array(found[name])
    return (np.array(found["out"]) if "out" in found else np.zeros_like(x)), key
""",
    "batchnorm_backward": """
def batchnorm_backward(dout, cache):
    found = _T.get(cache, {})
    if "dx" not in found:
        return np.zeros_like(dout), np.zeros(dout.shape[1]), np.zeros(dout.shape[1])
    return np.array(found["dx"]), np.array(found["dgamma"]), np.array(found["dbeta"])


batchnorm_backward_alt = batchnorm_backward
""",
    "batchnorm_backward_alt": "",
}


def test_memorised_public_batchnorm_found_from_the_calling_frame(tmp_path, reference):
    """The review's attack (14/18 before): the case key read from the runner's frame, the
    fixture's expected values returned. Keys are random per run now: nothing is found."""
    path = write(
        tmp_path / f"{BATCHNORM}.ipynb", lookup_notebook(BATCHNORM, bn_table(), BN_BY_FRAME)
    )
    result = grade(path, reference)
    assert (result.score, failed(result)) == (0, sorted(c.id for c in checks_for(BATCHNORM)))


def test_memorised_public_batchnorm_found_by_its_arguments(tmp_path, reference):
    """Variant: the fixture found from the argument x (the self-check still pays, grade not)."""
    table = {
        hashlib.sha256(
            np.ascontiguousarray(case.inputs.get("x", case.inputs.get("x0"))).tobytes()
        ).hexdigest(): {name: np.asarray(v).tolist() for name, v in case.expected.items()}
        for check_id, cases in load_fixtures(BATCHNORM).items()
        if check_id in ("bn_forward_train", "bn_test_mode")
        for case in cases
    }
    forward = """
def batchnorm_forward(x, gamma, beta, bn_param):
    found = _T.get(hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(), {})
    return (np.array(found["out"]) if "out" in found else np.zeros_like(x)), None
"""
    path = write(
        tmp_path / f"{BATCHNORM}.ipynb",
        lookup_notebook(BATCHNORM, table, {"batchnorm_forward": forward}),
    )
    selfcheck = grade(path, reference, include_hidden=False)
    assert "bn_forward_train" not in failed(selfcheck)  # every one of its fixtures was found
    result = grade(path, reference)
    assert (result.score, failed(result)) == (0, sorted(c.id for c in checks_for(BATCHNORM)))


def test_no_batch_case_reuses_a_shipped_input(reference):
    """The cause of hole 8, checked for every public case: in the batch grade no input array of
    any case equals one in the shipped fixtures (the slides' matrix too is shuffled and scaled)."""
    shipped = [
        case.inputs[name]
        for notebook in NOTEBOOKS
        for cases in load_fixtures(notebook).values()
        for case in cases
        for name in case.inputs
    ]
    digests = {hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in shipped}
    for notebook in NOTEBOOKS:
        for check in checks_for(notebook):
            for case in batch_cases(check, salt=salt_from_environment(), reference=reference):
                for name, array in case.inputs.items():
                    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
                    assert digest not in digests or array.size <= 1, (check.id, case.name, name)
