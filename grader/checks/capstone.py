r"""Checks for notebook 04, the capstone: one network with batch norm, dropout and an L2 penalty.

A table (:mod:`grader.checks.table`): the case kinds in ``KINDS``, the checks in ``ROWS``; the
expected values come from running each kind's plan on the reference, the catalogued mistakes'
values from the case's inputs (analytic). The layer cases reuse notebook 02's dropout judges.

The student writes ``mlp_loss(params, X, y=None, *, p_drop=0.0, lam=0.0, mode="train",
bn_params=None, rng=None)`` (contract in ``solutions/reference/capstone.py`` and in the notebook)
on top of their own ``dropout_forward``/``dropout_backward`` (notebook 02) and
``batchnorm_forward``/``batchnorm_backward`` (notebook 03), which they paste into this notebook
again so that it can be graded on its own.

How the checks judge:

* **Against the reference** (``needs_reference=True``) wherever no randomness is involved: class
  scores in test mode, and loss and every gradient in train mode with ``p_drop = 0``.
* **Dropout on** cannot be compared with the reference, because the student's dropout may draw
  its mask differently from the same generator (any correct way of drawing passes). Instead the
  student's gradients are compared with **finite differences of the student's own loss**: the
  plan calls ``mlp_loss`` at :math:`\theta` and at :math:`\theta \pm h v_k` for a direction
  :math:`v_k` in each parameter array, always with a generator made from the same seed, so every
  call draws the same masks. The networks of these cases have :math:`|\beta| > 3|\gamma| + 0.2`
  in every unit: batch norm bounds :math:`|\hat x| \le \sqrt{N-1} = 3` (N = 10), so no ReLU input
  ever crosses 0 and the loss is smooth in every parameter; ``h`` can then be large enough
  (``FD_STEP``) for a student whose arithmetic is partly float32.
* **Errors carried forward** (issue 10; :mod:`grader.checks.table`): a mistake of the loss is
  charged in ``capstone_loss``. A gradient case whose loss is one of its catalogued mistakes
  (:func:`loss_mistakes`: ``scale`` × data loss + a penalty, with an analytic gradient) and whose
  gradients are exact for *that* loss is marked ``carried_forward`` (it keeps its points unless
  the course turns the rule off) and says so. The finite-difference check does the same behind
  its gate: with dropout off the loss must be the reference's or a catalogued mistake of it (a
  constant loss with zero gradients agrees with its own finite differences and earns nothing);
  gradients right for the *correct* loss, i.e. agreeing with the student's finite differences
  once the mistake's analytic part is taken out, pass outright. A loss that matches no mistake
  gets nothing from its own gradients.
* **Test mode** is checked by behaviour too: two calls with different generators must agree
  (dropout off), and the scores of the first rows must not change when the rest of the batch is
  left out (batch norm uses its running statistics, not the batch's).

Comparisons: values (scores, loss, the layers' outputs) by the largest difference relative to the
largest entry, tolerance ``VALUE_TOL``; gradients per parameter array by the largest difference
relative to the largest expected gradient entry in the whole network (or of that array's answer, if
larger), so that the gradient of an affine bias before batch norm, which is exactly 0, does not
turn float round-off into a relative error of 1; tolerance ``GRAD_TOL``. Correct float64 answers
are off by ~1e-15, float32 ones by < 1e-6; every catalogued mistake by > 1e-3. Directional
derivatives against finite differences: ``FD_RTOL`` and ``FD_ATOL`` below; correct float64 answers
use ~1e-3 of that allowance, float32 ones up to ~1/5 (tests/checks/test_capstone_checks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from grader.checks import dropout as dropout_checks
from grader.checks.base import (
    Case,
    CaseResult,
    Misconception,
    Mismatch,
    as_array,
    as_scalar,
    call,
    generator,
    given,
    let,
    var,
)
from grader.checks.table import Kind, Row, Spec, Topic, Variant, compare, expected_by_plan

VALUE_TOL = 1e-5
GRAD_TOL = 1e-5
FD_STEP = 1e-3  # finite-difference step along a unit direction (the loss is smooth there)
FD_RTOL = 1e-4  # directional derivatives: |a - n| <= FD_RTOL (|a| + |n|) + FD_ATOL max(1, |J|)
FD_ATOL = 1e-3  # float32 round-off of the loss, ~1e-7 |J|, divided by 2h, with a margin of 20
BN_EPS, BN_MOMENTUM = 1e-3, 0.9
BIG_SCORES_FLOOR = 100.0  # loss errors of the 'every score near 800' case, relative to this
LOSS_CHECK = (
    "capstone_loss"  # the check that charges a mistake of the loss (errors carried forward)
)
PENALTY_HALF = "norms.l2_missing_half"  # the same mistakes as in notebook 01: the same ids
PENALTY_SQRT = "norms.l2_penalty_sqrt"

CATALOGUE = [
    Misconception(
        "capstone.penalty_on_biases",
        "the L2 penalty also includes the biases",
        "The penalty (λ/2)·Σ‖W_l‖² covers the weight matrices only: biases shift a unit "
        "without making the network more sensitive to its inputs, so they are not "
        "penalised, and their gradient gets no λ·b term.",
    ),
    Misconception(
        "capstone.penalty_on_bn_params",
        "the L2 penalty also includes batch norm's γ and β",
        "γ and β are batch norm's own scale and shift, not weights: leave them out of the "
        "penalty and out of its gradient (only the W_l are penalised).",
    ),
    Misconception(
        "capstone.penalty_grad_missing",
        "the penalty is in the loss but not in the gradients",
        "Whatever you add to the loss must be differentiated too: (λ/2)·‖W_l‖² adds λ·W_l "
        "to the gradient of every weight matrix.",
    ),
    Misconception(
        "capstone.batch_mean_missing",
        "loss or gradients summed over the batch instead of averaged",
        "The data loss is the mean over the N examples, so the gradient of the scores is "
        "(softmax − one-hot)/N; keep the loss and its gradient consistent.",
    ),
    Misconception(
        "capstone.softmax_overflow",
        "softmax without subtracting the row maximum",
        "exp of a large score overflows to inf (exp(710) is already too big): subtract each "
        "row's maximum score before exponentiating; it cancels in the softmax.",
    ),
    Misconception(
        "capstone.dropout_at_test",
        "dropout still active in test mode",
        'Pass the mode on to every dropout layer: with mode="test" all units are '
        "connected and the scores are the same every time.",
    ),
    Misconception(
        "capstone.bn_train_at_test",
        "batch norm in training mode at evaluation",
        'Set each bn_param\'s "mode" to the mode mlp_loss was called with: in test mode '
        "batch norm must use its running statistics, so an example's scores do not depend "
        "on the other examples in the batch.",
    ),
    Misconception(
        "capstone.bn_state_lost",
        "running statistics not kept in the bn_params given",
        "Use the bn_param dictionaries you are given (one per hidden layer) instead of new "
        "ones: they carry the running mean and variance from training to test time.",
    ),
    Misconception(
        "capstone.rng_not_passed",
        "dropout not given the generator rng",
        "Pass rng to every dropout_forward call: with a generator from a fixed seed the "
        "masks, and so the loss, are reproducible, which a gradient check needs.",
    ),
    Misconception(
        "capstone.dropout_backward_skipped",
        "the backward pass skips dropout",
        "Each layer of the forward pass needs its backward step: the gradient flows back "
        "through the same dropout mask (dropout_backward with that layer's cache) before "
        "the ReLU's.",
    ),
]


# --------------------------------------------------------------------------- inputs
def _keys(n_layers: int, bn: bool) -> list[str]:
    keys = []
    for layer in range(1, n_layers + 1):
        keys += [f"W{layer}", f"b{layer}"]
        if bn and layer < n_layers:
            keys += [f"gamma{layer}", f"beta{layer}"]
    return keys


def _network(rng: np.random.Generator, dims: list[int], bn: bool, smooth: bool = False) -> dict:
    """Random parameters: biases, γ (mixed signs, never 1) and β (never 0) all clearly non-zero.

    ``smooth``: every unit gets :math:`|\\beta| > 3|\\gamma| + 0.2` (three in four positive), so
    with N = 10 no batch-normalised unit ever changes sign: the loss is smooth.
    """
    params = {}
    n_layers = len(dims) - 1
    for layer in range(1, n_layers + 1):
        fan_in, fan_out = dims[layer - 1], dims[layer]
        params[f"W{layer}"] = (
            rng.uniform(0.8, 1.5) * rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
        )
        params[f"b{layer}"] = rng.uniform(0.3, 2.0, fan_out) * rng.choice([-1.0, 1.0], fan_out)
        if bn and layer < n_layers:
            gamma = rng.uniform(0.5, 2.0, fan_out) * rng.choice([-1.0, 1.0], fan_out)
            if smooth:
                sign = np.where(rng.random(fan_out) < 0.75, 1.0, -1.0)
                beta = sign * (3.0 * np.abs(gamma) + rng.uniform(0.2, 1.0, fan_out))
            else:
                beta = rng.uniform(0.3, 1.5, fan_out) * rng.choice([-1.0, 1.0], fan_out)
            params[f"gamma{layer}"], params[f"beta{layer}"] = gamma, beta
    return params


def _running(rng: np.random.Generator, width: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(0.0, 2.0, width), rng.uniform(0.5, 4.0, width)


def _dims(s) -> list[int]:
    return [int(d) for d in s["dims"].split(",")]


def _unit(rng, array: np.ndarray) -> np.ndarray:
    """A unit direction leaning towards ``array`` (so a stray λ·param shows up clearly)."""
    noise = rng.standard_normal(array.shape)
    direction = array / np.linalg.norm(array) + noise / np.linalg.norm(noise)
    return direction / np.linalg.norm(direction)


def make_network(rng, n, dims, bn, smooth=False, big_scores=False, head=0, **_) -> dict:
    """Parameters, inputs ``X`` (5 + 3·noise), labels ``y`` covering several classes, and one
    running mean and variance per batch-norm layer; ``X_head``: the first ``head`` rows."""
    dims = [int(d) for d in dims.split(",")]
    params = _network(rng, dims, bn, smooth)
    if big_scores:  # every score near 800: exp(800) overflows, exp(score - row max) does not
        params[f"b{len(dims) - 1}"] += 800.0
    X = 5.0 + 3.0 * rng.standard_normal((n, dims[0]))
    y = rng.permutation(np.arange(n) % dims[-1]).astype(np.int64)
    inputs = {**params, "X": X, "y": y}
    if head:
        inputs["X_head"] = X[:head].copy()
    for i, width in enumerate(dims[1:-1] if bn else [], start=1):
        inputs[f"rm{i}"], inputs[f"rv{i}"] = _running(rng, width)
    return inputs


def make_gradcheck(rng, keys, **settings) -> dict:
    """A smooth network (see the module docstring) and, per parameter array k, the points
    ``k±`` = θ ± h v_k; ``k@±``: θ ± h v along one direction in every array at once."""
    inputs = make_network(rng, keys=keys, smooth=True, **settings)
    keys, h = keys.split(","), FD_STEP
    for k in keys:
        v = _unit(rng, inputs[k])
        inputs[f"{k}+"], inputs[f"{k}-"] = inputs[k] + h * v, inputs[k] - h * v
    for k in keys:
        v = _unit(rng, inputs[k]) / np.sqrt(len(keys))
        inputs[f"{k}@+"], inputs[f"{k}@-"] = inputs[k] + h * v, inputs[k] - h * v
    return inputs


def make_bn_layer(rng, n, d, **_) -> dict:
    gamma = rng.uniform(0.5, 2.0, d) * rng.choice([-1.0, 1.0], d)
    beta = rng.uniform(0.3, 1.5, d) * rng.choice([-1.0, 1.0], d)
    rm, rv = _running(rng, d)
    x = 5.0 + 3.0 * rng.standard_normal((n, d))
    return {
        "x": x,
        "gamma": gamma,
        "beta": beta,
        "dout": rng.standard_normal((n, d)),
        "rm": rm,
        "rv": rv,
    }


def make_dropout_layer(rng, n, d, **_) -> dict:
    """Activations bounded away from 0 with mixed signs (out/x reveals the mask and scale)."""
    x = rng.uniform(0.5, 3.0, (n, d)) * rng.choice([-1.0, 1.0], (n, d))
    return {"x": x, "dout": rng.standard_normal((n, d))}


# --------------------------------------------------------------------------- plans
def _bn_param(mode: str, rm: str, rv: str) -> dict:
    entries = {"mode": mode, "eps": BN_EPS, "momentum": BN_MOMENTUM}
    return {"dict": entries | {"running_mean": given(rm), "running_var": given(rv)}}


def _setup(s, replace_keys: dict | None = None, fresh: bool = False) -> list[dict]:
    """bn_params as a trainer leaves them (mode "train"; ``fresh``: new ones, no statistics),
    then ``params`` (``replace_keys``: array name -> input name)."""
    steps = []
    if s["bn"]:
        hidden = range(1, s["hidden"] + 1)
        for i in hidden:
            value = {"dict": {"mode": "train"}} if fresh else _bn_param("train", f"rm{i}", f"rv{i}")
            steps.append(let(f"bn{i}", value))
        steps.append(let("bn_params", {"list": [var(f"bn{i}") for i in hidden]}))
    return steps + [_params("params", s, replace_keys)]


def _params(name: str, s, replace_keys: dict | None = None) -> dict:
    replace_keys = replace_keys or {}
    keys = s["keys"].split(",")
    return let(name, {"dict": {k: given(replace_keys.get(k, k)) for k in keys}})


def _mlp(s, out, *, params="params", X="X", y=True, p_drop=0.0, lam=0.0, mode="train", seed=None):
    kwargs = {"p_drop": p_drop, "lam": lam, "mode": mode}
    if s["bn"]:
        kwargs["bn_params"] = var("bn_params")
    if seed is not None:
        kwargs["rng"] = generator(seed)
    args = [var(params), given(X)] + ([given("y")] if y else [])
    return call("mlp_loss", *args, out=out, **kwargs)


def _statistics(s) -> dict:
    """The running statistics left in the given bn_params."""
    returns = {}
    for i in range(1, s["hidden"] + 1):
        returns[f"rm{i}"] = {"item": [f"bn{i}", "running_mean"]}
        returns[f"rv{i}"] = {"item": [f"bn{i}", "running_var"]}
    return returns


def plan_dropout_test(s):
    calls = [
        _mlp(s, name, y=False, p_drop=s["p_drop"], mode="test", seed=seed)
        for name, seed in (("scores_a", s["seed"]), ("scores_b", s["seed2"]))
    ]
    return _setup(s) + calls


def plan_bn_test(s, mode="test", fresh=False):
    return _setup(s, fresh=fresh) + [
        _mlp(s, "scores", y=False, mode=mode),
        _mlp(s, "scores_head", X="X_head", y=False, mode=mode),
    ]


def plan_bn_train(s):
    return _setup(s) + [_mlp(s, "scores", y=False, seed=1)]


def plan_loss(s):
    return _setup(s) + [_mlp(s, ["loss", "grads"], lam=s["lam"], seed=2)]


def plan_gradcheck(s):
    keys, seed, p, lam = s["keys"].split(","), s["seed"], s["p_drop"], s["lam"]
    plan = _setup(s) + [
        _mlp(s, ["loss", "grads"], p_drop=p, lam=lam, seed=seed),
        _mlp(s, ["loss_again", "grads_again"], p_drop=p, lam=lam, seed=seed),
    ]
    for k in keys:
        for sign in "+-":
            plan.append(_params(f"params{sign}{k}", s, {k: f"{k}{sign}"}))
            out = [f"loss{sign}{k}", f"grads{sign}{k}"]
            plan.append(_mlp(s, out, params=f"params{sign}{k}", p_drop=p, lam=lam, seed=seed))
    # the same along one direction in all parameters at once, with dropout off (a diagnosis)
    plan.append(_mlp(s, ["loss0", "grads0"], lam=lam, seed=seed))
    for sign in "+-":
        plan.append(_params(f"params0{sign}", s, {k: f"{k}@{sign}" for k in keys}))
        out = [f"loss0{sign}", f"grads0{sign}"]
        plan.append(_mlp(s, out, params=f"params0{sign}", lam=lam, seed=seed))
    return plan


def returns_gradcheck(s):
    keys = s["keys"].split(",")
    returns = {"loss": var("loss"), "loss_again": var("loss_again"), "loss0": var("loss0")}
    returns |= {f"d{k}": {"item": ["grads", k]} for k in keys}
    returns |= {f"d0{k}": {"item": ["grads0", k]} for k in keys}
    for k in keys:
        returns |= {f"loss{sign}{k}": var(f"loss{sign}{k}") for sign in "+-"}
    return returns | {f"loss0{sign}": var(f"loss0{sign}") for sign in "+-"}


def plan_bn_layer(s):
    return [
        let("bn", _bn_param(s["mode"], "rm", "rv")),
        call(
            "batchnorm_forward",
            given("x"),
            given("gamma"),
            given("beta"),
            var("bn"),
            out=["out", "cache"],
        ),
        call("batchnorm_backward", given("dout"), var("cache"), out=["dx", "dgamma", "dbeta"]),
    ]


def plan_dropout_layer(s):
    forward = call(
        "dropout_forward",
        var("x"),
        s["p_drop"],
        mode=s["mode"],
        rng=generator(s["seed"]),
        out=["out", "cache"],
    )
    plan = [let("x", given("x")), forward]
    if s.get("backward"):
        plan.append(call("dropout_backward", given("dout"), var("cache"), out="dx"))
    return plan


# --------------------------------------------------------------------------- trusted extras
def _rerun(case: Case, reference, plan, returns) -> dict:
    """The reference's returns of a variant of ``case``'s plan, at the same inputs."""
    return expected_by_plan(reference, ("mlp_loss",), replace(case, plan=plan, returns=returns))


def derive_bn_test(case: Case, reference) -> dict:
    """What the catalogued test-mode mistakes give: the batch's own statistics, and new
    bn_params with the default running statistics (mean 0, variance 1)."""
    s, returns = case.params, {"scores": var("scores")}
    batch = _rerun(case, reference, plan_bn_test(s, mode="train"), returns)
    default = _rerun(case, reference, plan_bn_test(s, fresh=True), returns)
    return {"batch_stats": batch["scores"], "default_stats": default["scores"]}


def derive_data(case: Case, reference) -> dict:
    """The data loss and its gradients alone (λ = 0), for the penalty's mistakes."""
    s = {**case.params, "lam": 0.0}
    keys = s["keys"].split(",")
    returns = {"loss": var("loss")} | {f"d{k}": {"item": ["grads", k]} for k in keys}
    data = _rerun(case, reference, plan_loss(s), returns)
    return {f"data_{name}": value for name, value in data.items()}


# --------------------------------------------------------------------------- comparing
def _error(answer: np.ndarray, expected: np.ndarray, floor: float = 0.0) -> float:
    """Largest difference relative to the largest entry (of either array, or ``floor``)."""
    if answer.size == 0:
        return 0.0
    scale = max(float(np.abs(expected).max()), float(np.abs(answer).max()), floor, 1e-12)
    return float(np.abs(answer - expected).max() / scale)


def _scalar_error(answer: float, expected: float) -> float:
    return abs(answer - expected) / max(abs(expected), abs(answer), 1e-12)


def _describe_error(error: float) -> str:
    return (
        f"error {error:.2e} > tolerance {VALUE_TOL:.0e} "
        "(largest difference relative to the largest entry)"
    )


def _loss(outputs, name: str, notes: list, big_scores: bool = False, what: str = "loss") -> float:
    value = outputs.get(name)
    if big_scores and value is not None and value.array is not None and value.array.size == 1:
        if not np.all(np.isfinite(value.array)):
            raise Mismatch(
                f"the loss is {value.array.reshape(-1)[0]} for scores near 800",
                ("capstone.softmax_overflow",),
            )
    return as_scalar(value, what, notes)


def _gradients(case: Case, outputs, prefix: str, notes: list) -> dict[str, np.ndarray]:
    grads = {}
    for k in case.params["keys"].split(","):
        value = outputs.get(f"{prefix}{k}")
        if value is None or value.kind == "none":
            raise Mismatch(
                f"grads has no entry {k!r}: return a dict with the same keys as params "
                f"({case.params['keys'].replace(',', ', ')})"
            )
        grads[k] = as_array(value, f"grads[{k!r}]", case.inputs[k].shape, notes)
    return grads


# --------------------------------------------------------------------------- loss mistakes
def _group(key: str) -> str:
    if key.startswith("W"):
        return "W"
    return "b" if key.startswith("b") and not key.startswith("beta") else "bn"


@dataclass(frozen=True)
class LossMistake:
    """A catalogued mistake of the loss: ``scale`` × data loss + ``penalty``, whose exact
    gradient is ``scale`` × data gradient + ``extra[k]`` (analytic, from the parameters)."""

    misconception: str
    description: str
    scale: float
    penalty: float
    extra: dict
    per_key: bool = True  # named for a single gradient array too (not "every parameter")

    def loss(self, data: float) -> float:
        return self.scale * data + self.penalty

    def gradient(self, key: str, data: np.ndarray) -> np.ndarray:
        return self.scale * data + self.extra[key]


def loss_mistakes(case: Case) -> list[LossMistake]:
    """The right loss first, then every catalogued mistake of it that differs from the right
    loss at this case (a mistake that does not change the loss here cannot be named)."""
    keys, lam, n = case.params["keys"].split(","), case.params["lam"], case.params["n"]
    p = {k: case.inputs[k] for k in keys}
    sq = {
        g: sum(float(np.sum(p[k] ** 2)) for k in keys if _group(k) == g) for g in ("W", "b", "bn")
    }
    norms = {k: float(np.linalg.norm(p[k])) for k in keys if _group(k) == "W"}
    pen = 0.5 * lam * sq["W"]

    def terms(groups=("W",), w_factor=1.0, w_term=None) -> dict:
        out = {}
        for k in keys:
            g = _group(k)
            if g == "W":
                out[k] = w_factor * lam * p[k] if w_term is None else w_term(k)
            else:
                out[k] = lam * p[k] if g in groups else np.zeros_like(p[k])
        return out

    total = np.sqrt(sq["W"])
    mistakes = [
        LossMistake("", "the right loss", 1.0, pen, terms()),
        LossMistake(
            PENALTY_HALF, "the penalty is λ·Σ‖W‖² (no ½)", 1.0, 2 * pen, terms(w_factor=2.0)
        ),
        LossMistake(
            PENALTY_SQRT,
            "the penalty uses the norms, not their squares",
            1.0,
            0.5 * lam * sum(norms.values()),
            terms(w_term=lambda k: 0.5 * lam * p[k] / norms[k]),
        ),
        LossMistake(
            PENALTY_SQRT,
            "the penalty uses the norms, not their squares",
            1.0,
            0.5 * lam * total,
            terms(w_term=lambda k: 0.5 * lam * p[k] / total),
        ),
        LossMistake(
            "capstone.penalty_on_biases",
            "the penalty includes the biases",
            1.0,
            pen + 0.5 * lam * sq["b"],
            terms(("W", "b")),
        ),
        LossMistake(
            "capstone.penalty_on_bn_params",
            "the penalty includes γ and β",
            1.0,
            pen + 0.5 * lam * sq["bn"],
            terms(("W", "bn")),
        ),
        LossMistake(
            "capstone.batch_mean_missing",
            "the data loss is summed over the batch, not averaged",
            float(n),
            pen,
            terms(),
        ),
    ]
    if sq["bn"]:
        every = pen + 0.5 * lam * (sq["b"] + sq["bn"])
        for mid in ("capstone.penalty_on_biases", "capstone.penalty_on_bn_params"):
            mistakes.append(
                LossMistake(
                    mid,
                    "the penalty includes every parameter",
                    1.0,
                    every,
                    terms(("W", "b", "bn")),
                    per_key=False,
                )
            )
    data = float(case.expected["data_loss"])
    right = mistakes[0].loss(data)
    return [mistakes[0]] + [
        m for m in mistakes[1:] if _scalar_error(m.loss(data), right) > 10 * VALUE_TOL
    ]


def _loss_verdict(case: Case, loss: float, expected: float) -> tuple[float, list[LossMistake]]:
    """The loss's relative error and the catalogued mistakes it matches (none when right)."""
    floor = BIG_SCORES_FLOOR if case.params.get("big_scores") else 0.0
    # scores near 800 are rounded by up to ulp(800) = 6e-5 in float32 (a correct float32 answer
    # is off by up to 5e-5 on many salts): there the error is relative to the scores' size
    error = abs(loss - expected) / max(abs(expected), abs(loss), floor, 1e-12)
    if error <= VALUE_TOL:
        return error, []
    data = float(case.expected["data_loss"])
    found = [m for m in loss_mistakes(case)[1:] if _scalar_error(loss, m.loss(data)) <= VALUE_TOL]
    return error, found


def _carried_message(mistake: LossMistake, what: str) -> str:
    return (
        f"your loss matches {mistake.description} [{mistake.misconception}], which is charged "
        f"in {LOSS_CHECK}; {what}, so they keep their points (errors carried forward)"
    )


# --------------------------------------------------------------------------- judges
def judge_bn_layer(case: Case, got) -> CaseResult:
    result = compare(tol=VALUE_TOL, error=_error)(case, got)
    if not result.passed and "differ" in result.message:
        result.message = (
            f"your batch norm from notebook 03: {result.message}; run notebook 03's checks on "
            "it, fix it, paste it again"
        )
    elif result.passed:
        result.message = "the same batch norm as notebook 03"
    return result


def judge_dropout_test(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    expected = case.expected["scores_a"]
    a = as_array(outputs.get("scores_a"), "scores (first call)", expected.shape, notes)
    b = as_array(outputs.get("scores_b"), "scores (second call)", expected.shape, notes)
    if _error(a, b) > VALUE_TOL:
        raise Mismatch(
            f'two calls with mode="test" gave different scores (they differ by {_error(a, b):.1e} '
            "relative to the largest score): units are still being dropped at test time",
            ("capstone.dropout_at_test",),
        )
    error = _error(a, expected)
    if error > VALUE_TOL:
        raise Mismatch(f"test-mode scores are off: {_describe_error(error)}")
    return CaseResult(
        case.name, True, "test-mode scores are deterministic and right", notes=tuple(notes)
    )


def judge_bn_test(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    expected = case.expected["scores"]
    head = case.params["head"]
    scores = as_array(outputs.get("scores"), "scores", expected.shape, notes)
    scores_head = as_array(
        outputs.get("scores_head"),
        f"scores of the first {head} rows",
        (head, expected.shape[1]),
        notes,
    )
    problems, diagnosis, changed = [], [], []
    for i in range(1, case.params["hidden"] + 1):
        for name, label in ((f"rm{i}", "running_mean"), (f"rv{i}", "running_var")):
            value = outputs.get(name)
            if value is None or value.array is None or value.array.shape != case.inputs[name].shape:
                continue
            if not np.allclose(value.array, case.inputs[name], rtol=1e-12, atol=0):
                changed.append(f"layer {i}'s {label}")
    error = _error(scores, expected)
    if error > VALUE_TOL:
        problems.append(f"test-mode scores are off: {_describe_error(error)}")
        if _error(scores, case.expected["batch_stats"]) <= VALUE_TOL:
            problems.append("they are the scores batch norm gives with the batch's own statistics")
            diagnosis.append("capstone.bn_train_at_test")
        elif _error(scores, case.expected["default_stats"]) <= VALUE_TOL:
            problems.append(
                "they are the scores with the default running statistics (mean 0, variance 1), "
                "not the ones in the bn_params you were given"
            )
            diagnosis.append("capstone.bn_state_lost")
    head_error = _error(scores_head, scores[:head])
    if head_error > VALUE_TOL:
        problems.append(
            f"the first {head} row(s) get different scores alone than inside the batch "
            f"(by {head_error:.1e}): in test mode an example must not depend on the others"
        )
        diagnosis.append("capstone.bn_train_at_test")
    if changed:
        problems.append("a test-mode call changed " + ", ".join(changed))
        diagnosis.append("capstone.bn_train_at_test" if diagnosis else "bn.running_updated_in_test")
    if problems:
        raise Mismatch("; ".join(problems), tuple(dict.fromkeys(diagnosis)))
    message = "running statistics used, independent of the batch, left unchanged"
    return CaseResult(case.name, True, message, notes=tuple(notes))


def judge_bn_train(case: Case, got) -> CaseResult:
    """Scores and the running statistics left in the given bn_params, against the reference;
    statistics left as they were name ``capstone.bn_state_lost``."""
    stats = [
        (f"{s}{i}", f"layer {i}'s bn_param[{label!r}]")
        for i in range(1, case.params["hidden"] + 1)
        for s, label in (("rm", "running_mean"), ("rv", "running_var"))
    ]
    lost = Variant(
        "capstone.bn_state_lost",
        "the statistics you were given, unchanged after a training call",
        {name: case.inputs[name] for name, _ in stats},
    )
    judge = compare(tol=VALUE_TOL, error=_error, labels=dict(stats), variants=lambda _: [lost])
    return judge(case, got)


def judge_loss(case: Case, outputs) -> CaseResult:
    notes: list[str] = []
    loss = _loss(outputs, "loss", notes, case.params["big_scores"])
    expected = float(case.expected["loss"])
    error, found = _loss_verdict(case, loss, expected)
    if error <= VALUE_TOL:
        return CaseResult(case.name, True, f"loss {loss:.6g}", notes=tuple(notes))
    message = (
        f"loss {loss:.6g}, expected {expected:.6g} (relative error {error:.1e} > {VALUE_TOL:.0e})"
    )
    if found:
        message += ": " + "; ".join(dict.fromkeys(m.description for m in found))
    elif case.params["lam"] and _scalar_error(loss, float(case.expected["data_loss"])) <= VALUE_TOL:
        message += ": that is the data loss alone, without the penalty (λ/2)·Σ‖W_l‖²"
    raise Mismatch(message, tuple(dict.fromkeys(m.misconception for m in found)))


def judge_grads(case: Case, outputs) -> CaseResult:
    """Every gradient against the reference; errors carried forward: a loss that is a
    catalogued mistake (charged in capstone_loss) with the exact gradients of that mistaken
    loss keeps the points (both verdicts are stored)."""
    notes: list[str] = []
    keys = case.params["keys"].split(",")
    grads = _gradients(case, outputs, "d", notes)
    expected = {k: case.expected[f"d{k}"] for k in keys}
    data = {k: case.expected[f"data_d{k}"] for k in keys}
    floor = max(float(np.abs(g).max()) for g in expected.values())
    errors = {k: _error(grads[k], expected[k], floor) for k in keys}
    wrong = [k for k in keys if errors[k] > GRAD_TOL]
    if not wrong:
        message = f"every gradient matches, max error {max(errors.values()):.1e}"
        return CaseResult(case.name, True, message, notes=tuple(notes))
    try:
        loss = as_scalar(outputs.get("loss"), "loss", [])
    except Mismatch:
        loss = None
    if loss is not None:
        for mistake in _loss_verdict(case, loss, float(case.expected["loss"]))[1]:
            if all(_error(grads[k], mistake.gradient(k, data[k]), floor) <= GRAD_TOL for k in keys):
                message = _carried_message(mistake, "these gradients are exact for your loss")
                return CaseResult(
                    case.name,
                    False,
                    message,
                    notes=tuple(notes),
                    carried_forward=True,
                    charged_in=LOSS_CHECK,
                )
    mistakes = [m for m in loss_mistakes(case)[1:] if m.per_key]
    found: dict[str, str] = {}
    details = []
    for k in wrong:  # the gradient's own mistakes (its loss being right)
        candidates = [(m.misconception, m.description, m.gradient(k, data[k])) for m in mistakes]
        if _group(k) == "W":
            candidates.append(("capstone.penalty_grad_missing", "no λ·W term", data[k]))
        explained = [
            (mid, text)
            for mid, text, value in candidates
            if _error(value, expected[k], floor) > 10 * GRAD_TOL
            and _error(grads[k], value, floor) <= GRAD_TOL
        ]
        details.append(
            f"{k} (error {errors[k]:.1e}" + (f": {explained[0][1]})" if explained else ")")
        )
        for mid, text in explained:
            found.setdefault(mid, text)
    raise Mismatch(
        f"gradients differ from the expected ones for {', '.join(details)}; tolerance {GRAD_TOL:.0e} "
        "(largest difference relative to the largest expected gradient entry in the network)",
        tuple(found),
    )


def judge_gradcheck(case: Case, outputs) -> CaseResult:
    """Gradients against finite differences of the student's own loss, dropout on (see the
    module docstring), behind a gate: the loss with dropout off must be the right one or a
    catalogued mistake of it. With such a mistake (charged in capstone_loss), gradients that
    agree with the finite differences of that loss are carried forward; gradients right for the
    correct loss (the finite differences with the mistake's analytic part taken out) pass."""
    notes: list[str] = []
    keys = case.params["keys"].split(",")
    h, lam = case.params["h"], case.params["lam"]
    # The gate (issue 10): agreeing with finite differences of your own loss proves nothing if
    # that loss is degenerate (a constant with zero gradients agrees perfectly).
    loss0 = _loss(outputs, "loss0", notes, what="loss with p_drop=0")
    expected0 = float(case.expected["loss0"])
    error0, found = _loss_verdict(case, loss0, expected0)
    if error0 > VALUE_TOL and not found:
        extra = ""
        if lam and _scalar_error(loss0, float(case.expected["data_loss"])) <= VALUE_TOL:
            extra = ": that is the data loss alone, without the penalty (λ/2)·Σ‖W_l‖²"
        raise Mismatch(
            "with p_drop=0 your loss is not the mean cross-entropy plus the penalty (loss "
            f"{loss0:.6g}, expected {expected0:.6g}, relative error {error0:.1e}{extra}), so "
            "agreeing with finite differences of it proves nothing about the gradients"
        )
    mistake = found[0] if found else None
    loss = as_scalar(outputs.get("loss"), "loss", notes)
    again = as_scalar(outputs.get("loss_again"), "loss (second call)", notes)
    if _scalar_error(again, loss) > 1e-9:
        raise Mismatch(
            f"two calls with generators made from the same seed gave different losses ({loss:.8g} "
            f"and {again:.8g}): the dropout masks do not come from rng, so the loss is not a "
            "function of the parameters and no gradient check can work",
            ("capstone.rng_not_passed",),
        )
    grads = _gradients(case, outputs, "d", notes)
    atol = FD_ATOL * max(1.0, abs(loss))
    mistakes = loss_mistakes(case)
    right = mistakes[0]

    def disagreement(analytic: float, numeric: float) -> float:
        return abs(analytic - numeric) / (FD_RTOL * (abs(analytic) + abs(numeric)) + atol)

    own, corrected, diagnosis = [], [], []
    for k in keys:
        step = (case.inputs[f"{k}+"] - case.inputs[f"{k}-"]) / 2.0  # h·v
        analytic = float(np.sum(grads[k] * step)) / h
        plus = as_scalar(outputs.get(f"loss+{k}"), f"loss at {k} + h·v", notes)
        minus = as_scalar(outputs.get(f"loss-{k}"), f"loss at {k} - h·v", notes)
        numeric = (plus - minus) / (2.0 * h)
        if mistake is not None:  # the directional derivative of the right loss
            data_step = (numeric - float(np.sum(mistake.extra[k] * step)) / h) / mistake.scale
            if disagreement(analytic, data_step + float(np.sum(right.extra[k] * step)) / h) > 1.0:
                corrected.append(k)
        if disagreement(analytic, numeric) <= 1.0:
            continue
        own.append(f"{k}: grads say {analytic:.6g}, finite differences {numeric:.6g}")
        # what the gradients would say with each mistake of theirs (the loss being right)
        data_step = numeric - float(np.sum(right.extra[k] * step)) / h
        fits = [
            (
                disagreement(analytic, m.scale * data_step + float(np.sum(m.extra[k] * step)) / h),
                m.misconception,
            )
            for m in mistakes[1:]
            if m.per_key
        ]
        if _group(k) == "W":
            fits.append((disagreement(analytic, data_step), "capstone.penalty_grad_missing"))
        if fits:
            best, mid = min(fits)
            if best <= 1.0:
                diagnosis.append(mid)
    if mistake is not None and not corrected:
        message = (
            f"your loss matches {mistake.description} [{mistake.misconception}], charged in "
            f"{LOSS_CHECK}; your gradients are right for the correct loss: all {len(keys)} "
            "directional derivatives agree with finite differences of your loss once that "
            "mistake's part is taken out"
        )
        return CaseResult(case.name, True, message, notes=tuple(notes))
    if not own:
        message = f"all {len(keys)} directional derivatives agree with finite differences (h={h:g})"
        if mistake is None:
            return CaseResult(case.name, True, message, notes=tuple(notes))
        message = _carried_message(mistake, message + " of your own loss")
        return CaseResult(
            case.name,
            False,
            message,
            notes=tuple(notes),
            carried_forward=True,
            charged_in=LOSS_CHECK,
        )
    message = (
        "along a random direction v in each parameter array, Σ grads·v should equal "
        f"(J(θ + h v) − J(θ − h v)) / 2h with h = {h:g} (the same masks in every call): "
        + "; ".join(own)
    )
    # with dropout off: do the gradients agree along a direction in all parameters at once?
    grads0 = _gradients(case, outputs, "d0", notes)
    step0 = {k: (case.inputs[f"{k}@+"] - case.inputs[f"{k}@-"]) / 2.0 for k in keys}
    analytic0 = sum(float(np.sum(grads0[k] * step0[k])) for k in keys) / h
    plus0 = as_scalar(outputs.get("loss0+"), "loss with p_drop=0 at θ + h·v", notes)
    minus0 = as_scalar(outputs.get("loss0-"), "loss with p_drop=0 at θ - h·v", notes)
    if not diagnosis and disagreement(analytic0, (plus0 - minus0) / (2.0 * h)) <= 1.0:
        message += (
            ". With p_drop=0 the same check passes, so the gradient goes wrong where dropout is"
        )
        diagnosis.append("capstone.dropout_backward_skipped")
    raise Mismatch(message, tuple(dict.fromkeys(diagnosis)))


# --------------------------------------------------------------------------- kinds
def _describe(s, extra: str) -> str:
    arch = " → ".join(s["dims"].split(","))
    return f"{'BN' if s['bn'] else 'plain'} network {arch}, N={s['n']}, {extra}"


def _grads_returns(s) -> dict:
    return {"loss": var("loss")} | {f"d{k}": {"item": ["grads", k]} for k in s["keys"].split(",")}


def _dropout_layer_title(s) -> str:
    shape = f"x of shape ({s['n']}, {s['d']}), p_drop={s['p_drop']}"
    if s.get("backward"):
        return f"backward, {s['mode']} mode: {shape}, random dout"
    return f"dropout_forward, {s['mode']} mode: {shape}"


DROPOUT = ("dropout_forward",)
KINDS = [
    Kind(
        "layer_dropout_test",
        DROPOUT,
        make_dropout_layer,
        plan_dropout_layer,
        {"out": var("out"), "x_after": var("x")},
        dropout_checks.judge_test_mode,
        _dropout_layer_title,
        reference=False,
    ),
    Kind(
        "layer_dropout_forward",
        DROPOUT,
        make_dropout_layer,
        plan_dropout_layer,
        {"out": var("out"), "x_after": var("x")},
        dropout_checks.judge_train_forward,
        _dropout_layer_title,
        reference=False,
    ),
    Kind(
        "layer_dropout_backward",
        (*DROPOUT, "dropout_backward"),
        make_dropout_layer,
        plan_dropout_layer,
        {"out": var("out"), "dx": var("dx")},
        dropout_checks.judge_backward,
        _dropout_layer_title,
        reference=False,
    ),
    Kind(
        "layer_batchnorm",
        ("batchnorm_forward", "batchnorm_backward"),
        make_bn_layer,
        plan_bn_layer,
        {
            "out": var("out"),
            "dx": var("dx"),
            "dgamma": var("dgamma"),
            "dbeta": var("dbeta"),
            "running_mean": {"item": ["bn", "running_mean"]},
            "running_var": {"item": ["bn", "running_var"]},
        },
        judge_bn_layer,
        lambda s: (
            f"batchnorm_forward and batchnorm_backward, {s['mode']} mode: "
            f"x of shape ({s['n']}, {s['d']})"
        ),
    ),
    Kind(
        "dropout_test",
        ("mlp_loss",),
        make_network,
        plan_dropout_test,
        {"scores_a": var("scores_a"), "scores_b": var("scores_b")},
        judge_dropout_test,
        lambda s: _describe(s, f'mode="test", p_drop={s["p_drop"]}: two calls'),
    ),
    Kind(
        "bn_test",
        ("mlp_loss",),
        make_network,
        plan_bn_test,
        lambda s: {"scores": var("scores"), "scores_head": var("scores_head")} | _statistics(s),
        judge_bn_test,
        lambda s: _describe(s, f'mode="test", then its first {s["head"]} rows alone'),
        derive=derive_bn_test,
    ),
    Kind(
        "bn_train",
        ("mlp_loss",),
        make_network,
        plan_bn_train,
        lambda s: {"scores": var("scores")} | _statistics(s),
        judge_bn_train,
        lambda s: _describe(s, 'mode="train", p_drop=0, y=None: scores and running statistics'),
    ),
    Kind(
        "loss",
        ("mlp_loss",),
        make_network,
        plan_loss,
        {"loss": var("loss")},
        judge_loss,
        lambda s: (
            _describe(
                s,
                f"λ={s['lam']:g}, p_drop=0" + (", every score near 800" if s["big_scores"] else ""),
            )
            + ": loss"
        ),
        derive=derive_data,
    ),
    Kind(
        "grads",
        ("mlp_loss",),
        make_network,
        plan_loss,
        _grads_returns,
        judge_grads,
        lambda s: _describe(s, f"λ={s['lam']:g}, p_drop=0: every gradient"),
        derive=derive_data,
    ),
    Kind(
        "gradcheck",
        ("mlp_loss",),
        make_gradcheck,
        plan_gradcheck,
        returns_gradcheck,
        judge_gradcheck,
        lambda s: (
            _describe(s, f"λ={s['lam']:g}, p_drop={s['p_drop']}, one generator seed for every call")
            + ": gradients vs finite differences of your own loss"
        ),
        derive=derive_data,
    ),
]


# --------------------------------------------------------------------------- rows
def net(kind: str, n: int, dims: list[int], bn: bool, **settings) -> Spec:
    """A case on a network of layer widths ``dims`` (with batch norm if ``bn``)."""
    keys = ",".join(_keys(len(dims) - 1, bn))
    dims_ = ",".join(str(d) for d in dims)
    if kind in ("loss", "grads", "gradcheck"):
        settings = {"big_scores": False} | settings
    return Spec(kind, n=n, dims=dims_, bn=bn, hidden=len(dims) - 2, keys=keys, **settings)


def gradcheck(dims: list[int], p_drop: float, lam: float, seed: int) -> Spec:
    # N = 10: |x_hat| <= sqrt(N - 1) = 3, see _network(smooth=True)
    return net("gradcheck", 10, dims, True, p_drop=p_drop, lam=lam, seed=seed, h=FD_STEP)


def _hidden_dims(rng) -> list[int]:
    n_hidden = int(rng.integers(2, 4))
    return (
        [int(rng.integers(4, 9))]
        + [int(w) for w in rng.integers(4, 10, n_hidden)]
        + [int(rng.integers(3, 6))]
    )


def _seed(rng) -> int:
    return int(rng.integers(2**32))


def hidden_forward(rng) -> list[Spec]:
    n = int(rng.integers(8, 16))
    p_drop = float(rng.choice([0.2, 0.4, 0.6]))
    return [
        net(
            "dropout_test",
            n,
            _hidden_dims(rng),
            False,
            p_drop=p_drop,
            seed=_seed(rng),
            seed2=_seed(rng),
        ),
        net("bn_test", n, _hidden_dims(rng), True, head=int(rng.integers(1, 4))),
        net("bn_train", n, _hidden_dims(rng), True),
        net("loss", n, _hidden_dims(rng), True, lam=float(rng.uniform(0.05, 0.2))),
    ]


def hidden_backward(rng) -> list[Spec]:
    n = int(rng.integers(8, 16))
    return [
        net("grads", n, _hidden_dims(rng), False, lam=float(rng.uniform(0.05, 0.2))),
        net("grads", n, _hidden_dims(rng), True, lam=float(rng.uniform(0.05, 0.2))),
        gradcheck(
            _hidden_dims(rng),
            float(rng.choice([0.2, 0.4])),
            float(rng.uniform(0.05, 0.2)),
            _seed(rng),
        ),
    ]


A, B = [6, 7, 5, 4], [5, 6, 7, 3]
ROWS = [
    Row(
        "capstone_layers",
        "your dropout and batch norm, pasted from notebooks 02 and 03",
        1,
        [
            Spec("layer_dropout_test", n=8, d=20, p_drop=0.3, mode="test", seed=9104),
            Spec("layer_dropout_forward", n=60, d=120, p_drop=0.3, mode="train", seed=9105),
            Spec(
                "layer_dropout_backward",
                n=30,
                d=40,
                p_drop=0.3,
                mode="train",
                seed=9106,
                backward=True,
            ),
            Spec("layer_batchnorm", n=8, d=5, mode="train"),
            Spec("layer_batchnorm", n=6, d=4, mode="test"),
        ],
    ),
    Row(
        "capstone_scores",
        "class scores in test and train mode",
        2,
        [
            net("dropout_test", 8, A, False, p_drop=0.3, seed=4041, seed2=4042),
            net("bn_test", 10, A, True, head=3),
            net("bn_train", 9, B, True),
        ],
    ),
    Row(
        "capstone_loss",
        "loss: mean cross-entropy plus (λ/2)·Σ‖W‖²",
        2,
        [
            net("loss", 8, A, False, lam=0.0, big_scores=True),
            net("loss", 8, A, False, lam=0.1),
            net("loss", 10, B, True, lam=0.07),
        ],
    ),
    Row(
        "capstone_gradients",
        "every gradient, p_drop = 0",
        3,
        [net("grads", 8, A, False, lam=0.1), net("grads", 10, B, True, lam=0.07)],
    ),
    Row(
        "capstone_gradcheck_dropout",
        "gradients agree with finite differences of your own loss, dropout on",
        2,
        [gradcheck(A, 0.3, 0.05, 4043)],
    ),
    Row(
        "capstone_hidden_forward",
        "scores and loss on hidden networks",
        1,
        hidden_forward,
        hidden=True,
    ),
    Row(
        "capstone_hidden_backward",
        "gradients on hidden networks, dropout on and off",
        2,
        hidden_backward,
        hidden=True,
    ),
]

TOPIC = Topic(
    notebook="04_capstone",
    functions=(
        "dropout_forward",
        "dropout_backward",
        "batchnorm_forward",
        "batchnorm_backward",
        "mlp_loss",
    ),
    misconceptions=CATALOGUE,
    kinds=KINDS,
    rows=ROWS,
)
NOTEBOOK = TOPIC.notebook
FUNCTIONS = TOPIC.functions
MISCONCEPTIONS = TOPIC.catalogue
CHECKS = TOPIC.checks()
