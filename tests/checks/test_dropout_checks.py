"""The dropout judges: fair to every correct way of sampling, sharp on structured or reused masks.

* Fair: correct samplers (``>=``, ``>``, binomial, ``random() <``, float32 uniforms, a choice of
  0 and 1) pass every case of the public fixtures and of the batch grade over many salts; the
  empirical false-fail count is asserted to be 0 (the stated bound is 1e-10 per case).
* Sharp: structured masks (a lattice, rows or columns in pairs, whole rows) and reused ones (one
  unit flipped, rows permuted) fail on every salt.
* The bounds stated in ``grader/checks/dropout.py`` are recounted from the builders.
* Degenerate pairs (issue 10): an all-zeros forward with dx = 0 and an identity forward with
  dx = dout earn no train-mode backward case.
"""

from __future__ import annotations

import numpy as np
import pytest
from kit_testing import every_case

from grader.checks import checks_for, dropout, mask_stats
from grader.checks.cases import batch_cases
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
    check at most 1e-9, the whole notebook 9e-10."""

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
                "dropout_backward": 1e-10,
                "dropout_fresh_mask": 1e-10,
                "dropout_hidden_forward": 3e-10,
                "dropout_hidden_backward": 2e-10,
            },
            abs=1e-15,
        )
        assert max(bounds.values()) <= 1e-9 and sum(bounds.values()) <= 9e-10 + 1e-15


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
def test_degenerate_forward_backward_pairs_earn_no_train_backward_case(name):
    results = judged(namespace(*DEGENERATE[name]), SALTS[:5])
    train = [r for _, case, r in results if case.params.get("mode") == "train"]
    assert train and not any(r.passed for r in train)
    assert all("not a dropout here" in r.message for r in train)


def test_catalogued_forward_mistakes_keep_their_consistent_backward():
    """Errors carried forward for the catalogued forwards: no scaling, keep-probability confusion
    and a shared mask are charged by the forward checks; a backward exact for them passes."""
    forwards = {
        "no scaling": _sampler(lambda rng, shape, p: (rng.random(shape) >= p) * (1 - p)),
        "keep prob": _sampler(lambda rng, shape, p: (rng.random(shape) < p) * (1 - p) / p),
        "shared mask": _sampler(
            lambda rng, shape, p: np.ones((shape[0], 1)) * (rng.random(shape[1]) >= p)
        ),
    }
    for name, forward in forwards.items():
        results = judged(namespace(forward), SALTS[:5])
        backward = [r for _, case, r in results if "dout" in case.inputs]
        assert backward and all(r.passed for r in backward), name


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
