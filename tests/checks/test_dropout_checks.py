"""The dropout judges: fair to every correct way of sampling, sharp on structured or reused masks.

* Fair: correct samplers (``>=``, ``>``, binomial, ``random() <``, float32 uniforms, a choice of
  0 and 1) pass every case of the public fixtures and of the batch grade over many salts; the
  empirical false-fail count is asserted to be 0 (the stated bound is 1e-10 per case).
* Sharp: structured masks (a lattice, rows or columns in pairs, whole rows) and reused ones (one
  unit flipped, rows permuted) fail on every salt.
* The bounds stated in ``grader/checks/dropout.py`` are recounted from the builders.
* Degenerate pairs (issue 10): an all-zeros forward with dx = 0 and an identity forward with
  dx = dout earn no backward case (the gate); a forward scaled at test time with dx = dout loses
  no backward point, and a backward exact for a catalogued forward mistake is carried forward
  (both through the real runner too, with the rule on and off).
"""

from __future__ import annotations

import numpy as np
import pytest
from kit_testing import every_case, write_submission

from grader.checks import checks_for, dropout, mask_stats
from grader.checks.cases import batch_cases
from grader.grading import Target, grade_notebook
from grader.runner.child import run_case
from grader.runner.judging import judge_event, wire_case

NOTEBOOK = "02_dropout"
SALTS = [f"salt-{i}" for i in range(12)]
MANY_SALTS = [f"salt-{i}" for i in range(100)]  # the slow runs that measure false fails


def _sampler(draw):
    def forward(x, p_drop, mode="train", rng=None):
        if mode == "test":
            return x.copy(), None
        rng = np.random.default_rng() if rng is None else rng
        scale = draw(rng, x.shape, p_drop) / (1 - p_drop)
        return x * scale, scale

    return forward


CORRECT = {
    ">=": lambda rng, shape, p: rng.random(shape) >= p,
    ">": lambda rng, shape, p: rng.random(shape) > p,
    "binomial": lambda rng, shape, p: rng.binomial(1, 1 - p, size=shape),
    "random() <": lambda rng, shape, p: rng.random(shape) < 1 - p,
    "float32": lambda rng, shape, p: rng.random(shape, dtype=np.float32) >= np.float32(p),
    "choice": lambda rng, shape, p: rng.choice([0.0, 1.0], size=shape, p=[p, 1 - p]),
}


def _keep(rng, shape, p):
    return rng.random(shape) >= p


def _lattice(rng, shape, p):
    n, d = shape
    shift = 10 * rng.integers(2)
    return (np.arange(d) + 7 * np.arange(n)[:, None] + shift) % 20 >= round(20 * p)


def _rows_in_pairs(rng, shape, p):
    n, d = shape
    return np.repeat(rng.random(((n + 1) // 2, d)) >= p, 2, axis=0)[:n]


def _columns_in_pairs(rng, shape, p):
    n, d = shape
    return np.repeat(rng.random((n, (d + 1) // 2)) >= p, 2, axis=1)[:, :d]


def _whole_rows(rng, shape, p):
    return np.repeat(rng.random((shape[0], 1)) >= p, shape[1], axis=1)


def _one_flip(rng, shape, p):
    keep = np.random.default_rng(0).random(shape) >= p
    keep.flat[rng.integers(keep.size)] ^= True
    return keep


def _permuted_rows(rng, shape, p):
    return (np.random.default_rng(0).random(shape) >= p)[rng.permutation(shape[0])]


def _backward(dout, cache):
    return dout if cache is None else dout * cache


def namespace(forward, backward=_backward) -> dict:
    return {"np": np, "dropout_forward": forward, "dropout_backward": backward}


def judged(ns, salts=SALTS) -> list[tuple]:
    """(check, case, result) over the public fixtures and the batch cases of every salt."""
    out = []
    for check, case in every_case(NOTEBOOK, None, salts):
        event = run_case(
            ns, wire_case("k", case), {k: v.copy() for k, v in case.inputs.items()}, 5000
        )
        out.append((check, case, judge_event(check, case, event)))
    return out


def _false_fails(name: str, salts) -> list:
    results = judged(namespace(_sampler(CORRECT[name])), salts)
    assert len(results) == 9 + 15 * len(salts)  # 9 public fixtures; 15 batch cases per salt
    return [(c.id, case.name, r.message) for c, case, r in results if not r.passed]


@pytest.mark.parametrize("name", CORRECT)
def test_correct_samplers_never_fail(name):
    assert _false_fails(name, SALTS) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", CORRECT)
def test_correct_samplers_never_fail_on_many_salts(name):
    """The empirical false-fail count: 0 of 1509 cases per sampler (9 + 15 x 100 salts)."""
    assert _false_fails(name, MANY_SALTS) == []


def _battery_false_fails(pairs: int) -> int:
    rng = np.random.default_rng(2026)
    fails = 0
    for n, d, p in [(100, 300, 0.3), (80, 250, 0.65), (60, 150, 0.2), (60, 180, 0.1)]:
        for _ in range(pairs // 4):
            first, second = rng.random((n, d)) >= p, rng.random((n, d)) >= p
            fails += bool(mask_stats.one_call(first, p, dropout.FALSE_FAIL))
            fails += bool(mask_stats.across_calls(first, second, p, dropout.FALSE_FAIL))
    return fails


def test_the_battery_never_fails_independent_masks_at_the_case_sizes():
    assert _battery_false_fails(200) == 0


@pytest.mark.slow
def test_the_battery_never_fails_many_independent_masks():
    """Straight at the battery: 4000 pairs of independent masks at the cases' sizes and rates."""
    assert _battery_false_fails(4000) == 0


STRUCTURED = {
    "lattice shifted by the rng": _lattice,
    "rows in pairs": _rows_in_pairs,
    "columns in pairs": _columns_in_pairs,
    "whole rows": _whole_rows,
}
REUSED = {
    "one cached mask, one unit flipped": _one_flip,
    "rows of one mask permuted": _permuted_rows,
}
FORWARD_CHECKS = {"dropout_train_forward", "dropout_hidden_forward"}


@pytest.mark.parametrize("name", STRUCTURED)
def test_structured_masks_fail_every_random_forward_case(name):
    results = judged(namespace(_sampler(STRUCTURED[name])), SALTS[:10])
    random = [r for c, case, r in results if c.id in FORWARD_CHECKS and 0 < case.params["p_drop"]]
    assert random and not any(r.passed for r in random)
    assert all("this battery fails a correct answer with probability" in r.message for r in random)


@pytest.mark.parametrize("name", REUSED)
def test_reused_masks_fail_every_fresh_mask_case(name):
    results = judged(namespace(_sampler(REUSED[name])), SALTS[:10])
    fresh = [r for _, case, r in results if case.params.get("property") == "fresh"]
    seeded = [r for _, case, r in results if case.params.get("property") == "seeded"]
    assert fresh and not any(r.passed for r in fresh)
    assert all("dropout.reused_mask" in r.diagnosis for r in fresh)
    assert all(r.passed for r in seeded)  # the same generator seed still gives the same mask


def _mode(case) -> str:
    return next(
        step["kwargs"]["mode"] for step in case.plan if step.get("call") == "dropout_forward"
    )


def test_the_stated_bounds_are_what_the_builders_make():
    """FALSE_FAIL per statistical case, as the module docstring states check by check: every
    check at most 1e-9, the whole notebook 1e-9 (the test-mode backward case's gate runs the
    train-mode forward)."""

    def statistical(case) -> bool:
        if _mode(case) == "test" or case.params.get("property") == "seeded":
            return False  # exact: out == x, dx == dout, the same seed gives the same mask
        if "dout" in case.inputs or case.params.get("property") == "fresh":
            return True  # the gate of a train-mode backward; the two-call battery
        return 0 < case.params["p_drop"] < 1  # the one-call battery (p_drop = 0 is exact)

    for salt in SALTS[:3]:
        bounds = {
            check.id: dropout.FALSE_FAIL
            * sum(map(statistical, batch_cases(check, salt=salt, reference=None)))
            for check in checks_for(NOTEBOOK)
        }
        assert bounds == pytest.approx(
            {
                "dropout_test_mode": 0,
                "dropout_train_forward": 2e-10,
                "dropout_backward": 2e-10,  # the gates of both its cases
                "dropout_fresh_mask": 1e-10,
                "dropout_hidden_forward": 3e-10,
                "dropout_hidden_backward": 2e-10,
            },
            abs=1e-15,
        )
        assert max(bounds.values()) <= 1e-9 and sum(bounds.values()) <= 1e-9 + 1e-15


DEGENERATE = {
    "all zeros, dx = 0": (
        lambda x, p_drop, mode="train", rng=None: (np.zeros_like(x), None),
        lambda dout, cache: np.zeros_like(dout),
    ),
    "identity, dx = dout": (
        lambda x, p_drop, mode="train", rng=None: (x.copy(), None),
        lambda dout, cache: dout,
    ),
}


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_forward_backward_pairs_earn_no_backward_case(name):
    """The gate: not one backward case, train or test mode (the test-mode case runs the
    train-mode forward too), is earned, with or without errors carried forward."""
    results = judged(namespace(*DEGENERATE[name]), SALTS[:5])
    backward = [r for _, case, r in results if "dout" in case.inputs]
    assert backward and not any(r.earned(True) for r in backward)
    assert all("not a dropout here" in r.message for r in backward)


CATALOGUED_FORWARDS = {  # forward mistake -> (forward, the check that charges it)
    "no scaling": (
        _sampler(lambda rng, shape, p: (rng.random(shape) >= p) * (1 - p)),
        "dropout_train_forward",
    ),
    "keep prob": (
        _sampler(lambda rng, shape, p: (rng.random(shape) < p) * (1 - p) / p),
        "dropout_train_forward",
    ),
}


def test_catalogued_forward_mistakes_keep_their_consistent_backward():
    """Errors carried forward for the catalogued forwards: no scaling and the keep-probability
    confusion are charged by the forward checks; a backward exact for them keeps its points,
    marked carried forward (lost when a course turns the rule off), naming the charging check.
    A shared mask scales right: its backward is simply right."""
    for name, (forward, charged) in CATALOGUED_FORWARDS.items():
        results = judged(namespace(forward), SALTS[:5])
        train = [r for _, case, r in results if case.params.get("mode") == "train"]
        assert train and all(r.carried_forward and not r.passed for r in train), name
        assert all(r.earned(True) and not r.earned(False) for r in train), name
        assert all(r.charged_in == charged and charged in r.message for r in train), name
    shared = _sampler(lambda rng, shape, p: np.ones((shape[0], 1)) * (rng.random(shape[1]) >= p))
    backward = [r for _, case, r in judged(namespace(shared), SALTS[:5]) if "dout" in case.inputs]
    assert backward and all(r.passed for r in backward)


def _scaled_at_test(factor: str, backward_test: str) -> dict[str, str]:
    """A sample-answer-like submission: right in train mode, x·factor in test mode."""
    forward = f"""def dropout_forward(x, p_drop, mode="train", rng=None):
    if mode == "test":
        return x * {factor}, (None, p_drop, mode)
    rng = rng if rng is not None else np.random.default_rng()
    mask = rng.random(x.shape) >= p_drop
    return x * mask / (1 - p_drop), (mask, p_drop, mode)"""
    backward = f"""def dropout_backward(dout, cache):
    mask, p_drop, mode = cache
    if mode == "test":
        return {backward_test}
    return dout * mask / (1 - p_drop)"""
    return {"dropout_forward": forward, "dropout_backward": backward}


def _graded(tmp_path, functions, reference):
    notebook = write_submission(tmp_path, NOTEBOOK, functions)
    result = grade_notebook(Target(notebook), reference=reference)
    assert not result.error, result.error
    return result


def _scores(result) -> dict[str, tuple[float, float]]:
    """check id -> (score with errors carried forward, score with the rule turned off)."""
    out = {}
    for check in result.checks:
        on = check.score
        check.carry_forward = False
        out[check.check.id] = (on, check.score)
        check.carry_forward = True
    return out


@pytest.mark.parametrize("factor", ["(1 - p_drop)", "(1 / (1 - p_drop))"])
def test_scaled_at_test_with_dx_dout_loses_no_backward_point(tmp_path, reference, factor):
    """Issue 10: a forward scaled at test time with the test-mode backward dx = dout, graded by
    the real runner: the forward's mistake costs dropout_test_mode only; the backward keeps every
    point with errors carried forward on *and* off (dx = dout is right in test mode), and says
    which check charged the forward."""
    result = _graded(tmp_path, _scaled_at_test(factor, "dout"), reference)
    scores = _scores(result)
    backward = next(c for c in result.checks if c.check.id == "dropout_backward")
    assert scores["dropout_backward"] == (backward.check.points, backward.check.points)
    assert scores["dropout_test_mode"] == (0.0, 0.0)
    test_case = next(c for c in backward.cases if "test mode" in c.name)
    assert test_case.passed and "charged in dropout_test_mode" in test_case.message
    assert "dropout.scaled_at_test" in test_case.message
    assert sorted(c.check.id for c in result.checks if not c.passed) == ["dropout_test_mode"]


def test_scaled_at_test_with_its_own_consistent_backward_is_carried_forward(tmp_path, reference):
    """The same forward with dx = dout·(1-p) in test mode (exact for that forward): carried
    forward, so it keeps the point with the rule on and loses it with the rule off."""
    result = _graded(tmp_path, _scaled_at_test("(1 - p_drop)", "dout * (1 - p_drop)"), reference)
    scores = _scores(result)
    backward = next(c for c in result.checks if c.check.id == "dropout_backward")
    (test_case,) = [c for c in backward.cases if "test mode" in c.name]
    assert test_case.carried_forward and test_case.charged_in == "dropout_test_mode"
    share = backward.check.points * test_case.points / sum(c.points for c in backward.cases)
    assert scores["dropout_backward"] == pytest.approx(
        (backward.check.points, backward.check.points - share)
    )


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_pairs_earn_no_dropout_backward_point_in_the_runner(tmp_path, reference, name):
    """Issue 10: an all-zeros or identity forward with its own consistent backward, graded by
    the real runner: no dropout_backward (nor hidden backward-case) point, rule on or off."""
    sources = {
        "all zeros, dx = 0": (
            "def dropout_forward(x, p_drop, mode='train', rng=None):\n"
            "    return np.zeros_like(x), None",
            "def dropout_backward(dout, cache):\n    return np.zeros_like(dout)",
        ),
        "identity, dx = dout": (
            "def dropout_forward(x, p_drop, mode='train', rng=None):\n    return x.copy(), None",
            "def dropout_backward(dout, cache):\n    return dout",
        ),
    }[name]
    result = _graded(
        tmp_path, {"dropout_forward": sources[0], "dropout_backward": sources[1]}, reference
    )
    assert _scores(result)["dropout_backward"] == (0.0, 0.0)
    hidden = next(c for c in result.checks if c.check.id == "dropout_hidden_backward")
    assert not any(c.earned(True) for c in hidden.cases if c.name.startswith("backward"))


def test_a_backward_rewriting_the_forward_output_in_place_fails():
    """Copy-on-return, in the runner both share: the forward's output is copied when it returns."""

    def forward(x, p_drop, mode="train", rng=None):
        out = x.copy() if mode == "test" else x * (rng.random(x.shape) >= p_drop) / (1 - p_drop)
        return out, {"out": out, "x": x}

    def backward(dout, cache):
        cache["out"][...] = cache["x"]
        return dout

    results = judged(namespace(forward, backward), SALTS[:3])
    train = [r for _, case, r in results if case.params.get("mode") == "train"]
    assert train and not any(r.passed for r in train)
