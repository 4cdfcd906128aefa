r"""Checks for notebook 02: inverted dropout.

Dropout is random, so nothing here compares with a reference mask (tying a check to the order
of random calls fails correct answers that sample differently). Instead the checks judge the
student's *own* output: every output is either 0 or x/(1-p); the mask passes the named battery of
:mod:`grader.checks.mask_stats` (drop rate, row and column drop rates, pairwise-row and neighbour
agreement; across two calls, agreement of units and of rows); the backward pass agrees with the
forward's own mask and scale, but only when that forward is a plausible dropout (a gate: an
all-zeros forward with dx = 0, or an identity forward with dx = dout, earns nothing).

False-fail bounds (a correct answer, sampled any correct way, wrongly failed), each Hoeffding,
union-bounded:

* each statistical case: at most ``FALSE_FAIL`` = 1e-10 (a battery shares it among its tests);
* per check: ``dropout_train_forward`` 2e-10 (two cases with 0 < p_drop < 1; p_drop = 0 is
  exact), ``dropout_hidden_forward`` 3e-10, ``dropout_fresh_mask`` 1e-10 (one statistical case;
  the seeded case is exact), ``dropout_backward`` 1e-10 (the gate of its train-mode case; the
  test-mode gate is exact for a correct answer), ``dropout_hidden_backward`` 2e-10 (a gate and
  the battery of its fresh case), ``dropout_test_mode`` 0. The two-call battery runs only on
  masks that pass the one-call battery, which can only make a correct answer pass more often;
  ``capstone_layers`` 2e-10 (in ``capstone.py``): every check at most 1e-9, as DESIGN.md asks;
* the whole of notebook 02: at most 9e-10 (9 statistical cases) (``tests/checks/test_dropout_checks.py`` recounts
  these from the builders and measures the false fails of correct samplers over many seeds).
"""

from __future__ import annotations

import numpy as np

from grader.checks import mask_stats
from grader.checks.base import (
    Case,
    CaseResult,
    Check,
    Misconception,
    Mismatch,
    as_array,
    call,
    generator,
    given,
    let,
    var,
)
from grader.toolkit.gradcheck import rel_error

NOTEBOOK = "02_dropout"
FUNCTIONS = ("dropout_forward", "dropout_backward")
FALSE_FAIL = 1e-10  # per statistical case (see the module docstring for every check's bound)
VALUE_TOL = 1e-5  # relative; float32 round-off passes, every catalogued mistake is off by >= 10 %

MISCONCEPTIONS = {
    m.id: m
    for m in [
        Misconception(
            "dropout.keep_prob_confusion",
            "p_drop used as the probability of keeping a unit",
            "p_drop is the probability of DROPPING a unit (the slides' P%): keep a unit with "
            "probability 1 - p_drop and scale the kept ones by 1/(1 - p_drop).",
        ),
        Misconception(
            "dropout.no_inverted_scaling",
            "kept units not scaled by 1/(1-p) in training",
            "Inverted dropout divides the kept units by (1 - p_drop) during training, so the "
            "expected output equals the input and test mode needs no change.",
        ),
        Misconception(
            "dropout.active_at_test",
            "units still dropped in test mode",
            'At test time every neuron is connected: mode="test" must return the input unchanged.',
        ),
        Misconception(
            "dropout.scaled_at_test",
            "output scaled in test mode",
            "With inverted dropout the scaling already happened in training; scaling again at "
            "test time (the original paper's convention) counts it twice.",
        ),
        Misconception(
            "dropout.backward_ignores_mask",
            "backward lets gradient through dropped units",
            "A dropped unit did not affect the loss, so its gradient is 0: multiply dout by the "
            "same mask the forward pass used (keep it in the cache).",
        ),
        Misconception(
            "dropout.backward_ignores_scale",
            "backward forgets the 1/(1-p) factor",
            "The forward pass multiplied kept units by 1/(1 - p_drop); the chain rule multiplies "
            "their gradient by the same factor.",
        ),
        Misconception(
            "dropout.shared_mask",
            "one mask shared by every example",
            "Draw the mask with the full shape of x, (N, D): each example in the mini-batch gets "
            "its own random mask.",
        ),
        Misconception(
            "dropout.reused_mask",
            "the same mask on every call",
            "Draw a new mask at every call (every mini-batch); don't fix a seed inside the function "
            "or keep a mask from an earlier call.",
        ),
        Misconception(
            "dropout.ignores_rng",
            "the rng argument is ignored",
            "Every random number of the mask must come from the generator passed in as `rng` "
            "(a new default generator only when it is None): the same seed then gives the same "
            "masks, which makes runs reproducible.",
        ),
    ]
}


# --------------------------------------------------------------------------- inputs
def _activations(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Inputs bounded away from 0 (so out/x reveals the mask and scale), mixed signs, scaled."""
    magnitude = rng.uniform(0.5, 3.0, size=(n, d))
    return magnitude * rng.choice([-1.0, 1.0], size=(n, d))


def _forward_case(rng, n, d, p, label) -> Case:
    return Case(
        name=f"{label}: x of shape ({n}, {d}), p_drop={p}",
        plan=[
            let("x", given("x")),
            call(
                "dropout_forward",
                var("x"),
                p,
                mode="train",
                rng=generator(rng.integers(2**32)),
                out=["out", "cache"],
            ),
        ],
        returns={"out": var("out"), "x_after": var("x")},
        inputs={"x": _activations(rng, n, d)},
        params={"p_drop": p},
    )


def _backward_case(rng, n, d, p, mode) -> Case:
    return Case(
        name=f"backward, {mode} mode: x of shape ({n}, {d}), p_drop={p}, random dout",
        plan=[
            call(
                "dropout_forward",
                given("x"),
                p,
                mode=mode,
                rng=generator(rng.integers(2**32)),
                out=["out", "cache"],
            ),
            call("dropout_backward", given("dout"), var("cache"), out="dx"),
        ],
        returns={"out": var("out"), "dx": var("dx")},
        inputs={"x": _activations(rng, n, d), "dout": rng.normal(size=(n, d))},
        params={"p_drop": p, "mode": mode},
    )


def _fresh_mask_cases(rng, n, d, p) -> list[Case]:
    seed = int(rng.integers(2**32))
    x = _activations(rng, n, d)
    return [
        Case(
            name=f"two calls with one generator give two masks: x ({n}, {d}), p_drop={p}",
            plan=[
                let("rng", generator(seed)),
                call(
                    "dropout_forward",
                    given("x"),
                    p,
                    mode="train",
                    rng=var("rng"),
                    out=["first", "c1"],
                ),
                call(
                    "dropout_forward",
                    given("x"),
                    p,
                    mode="train",
                    rng=var("rng"),
                    out=["second", "c2"],
                ),
            ],
            returns={"first": var("first"), "second": var("second")},
            inputs={"x": x},
            params={"p_drop": p, "property": "fresh"},
        ),
        Case(
            name=f"two generators with the same seed give the same mask: x ({n}, {d}), p_drop={p}",
            plan=[
                call(
                    "dropout_forward",
                    given("x"),
                    p,
                    mode="train",
                    rng=generator(seed),
                    out=["first", "c1"],
                ),
                call(
                    "dropout_forward",
                    given("x"),
                    p,
                    mode="train",
                    rng=generator(seed),
                    out=["second", "c2"],
                ),
            ],
            returns={"first": var("first"), "second": var("second")},
            inputs={"x": x},
            params={"p_drop": p, "property": "seeded"},
        ),
    ]


# --------------------------------------------------------------------------- builders
def build_test_mode(seed: int, reference=None) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for n, d, p in [(8, 20, 0.3), (16, 50, 0.7)]:
        case = _forward_case(rng, n, d, p, "test mode")
        case.plan[1]["kwargs"]["mode"] = "test"
        case.name = f"test mode: x of shape ({n}, {d}), p_drop={p}"
        cases.append(case)
    return cases


def build_train_forward(seed: int, reference=None) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _forward_case(rng, n, d, p, "train mode")
        for n, d, p in [(100, 300, 0.3), (80, 250, 0.65), (50, 40, 0.0)]
    ]


def build_backward(seed: int, reference=None) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [_backward_case(rng, 64, 100, 0.3, "train"), _backward_case(rng, 8, 10, 0.3, "test")]


def build_fresh_mask(seed: int, reference=None) -> list[Case]:
    return _fresh_mask_cases(np.random.default_rng(seed), 60, 150, 0.3)


def build_hidden_forward(seed: int, reference=None) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for p in rng.choice([0.1, 0.2, 0.25, 0.4, 0.45, 0.55, 0.6, 0.75, 0.8], size=3, replace=False):
        n, d = int(rng.integers(60, 200)), int(rng.integers(180, 400))
        cases.append(_forward_case(rng, n, d, float(p), "train mode"))
    return cases


def build_hidden_backward(seed: int, reference=None) -> list[Case]:
    rng = np.random.default_rng(seed)
    p = float(rng.choice([0.15, 0.35, 0.6, 0.85]))
    n, d = int(rng.integers(40, 120)), int(rng.integers(50, 150))
    return [
        _backward_case(rng, n, d, p, "train"),
        *_fresh_mask_cases(rng, 80, 150, float(rng.choice([0.2, 0.6]))),
    ]


# --------------------------------------------------------------------------- judges
def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and rel_error(a, b) <= VALUE_TOL


def judge_test_mode(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x, p = case.inputs["x"], case.params["p_drop"]
    out = as_array(outputs.get("out"), "out", x.shape, notes)
    if _close(out, x):
        return CaseResult(case.name, True, "out equals x", notes=tuple(notes))
    if np.any((out == 0) & (x != 0)):
        raise Mismatch(
            f"{np.mean(out == 0):.0%} of the outputs are 0 in test mode; expected out == x",
            ("dropout.active_at_test",),
        )
    for factor in (1 - p, 1 / (1 - p), p, 1 / p):
        if _close(out, x * factor):
            raise Mismatch(
                f"test-mode output is x·{factor:.4g}; expected x unchanged",
                ("dropout.scaled_at_test",),
            )
    raise Mismatch(
        f"test-mode output differs from x (relative error {rel_error(out, x):.2e} > {VALUE_TOL:.0e})"
    )


def judge_train_forward(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x, p = case.inputs["x"], case.params["p_drop"]
    out = as_array(outputs.get("out"), "out", x.shape, notes)
    x_after = as_array(outputs.get("x_after"), "x after the call", x.shape)
    problems, diagnosis = [], []

    kept = out != 0
    if kept.any():
        ratio = out[kept] / x[kept]
        scale = 1.0 / (1.0 - p)
        if not np.allclose(ratio, scale, rtol=VALUE_TOL, atol=0):
            typical = float(np.median(ratio))
            problems.append(
                f"kept units are x·{typical:.4g}; expected x/(1-p_drop) = x·{scale:.4g}"
            )
            if p > 0 and np.allclose(ratio, 1.0, rtol=VALUE_TOL):
                diagnosis.append("dropout.no_inverted_scaling")
            elif p > 0 and np.allclose(ratio, 1.0 / p, rtol=VALUE_TOL):
                diagnosis.append("dropout.keep_prob_confusion")

    dropped = 1.0 - kept.mean()
    battery = mask_stats.one_call(kept, p, FALSE_FAIL) if 0 < p < 1 else []
    if p > 0 and mask_stats.surprising(dropped, out.size, p, FALSE_FAIL):
        if not mask_stats.surprising(dropped, out.size, 1 - p, FALSE_FAIL):
            diagnosis.append("dropout.keep_prob_confusion")
    elif p == 0 and not kept.all():
        battery.append(
            f"{int((~kept).sum())} of the {kept.size} units were dropped with p_drop = 0"
        )
    if 0 < p and x.shape[0] >= 2 and np.all(kept == kept[0]):
        battery.insert(0, "every example (row) got the same mask")
        diagnosis.append("dropout.shared_mask")
    if battery:
        problems.append(
            "the mask does not behave like independent draws per unit: "
            + "; ".join(battery)
            + f" (this battery fails a correct answer with probability < {FALSE_FAIL:.0e})"
        )

    if not np.array_equal(x_after, x):
        problems.append("dropout_forward changed its input x in place; return a new array instead")
    if problems:
        raise Mismatch("; ".join(problems), tuple(dict.fromkeys(diagnosis)))
    return CaseResult(
        case.name, True, f"{dropped:.1%} dropped, kept units scaled by 1/(1-p)", notes=tuple(notes)
    )


def _plausible_forward(out: np.ndarray, x: np.ndarray, p: float, mode: str) -> str:
    """Why ``out`` is not a plausible dropout of ``x`` (empty when it is): the gate of the
    own-consistency judge (issue 10's degenerate pairs: all zeros, identity).

    Plausible: every unit 0 or x times one common factor s > 0, and in train mode the dropped
    fraction is what dropout with p (or, the catalogued confusion, 1 - p) gives, by the drop-rate
    test of :mod:`~grader.checks.mask_stats` at ``FALSE_FAIL``. A mask shared by every row (a
    catalogued mistake) or dropping whole rows, both charged by the forward checks, has only D
    (or N) independent draws: it only has to drop some units and keep some. In test mode x times a constant (the catalogued
    test-time scalings) is plausible too.
    """
    kept = out != 0
    ratio = out[kept] / x[kept]
    if not kept.any() or not np.allclose(ratio, ratio[0], rtol=VALUE_TOL, atol=0) or ratio[0] <= 0:
        return "its outputs are not the inputs times one positive factor, some of them zeroed"
    dropped = 1.0 - kept.mean()
    if (mode == "test" and dropped == 0) or not 0 < p < 1:
        return ""
    if np.all(kept == kept[0]) or np.all(kept == kept[:, :1]):  # shared by rows, or whole rows
        return "" if 0 < dropped < 1 else f"it dropped {dropped:.0%} of the units"
    if all(mask_stats.surprising(dropped, out.size, q, FALSE_FAIL) for q in (p, 1 - p)):
        return f"it dropped {dropped:.1%} of the units with p_drop = {p:g}"
    return ""


def judge_backward(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x, dout, p = case.inputs["x"], case.inputs["dout"], case.params["p_drop"]
    out = as_array(outputs.get("out"), "out", x.shape, notes)
    dx = as_array(outputs.get("dx"), "dx", x.shape, notes)
    implausible = _plausible_forward(out, x, p, case.params["mode"])
    if implausible:
        raise Mismatch(
            f"your forward pass is not a dropout here ({implausible}), so your backward pass "
            "cannot be judged against its mask: a backward earns points only with a forward that "
            "drops units and scales the rest (see the forward checks)"
        )
    expected = dout * (out / x)  # the student's own mask and scale, read off their forward output
    if _close(dx, expected):
        return CaseResult(
            case.name, True, "dx follows the forward pass's own mask and scale", notes=tuple(notes)
        )
    error = rel_error(dx, expected)
    if case.params["mode"] == "test":
        raise Mismatch(
            "in test mode dx should be dout times what your forward did to x "
            f"(relative error {error:.2e} > {VALUE_TOL:.0e})"
        )
    kept = out != 0
    diagnosis = []
    if _close(dx, dout) or _close(dx, dout / (1 - p)) or _close(dx, dout * (1 - p)):
        diagnosis.append("dropout.backward_ignores_mask")
    elif _close(dx, dout * kept) or _close(dx, dout * kept * (1 - p)):
        diagnosis.append("dropout.backward_ignores_scale")
    raise Mismatch(
        f"dx does not match dout·mask/(1-p_drop) for the mask your forward pass drew "
        f"(relative error {error:.2e} > {VALUE_TOL:.0e})",
        tuple(diagnosis),
    )


def _log10_same_mask(p: float, n: int) -> float:
    """log10 of the probability that two independent masks of n units are identical."""
    return n * np.log10(p**2 + (1 - p) ** 2)


def judge_fresh_mask(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x = case.inputs["x"]
    first = as_array(outputs.get("first"), "first output", x.shape, notes) != 0
    second = as_array(outputs.get("second"), "second output", x.shape, notes) != 0
    if case.params["property"] == "fresh":
        p = case.params["p_drop"]
        if np.array_equal(first, second):
            raise Mismatch(
                "two calls with the same generator returned the same mask (a correct answer does "
                f"that with probability 10^{_log10_same_mask(p, x.size):.0f})",
                ("dropout.reused_mask",),
            )
        # the two-call tests assume each mask is independent within itself; a mask that is not
        # (say, shared by every row) was charged by the forward checks and is not charged again
        within = mask_stats.one_call(first, p, FALSE_FAIL) + mask_stats.one_call(
            second, p, FALSE_FAIL
        )
        problems = [] if within else mask_stats.across_calls(first, second, p, FALSE_FAIL)
        if problems:  # dependence between calls: some of the last mask came back
            raise Mismatch(
                "the masks of two calls are not independent draws: "
                + "; ".join(problems)
                + f" (this battery fails a correct answer with probability < {FALSE_FAIL:.0e})",
                ("dropout.reused_mask",),
            )
        return CaseResult(case.name, True, "a new mask at each call", notes=tuple(notes))
    if not np.array_equal(first, second):
        raise Mismatch(
            "two generators made with the same seed gave different masks: the mask does not come "
            "from the `rng` argument",
            ("dropout.ignores_rng",),
        )
    return CaseResult(
        case.name, True, "the mask comes from the given generator", notes=tuple(notes)
    )


def judge_backward_any(case: Case, outputs) -> CaseResult:
    if "property" in case.params:
        return judge_fresh_mask(case, outputs)
    return judge_backward(case, outputs)


CHECKS = [
    Check(
        "dropout_test_mode",
        NOTEBOOK,
        "test mode is the identity",
        1,
        False,
        ("dropout_forward",),
        build_test_mode,
        judge_test_mode,
    ),
    Check(
        "dropout_train_forward",
        NOTEBOOK,
        "train mode: drop p_drop of the units, scale the rest",
        3,
        False,
        ("dropout_forward",),
        build_train_forward,
        judge_train_forward,
    ),
    Check(
        "dropout_backward",
        NOTEBOOK,
        "backward uses the forward's mask and scale",
        2,
        False,
        FUNCTIONS,
        build_backward,
        judge_backward,
    ),
    Check(
        "dropout_fresh_mask",
        NOTEBOOK,
        "a new mask each call, drawn from rng",
        1,
        False,
        ("dropout_forward",),
        build_fresh_mask,
        judge_fresh_mask,
    ),
    Check(
        "dropout_hidden_forward",
        NOTEBOOK,
        "train mode on hidden shapes and rates",
        2,
        True,
        ("dropout_forward",),
        build_hidden_forward,
        judge_train_forward,
    ),
    Check(
        "dropout_hidden_backward",
        NOTEBOOK,
        "backward and fresh masks on hidden shapes and rates",
        1,
        True,
        FUNCTIONS,
        build_hidden_backward,
        judge_backward_any,
    ),
]
