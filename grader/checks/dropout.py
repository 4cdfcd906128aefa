r"""Checks for notebook 02: inverted dropout, as a table (:mod:`grader.checks.table`).

Dropout is random, so nothing here compares with a reference mask (tying a check to the order
of random calls fails correct answers that sample differently); no kind runs the reference.
The judges are property judges of the student's *own* output: every output is either 0 or
x/(1-p); the mask passes the named battery of :mod:`grader.checks.mask_stats` (drop rate, row and
column drop rates, pairwise-row and neighbour agreement; across two calls, agreement of units and
of rows). The backward pass is judged on the mask the forward drew, behind a gate: only a forward
that is a plausible dropout in train mode (units zeroed, the rest x times one positive factor, a
drop rate dropout gives) lets its backward be judged at all, so an all-zeros forward with dx = 0,
or an identity forward with dx = dout, earns no ``dropout_backward`` point (the test-mode case
runs the train-mode forward too, for its gate). **Errors carried forward:** a backward right for
a forward that made a catalogued mistake (no 1/(1-p) scaling, keep probability for p_drop,
scaling or dropping at test time) is marked ``carried_forward``, with a message naming the check
that charged the mistake; in test mode dx = dout is right whatever the forward did.

False-fail bounds (a correct answer, sampled any correct way, wrongly failed), each Hoeffding,
union-bounded:

* each statistical case: at most ``FALSE_FAIL`` = 1e-10 (a battery shares it among its tests);
* per check: ``dropout_train_forward`` 2e-10 (two cases with 0 < p_drop < 1; p_drop = 0 is
  exact), ``dropout_hidden_forward`` 3e-10, ``dropout_fresh_mask`` 1e-10 (one statistical case;
  the seeded case is exact), ``dropout_backward`` 2e-10 (the gates of its two cases),
  ``dropout_hidden_backward`` 2e-10 (a gate and the battery of its fresh case),
  ``dropout_test_mode`` 0. The two-call battery runs only on masks that pass the one-call
  battery, which can only make a correct answer pass more often; ``capstone_layers`` 2e-10 (in
  ``capstone.py``): every check at most 1e-9, as DESIGN.md asks;
* the whole of notebook 02: at most 1e-9 (10 statistical cases) (``tests/checks/
  test_dropout_checks.py`` recounts these from the builders and measures the false fails of
  correct samplers over many seeds).
"""

from __future__ import annotations

import numpy as np

from grader.checks import mask_stats
from grader.checks.base import (
    Case,
    CaseResult,
    Misconception,
    Mismatch,
    as_array,
    call,
    generator,
    given,
    let,
    var,
)
from grader.checks.table import Kind, Row, Spec, Topic
from grader.toolkit.gradcheck import rel_error

FALSE_FAIL = 1e-10  # per statistical case (see the module docstring for every check's bound)
VALUE_TOL = 1e-5  # relative; float32 round-off passes, every catalogued mistake is off by >= 10 %
TRAIN_CHECK, TEST_CHECK = "dropout_train_forward", "dropout_test_mode"  # charge forward mistakes

CATALOGUE = [
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


# --------------------------------------------------------------------------- inputs and plans
def activations(rng: np.random.Generator, n: int, d: int, **_) -> np.ndarray:
    """Inputs bounded away from 0 (so out/x reveals the mask and scale), mixed signs, scaled."""
    magnitude = rng.uniform(0.5, 3.0, size=(n, d))
    return magnitude * rng.choice([-1.0, 1.0], size=(n, d))


def _forward(mode: str, s, out=("out", "cache"), x=None) -> dict:
    rng = generator(s["seed"]) if mode else var("rng")
    return call(
        "dropout_forward",
        x or given("x"),
        s["p_drop"],
        mode=mode or "train",
        rng=rng,
        out=list(out),
    )


def _backward_plan(s) -> list[dict]:
    gate = [_forward("train", s, ("gate", "gate_cache"))] if s["mode"] == "test" else []
    return [
        *gate,
        _forward(s["mode"], s),
        call("dropout_backward", given("dout"), var("cache"), out="dx"),
    ]


def _two_calls(s) -> list[dict]:
    if s["property"] == "fresh":  # one generator, two calls
        return [let("rng", generator(s["seed"])), _forward("", s, ("first", "c1"))] + [
            _forward("", s, ("second", "c2"))
        ]
    return [_forward("train", s, ("first", "c1")), _forward("train", s, ("second", "c2"))]


def _shape(s) -> str:
    return f"x of shape ({s['n']}, {s['d']}), p_drop={s['p_drop']}"


# --------------------------------------------------------------------------- judges
def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and rel_error(a, b) <= VALUE_TOL


def test_factors(p: float) -> tuple[float, ...]:
    """The catalogued test-time scalings of x (dropout.scaled_at_test)."""
    return (1 - p, 1 / (1 - p), p, 1 / p)


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
    for factor in test_factors(p):
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
    backward judge (issue 10's degenerate pairs: all zeros, identity).

    Plausible: every unit 0 or x times one common factor s > 0, and in train mode the dropped
    fraction is what dropout with p (or, the catalogued confusion, 1 - p) gives, by the drop-rate
    test of :mod:`~grader.checks.mask_stats` at ``FALSE_FAIL``. A mask shared by every row (a
    catalogued mistake) or dropping whole rows, both charged by the forward checks, has only D
    (or N) independent draws: it only has to drop some units and keep some. In test mode x times
    a constant (the catalogued test-time scalings) is plausible too.
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


def _forward_mistake(out: np.ndarray, x: np.ndarray, p: float, mode: str):
    """(misconception, what it is, the check that charges it) for a forward that passed the gate
    (so its kept units are x times one factor) and made a catalogued mistake, else None."""
    kept = out != 0
    first = int(np.argmax(kept))
    factor = float(out.flat[first] / x.flat[first])
    near = lambda target: abs(factor - target) <= VALUE_TOL * target  # noqa: E731
    if mode == "test":
        if not kept.all():
            return "dropout.active_at_test", "units dropped in test mode", TEST_CHECK
        if any(map(near, test_factors(p))):
            return "dropout.scaled_at_test", f"a test-mode output x·{factor:.4g}", TEST_CHECK
        return None
    if 0 < p and near(1.0):
        return "dropout.no_inverted_scaling", "kept units not scaled by 1/(1-p)", TRAIN_CHECK
    if 0 < p < 1 and p != 0.5 and near(1 / p):
        return "dropout.keep_prob_confusion", "kept units scaled by 1/p_drop", TRAIN_CHECK
    return None


def judge_backward(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    x, dout, p = case.inputs["x"], case.inputs["dout"], case.params["p_drop"]
    mode = case.params["mode"]
    forwards = [("gate", "train")] if mode == "test" else []
    for name, gate_mode in [*forwards, ("out", mode)]:
        forward = as_array(outputs.get(name), f"the {gate_mode}-mode output", x.shape, notes)
        implausible = _plausible_forward(forward, x, p, gate_mode)
        if implausible:
            raise Mismatch(
                f"your forward pass in {gate_mode} mode is not a dropout here ({implausible}), so "
                "your backward pass cannot be judged against its mask: a backward earns points "
                "only with a forward that drops units and scales the rest (see the forward checks)"
            )
    out = forward
    dx = as_array(outputs.get("dx"), "dx", x.shape, notes)
    kept = out != 0
    right = dout if mode == "test" else dout * kept / (1 - p)  # the reference's, for this mask
    mistake = _forward_mistake(out, x, p, mode)
    charged = (
        ""
        if mistake is None
        else (f"your forward matches {mistake[1]} [{mistake[0]}], which is charged in {mistake[2]}")
    )
    if _close(dx, right):
        message = "dx = dout, as in test mode" if mode == "test" else "dx follows your mask"
        if charged:
            message += f"; {charged}, not here"
        return CaseResult(case.name, True, message, notes=tuple(notes))
    own = dout * (out / x)  # exact for the student's own forward, read off its output
    if mistake is not None and _close(dx, own):
        return CaseResult(
            case.name,
            False,
            f"{charged}; this backward is right for your forward, so it keeps its points "
            "(errors carried forward)",
            notes=tuple(notes),
            carried_forward=True,
            charged_in=mistake[2],
        )
    error = rel_error(dx, right)
    if mode == "test":
        raise Mismatch(
            "in test mode dx should be dout (the test-mode forward is the identity)"
            + (f"; {charged}" if charged else "")
            + f" (relative error {error:.2e} > {VALUE_TOL:.0e})"
        )
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


# --------------------------------------------------------------------------- the table
FORWARD_RETURNS = {"out": var("out"), "x_after": var("x")}
KINDS = [
    Kind(
        "test_mode",
        ("dropout_forward",),
        lambda rng, **s: {"x": activations(rng, **s)},
        lambda s: [let("x", given("x")), _forward("test", s, x=var("x"))],
        FORWARD_RETURNS,
        judge_test_mode,
        title=lambda s: f"test mode: {_shape(s)}",
        reference=False,
    ),
    Kind(
        "train",
        ("dropout_forward",),
        lambda rng, **s: {"x": activations(rng, **s)},
        lambda s: [let("x", given("x")), _forward("train", s, x=var("x"))],
        FORWARD_RETURNS,
        judge_train_forward,
        title=lambda s: f"train mode: {_shape(s)}",
        reference=False,
    ),
    Kind(
        "backward",
        ("dropout_forward", "dropout_backward"),
        lambda rng, **s: {"x": activations(rng, **s), "dout": rng.normal(size=(s["n"], s["d"]))},
        _backward_plan,
        lambda s: (
            {"out": var("out"), "dx": var("dx")}
            | ({"gate": var("gate")} if s["mode"] == "test" else {})
        ),
        judge_backward,
        title=lambda s: f"backward, {s['mode']} mode: {_shape(s)}, random dout",
        reference=False,
    ),
    Kind(
        "two_calls",
        ("dropout_forward",),
        lambda rng, **s: {"x": activations(rng, **s)},
        _two_calls,
        {"first": var("first"), "second": var("second")},
        judge_fresh_mask,
        title=lambda s: (
            f"two calls with one generator give two masks: x ({s['n']}, {s['d']}), "
            f"p_drop={s['p_drop']}"
            if s["property"] == "fresh"
            else "two generators with the same seed give the same mask: "
            f"x ({s['n']}, {s['d']}), p_drop={s['p_drop']}"
        ),
        reference=False,
    ),
]


def _seed(rng: np.random.Generator) -> int:
    """The seed of the generator a case hands the student (drawn from the check's seed)."""
    return int(rng.integers(2**32))


def _specs(kind: str, *settings):
    return lambda rng: [Spec(kind, n=n, d=d, p_drop=p, seed=_seed(rng)) for n, d, p in settings]


def _two_call_specs(rng, n: int, d: int, p: float) -> list[Spec]:
    seed = _seed(rng)
    return [
        Spec("two_calls", n=n, d=d, p_drop=p, seed=seed, property=q) for q in ("fresh", "seeded")
    ]


def _backward_specs(rng) -> list[Spec]:
    return [
        Spec("backward", n=n, d=d, p_drop=0.3, mode=mode, seed=_seed(rng))
        for n, d, mode in ((64, 100, "train"), (8, 10, "test"))
    ]


def _hidden_forward(rng) -> list[Spec]:
    cases = []
    for p in rng.choice([0.1, 0.2, 0.25, 0.4, 0.45, 0.55, 0.6, 0.75, 0.8], size=3, replace=False):
        n, d = int(rng.integers(60, 200)), int(rng.integers(180, 400))
        cases.append(Spec("train", n=n, d=d, p_drop=float(p), seed=_seed(rng)))
    return cases


def _hidden_backward(rng) -> list[Spec]:
    p = float(rng.choice([0.15, 0.35, 0.6, 0.85]))
    n, d = int(rng.integers(40, 120)), int(rng.integers(50, 150))
    backward = Spec("backward", n=n, d=d, p_drop=p, mode="train", seed=_seed(rng))
    return [backward, *_two_call_specs(rng, 80, 150, float(rng.choice([0.2, 0.6])))]


TOPIC = Topic(
    notebook="02_dropout",
    functions=("dropout_forward", "dropout_backward"),
    misconceptions=CATALOGUE,
    kinds=KINDS,
    rows=[
        Row(
            TEST_CHECK,
            "test mode is the identity",
            1,
            _specs("test_mode", (8, 20, 0.3), (16, 50, 0.7)),
        ),
        Row(
            TRAIN_CHECK,
            "train mode: drop p_drop of the units, scale the rest",
            3,
            _specs("train", (100, 300, 0.3), (80, 250, 0.65), (50, 40, 0.0)),
        ),
        Row("dropout_backward", "backward uses the forward's mask and scale", 2, _backward_specs),
        Row(
            "dropout_fresh_mask",
            "a new mask each call, drawn from rng",
            1,
            lambda rng: _two_call_specs(rng, 60, 150, 0.3),
        ),
        Row(
            "dropout_hidden_forward",
            "train mode on hidden shapes and rates",
            2,
            _hidden_forward,
            hidden=True,
        ),
        Row(
            "dropout_hidden_backward",
            "backward and fresh masks on hidden shapes and rates",
            1,
            _hidden_backward,
            hidden=True,
        ),
    ],
)
NOTEBOOK, FUNCTIONS, MISCONCEPTIONS = TOPIC.notebook, TOPIC.functions, TOPIC.catalogue
CHECKS = TOPIC.checks()
