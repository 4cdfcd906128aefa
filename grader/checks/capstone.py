r"""Checks for notebook 04, the capstone: one network with batch norm, dropout and an L2 penalty.

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

import numpy as np

from grader.checks import dropout as dropout_checks
from grader.checks.base import (
    Case,
    CaseResult,
    Check,
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

NOTEBOOK = "04_capstone"
FUNCTIONS = (
    "dropout_forward",
    "dropout_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "mlp_loss",
)
VALUE_TOL = 1e-5
GRAD_TOL = 1e-5
FD_STEP = 1e-3  # finite-difference step along a unit direction (the loss is smooth there)
FD_RTOL = 1e-4  # directional derivatives: |a - n| <= FD_RTOL (|a| + |n|) + FD_ATOL max(1, |J|)
FD_ATOL = 1e-3  # float32 round-off of the loss, ~1e-7 |J|, divided by 2h, with a margin of 20
BN_EPS, BN_MOMENTUM = 1e-3, 0.9
BIG_SCORES_FLOOR = 100.0  # loss errors of the 'every score near 800' case, relative to this

MISCONCEPTIONS = {
    m.id: m
    for m in [
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
}
PENALTY_HALF = "norms.l2_missing_half"  # the same mistakes as in notebook 01: the same ids
PENALTY_SQRT = "norms.l2_penalty_sqrt"


# --------------------------------------------------------------------------- networks
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


def _data(rng: np.random.Generator, n: int, d: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs shifted and scaled (5 + 3·noise), labels covering several classes."""
    X = 5.0 + 3.0 * rng.standard_normal((n, d))
    y = rng.permutation(np.arange(n) % c).astype(np.int64)
    return X, y


def _running(rng: np.random.Generator, width: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(0.0, 2.0, width), rng.uniform(0.5, 4.0, width)


def _bn_steps(hidden: list[int]) -> list[dict]:
    """Plan steps making one bn_param per hidden layer, as a trainer leaves them: mode "train"."""
    steps = [
        let(
            f"bn{i}",
            {
                "dict": {
                    "mode": "train",
                    "eps": BN_EPS,
                    "momentum": BN_MOMENTUM,
                    "running_mean": given(f"rm{i}"),
                    "running_var": given(f"rv{i}"),
                }
            },
        )
        for i in range(1, len(hidden) + 1)
    ]
    steps.append(
        let(
            "bn_params",
            {"list": [var(f"bn{i}") for i in range(1, len(hidden) + 1)]},
        )
    )
    return steps


def _params_expr(keys: list[str], replace: dict[str, str] | None = None) -> dict:
    replace = replace or {}
    return {"dict": {k: given(replace.get(k, k)) for k in keys}}


def _bn_inputs(rng, hidden) -> dict[str, np.ndarray]:
    inputs = {}
    for i, width in enumerate(hidden, start=1):
        inputs[f"rm{i}"], inputs[f"rv{i}"] = _running(rng, width)
    return inputs


def _bn_copies(inputs: dict, hidden: list[int]) -> list[dict]:
    """The same bn_params for the reference (fresh copies)."""
    return [
        {
            "mode": "train",
            "eps": BN_EPS,
            "momentum": BN_MOMENTUM,
            "running_mean": inputs[f"rm{i}"].copy(),
            "running_var": inputs[f"rv{i}"].copy(),
        }
        for i in range(1, len(hidden) + 1)
    ]


def _copy(params: dict) -> dict:
    return {k: v.copy() for k, v in params.items()}


def _describe(n, dims, bn, extra="") -> str:
    arch = " → ".join(str(d) for d in dims)
    return f"{'BN' if bn else 'plain'} network {arch}, N={n}" + (f", {extra}" if extra else "")


def _mlp_kwargs(p_drop, lam, mode, bn, seed=None) -> dict:
    kwargs = {"p_drop": p_drop, "lam": lam, "mode": mode}
    if bn:
        kwargs["bn_params"] = var("bn_params")
    if seed is not None:
        kwargs["rng"] = generator(seed)
    return kwargs


# --------------------------------------------------------------------------- case builders
def _scores_dropout_test_case(rng, reference, n, dims, p_drop) -> Case:
    """Test mode with p_drop > 0 (plain network): dropout must be off, the scores repeatable."""
    keys = _keys(len(dims) - 1, False)
    params = _network(rng, dims, False)
    X, _ = _data(rng, n, dims[0], dims[-1])
    s1, s2 = (int(s) for s in rng.integers(2**32, size=2))
    plan = [let("params", _params_expr(keys))]
    for name, seed in (("scores_a", s1), ("scores_b", s2)):
        plan.append(
            call(
                "mlp_loss",
                var("params"),
                given("X"),
                out=name,
                **_mlp_kwargs(p_drop, 0.0, "test", False, seed),
            )
        )
    expected = reference.mlp_loss(_copy(params), X.copy(), p_drop=p_drop, mode="test")
    return Case(
        name=_describe(n, dims, False, f'mode="test", p_drop={p_drop}: two calls'),
        plan=plan,
        returns={"scores_a": var("scores_a"), "scores_b": var("scores_b")},
        inputs={**params, "X": X},
        expected={"scores": expected},
        params={"kind": "dropout_test", "p_drop": p_drop, "keys": ",".join(keys)},
    )


def _scores_bn_test_case(rng, reference, n, dims, head) -> Case:
    """Test mode with batch norm: running statistics, no dependence on the rest of the batch."""
    hidden = dims[1:-1]
    keys = _keys(len(dims) - 1, True)
    params = _network(rng, dims, True)
    X, _ = _data(rng, n, dims[0], dims[-1])
    inputs = {**params, "X": X, "X_head": X[:head].copy(), **_bn_inputs(rng, hidden)}
    plan = [
        *_bn_steps(hidden),
        let("params", _params_expr(keys)),
        call(
            "mlp_loss",
            var("params"),
            given("X"),
            out="scores",
            **_mlp_kwargs(0.0, 0.0, "test", True),
        ),
        call(
            "mlp_loss",
            var("params"),
            given("X_head"),
            out="scores_head",
            **_mlp_kwargs(0.0, 0.0, "test", True),
        ),
    ]
    returns = {"scores": var("scores"), "scores_head": var("scores_head")}
    for i in range(1, len(hidden) + 1):
        returns[f"rm{i}"] = {"item": [f"bn{i}", "running_mean"]}
        returns[f"rv{i}"] = {"item": [f"bn{i}", "running_var"]}
    expected = reference.mlp_loss(
        _copy(params), X.copy(), mode="test", bn_params=_bn_copies(inputs, hidden)
    )
    batch_stats = reference.mlp_loss(
        _copy(params), X.copy(), mode="train", bn_params=_bn_copies(inputs, hidden)
    )
    fresh = [{"mode": "train"} for _ in hidden]
    default_stats = reference.mlp_loss(_copy(params), X.copy(), mode="test", bn_params=fresh)
    return Case(
        name=_describe(n, dims, True, f'mode="test", then its first {head} rows alone'),
        plan=plan,
        returns=returns,
        inputs=inputs,
        expected={"scores": expected, "batch_stats": batch_stats, "default_stats": default_stats},
        params={"kind": "bn_test", "head": head, "hidden": len(hidden), "keys": ",".join(keys)},
    )


def _scores_bn_train_case(rng, reference, n, dims) -> Case:
    """Train mode with batch norm, no dropout: batch statistics, running statistics updated."""
    hidden = dims[1:-1]
    keys = _keys(len(dims) - 1, True)
    params = _network(rng, dims, True)
    X, _ = _data(rng, n, dims[0], dims[-1])
    inputs = {**params, "X": X, **_bn_inputs(rng, hidden)}
    plan = [
        *_bn_steps(hidden),
        let("params", _params_expr(keys)),
        call(
            "mlp_loss",
            var("params"),
            given("X"),
            out="scores",
            **_mlp_kwargs(0.0, 0.0, "train", True, 1),
        ),
    ]
    returns = {"scores": var("scores")}
    for i in range(1, len(hidden) + 1):
        returns[f"rm{i}"] = {"item": [f"bn{i}", "running_mean"]}
        returns[f"rv{i}"] = {"item": [f"bn{i}", "running_var"]}
    bn_ref = _bn_copies(inputs, hidden)
    expected = {
        "scores": reference.mlp_loss(_copy(params), X.copy(), mode="train", bn_params=bn_ref)
    }
    for i, bn_param in enumerate(bn_ref, start=1):
        expected[f"rm{i}"], expected[f"rv{i}"] = bn_param["running_mean"], bn_param["running_var"]
    return Case(
        name=_describe(
            n, dims, True, 'mode="train", p_drop=0, y=None: scores and running statistics'
        ),
        plan=plan,
        returns=returns,
        inputs=inputs,
        expected=expected,
        params={"kind": "bn_train", "hidden": len(hidden), "keys": ",".join(keys)},
    )


def _loss_grad_case(rng, reference, n, dims, bn, lam, *, what, big_scores=False) -> Case:
    """Train mode, p_drop = 0: loss (``what="loss"``) or every gradient (``what="grads"``)."""
    hidden = dims[1:-1]
    keys = _keys(len(dims) - 1, bn)
    params = _network(rng, dims, bn)
    if big_scores:  # every score near 800: exp(800) overflows, exp(score - row max) does not
        params[f"b{len(dims) - 1}"] += 800.0
    X, y = _data(rng, n, dims[0], dims[-1])
    inputs = {**params, "X": X, "y": y}
    plan = [let("params", _params_expr(keys))]
    if bn:
        inputs.update(_bn_inputs(rng, hidden))
        plan = [*_bn_steps(hidden), *plan]
    plan.append(
        call(
            "mlp_loss",
            var("params"),
            given("X"),
            given("y"),
            out=["loss", "grads"],
            **_mlp_kwargs(0.0, lam, "train", bn, 2),
        )
    )

    def run(lam_):
        return reference.mlp_loss(
            _copy(params),
            X.copy(),
            y.copy(),
            lam=lam_,
            mode="train",
            bn_params=_bn_copies(inputs, hidden) if bn else None,
        )

    loss, grads = run(lam)
    data_loss, data_grads = run(0.0)
    if what == "loss":
        returns = {"loss": var("loss")}
        expected = {"loss": np.float64(loss), "data_loss": np.float64(data_loss)}
    else:
        returns = {f"d{k}": {"item": ["grads", k]} for k in keys}
        expected = {f"d{k}": grads[k] for k in keys} | {f"data_d{k}": data_grads[k] for k in keys}
    extra = f"λ={lam:g}, p_drop=0" + (", every score near 800" if big_scores else "")
    return Case(
        name=_describe(n, dims, bn, extra) + (": loss" if what == "loss" else ": every gradient"),
        plan=plan,
        returns=returns,
        inputs=inputs,
        expected=expected,
        params={"kind": what, "lam": lam, "keys": ",".join(keys), "n": n, "big_scores": big_scores},
    )


def _unit(rng, array: np.ndarray) -> np.ndarray:
    """A unit direction leaning towards ``array`` (so a stray λ·param shows up clearly)."""
    noise = rng.standard_normal(array.shape)
    direction = array / np.linalg.norm(array) + noise / np.linalg.norm(noise)
    return direction / np.linalg.norm(direction)


def _gradcheck_case(rng, reference, dims, p_drop, lam) -> Case:
    """Gradients against finite differences of the student's own loss, dropout on (fixed seed)."""
    n = 10  # |x_hat| <= sqrt(N - 1) = 3: see _network(smooth=True)
    hidden = dims[1:-1]
    keys = _keys(len(dims) - 1, True)
    params = _network(rng, dims, True, smooth=True)
    X, y = _data(rng, n, dims[0], dims[-1])
    inputs = {**params, "X": X, "y": y, **_bn_inputs(rng, hidden)}
    seed = int(rng.integers(2**32))
    h = FD_STEP
    plan = [*_bn_steps(hidden), let("params", _params_expr(keys))]
    drop = _mlp_kwargs(p_drop, lam, "train", True)
    plan.append(
        call(
            "mlp_loss",
            var("params"),
            given("X"),
            given("y"),
            out=["loss", "grads"],
            rng=generator(seed),
            **drop,
        )
    )
    plan.append(
        call(
            "mlp_loss",
            var("params"),
            given("X"),
            given("y"),
            out=["loss_again", "grads_again"],
            rng=generator(seed),
            **drop,
        )
    )
    returns = {"loss": var("loss"), "loss_again": var("loss_again")}
    returns |= {f"d{k}": {"item": ["grads", k]} for k in keys}
    for k in keys:
        v = _unit(rng, params[k])
        inputs[f"{k}+"], inputs[f"{k}-"] = params[k] + h * v, params[k] - h * v
        for sign in "+-":
            plan.append(let(f"params{sign}{k}", _params_expr(keys, {k: f"{k}{sign}"})))
            plan.append(
                call(
                    "mlp_loss",
                    var(f"params{sign}{k}"),
                    given("X"),
                    given("y"),
                    out=[f"loss{sign}{k}", f"grads{sign}{k}"],
                    rng=generator(seed),
                    **drop,
                )
            )
            returns[f"loss{sign}{k}"] = var(f"loss{sign}{k}")
    # the same along one direction in all parameters at once, with dropout off (a diagnosis)
    no_drop = _mlp_kwargs(0.0, lam, "train", True)
    plan.append(
        call(
            "mlp_loss",
            var("params"),
            given("X"),
            given("y"),
            out=["loss0", "grads0"],
            rng=generator(seed),
            **no_drop,
        )
    )
    returns |= {f"d0{k}": {"item": ["grads0", k]} for k in keys}
    returns["loss0"] = var("loss0")
    for k in keys:
        v = _unit(rng, params[k]) / np.sqrt(len(keys))
        inputs[f"{k}@+"], inputs[f"{k}@-"] = params[k] + h * v, params[k] - h * v
    for sign in "+-":
        plan.append(let(f"params0{sign}", _params_expr(keys, {k: f"{k}@{sign}" for k in keys})))
        plan.append(
            call(
                "mlp_loss",
                var(f"params0{sign}"),
                given("X"),
                given("y"),
                out=[f"loss0{sign}", f"grads0{sign}"],
                rng=generator(seed),
                **no_drop,
            )
        )
        returns[f"loss0{sign}"] = var(f"loss0{sign}")

    def reference_loss(lam_: float) -> np.float64:
        loss, _ = reference.mlp_loss(
            _copy(params),
            X.copy(),
            y.copy(),
            lam=lam_,
            mode="train",
            bn_params=_bn_copies(inputs, hidden),
        )
        return np.float64(loss)

    return Case(
        name=_describe(
            n, dims, True, f"λ={lam:g}, p_drop={p_drop}, one generator seed for every call"
        )
        + ": gradients vs finite differences of your own loss",
        plan=plan,
        returns=returns,
        inputs=inputs,
        # the gate: the loss with dropout off must be the reference's, or a catalogued mistake
        expected={"loss": reference_loss(lam), "data_loss": reference_loss(0.0)},
        params={
            "kind": "gradcheck",
            "lam": lam,
            "p_drop": p_drop,
            "keys": ",".join(keys),
            "h": h,
            "n": n,
            "big_scores": False,
        },
    )


def _bn_layer_case(rng, reference, n, d, mode) -> Case:
    """The pasted batch-norm layer, forward and backward, against the reference."""
    X = 5.0 + 3.0 * rng.standard_normal((n, d))
    gamma = rng.uniform(0.5, 2.0, d) * rng.choice([-1.0, 1.0], d)
    beta = rng.uniform(0.3, 1.5, d) * rng.choice([-1.0, 1.0], d)
    dout = rng.standard_normal((n, d))
    rm, rv = _running(rng, d)
    inputs = {"x": X, "gamma": gamma, "beta": beta, "dout": dout, "rm": rm, "rv": rv}
    bn_param = {
        "mode": mode,
        "eps": BN_EPS,
        "momentum": BN_MOMENTUM,
        "running_mean": rm.copy(),
        "running_var": rv.copy(),
    }
    out, cache = reference.batchnorm_forward(X.copy(), gamma.copy(), beta.copy(), bn_param)
    dx, dgamma, dbeta = reference.batchnorm_backward(dout.copy(), cache)
    return Case(
        name=f"batchnorm_forward and batchnorm_backward, {mode} mode: x of shape ({n}, {d})",
        plan=[
            let(
                "bn",
                {
                    "dict": {
                        "mode": mode,
                        "eps": BN_EPS,
                        "momentum": BN_MOMENTUM,
                        "running_mean": given("rm"),
                        "running_var": given("rv"),
                    }
                },
            ),
            call(
                "batchnorm_forward",
                given("x"),
                given("gamma"),
                given("beta"),
                var("bn"),
                out=["out", "cache"],
            ),
            call("batchnorm_backward", given("dout"), var("cache"), out=["dx", "dgamma", "dbeta"]),
        ],
        returns={
            "out": var("out"),
            "dx": var("dx"),
            "dgamma": var("dgamma"),
            "dbeta": var("dbeta"),
            "running_mean": {"item": ["bn", "running_mean"]},
            "running_var": {"item": ["bn", "running_var"]},
        },
        inputs=inputs,
        expected={
            "out": out,
            "dx": dx,
            "dgamma": dgamma,
            "dbeta": dbeta,
            "running_mean": bn_param["running_mean"],
            "running_var": bn_param["running_var"],
        },
        params={"kind": "layer_batchnorm", "mode": mode},
    )


# --------------------------------------------------------------------------- builders
def build_layers(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    test_mode = dropout_checks._forward_case(rng, 8, 20, 0.3, "")
    test_mode.plan[1]["kwargs"]["mode"] = "test"
    test_mode.name = "dropout_forward, test mode: x of shape (8, 20), p_drop=0.3"
    forward = dropout_checks._forward_case(rng, 60, 120, 0.3, "dropout_forward, train mode")
    backward = dropout_checks._backward_case(rng, 30, 40, 0.3, "train")
    for case, kind in ((test_mode, "test"), (forward, "forward"), (backward, "backward")):
        case.params["kind"] = f"layer_dropout_{kind}"
    return [
        test_mode,
        forward,
        backward,
        _bn_layer_case(rng, reference, 8, 5, "train"),
        _bn_layer_case(rng, reference, 6, 4, "test"),
    ]


def build_scores(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _scores_dropout_test_case(rng, reference, 8, [6, 7, 5, 4], 0.3),
        _scores_bn_test_case(rng, reference, 10, [6, 7, 5, 4], 3),
        _scores_bn_train_case(rng, reference, 9, [5, 6, 7, 3]),
    ]


def build_loss(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _loss_grad_case(rng, reference, 8, [6, 7, 5, 4], False, 0.0, what="loss", big_scores=True),
        _loss_grad_case(rng, reference, 8, [6, 7, 5, 4], False, 0.1, what="loss"),
        _loss_grad_case(rng, reference, 10, [5, 6, 7, 3], True, 0.07, what="loss"),
    ]


def build_gradients(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _loss_grad_case(rng, reference, 8, [6, 7, 5, 4], False, 0.1, what="grads"),
        _loss_grad_case(rng, reference, 10, [5, 6, 7, 3], True, 0.07, what="grads"),
    ]


def build_gradcheck(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [_gradcheck_case(rng, reference, [6, 7, 5, 4], 0.3, 0.05)]


def _hidden_dims(rng) -> list[int]:
    n_hidden = int(rng.integers(2, 4))
    return (
        [int(rng.integers(4, 9))]
        + [int(w) for w in rng.integers(4, 10, n_hidden)]
        + [int(rng.integers(3, 6))]
    )


def build_hidden_forward(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 16))
    return [
        _scores_dropout_test_case(
            rng, reference, n, _hidden_dims(rng), float(rng.choice([0.2, 0.4, 0.6]))
        ),
        _scores_bn_test_case(rng, reference, n, _hidden_dims(rng), int(rng.integers(1, 4))),
        _scores_bn_train_case(rng, reference, n, _hidden_dims(rng)),
        _loss_grad_case(
            rng, reference, n, _hidden_dims(rng), True, float(rng.uniform(0.05, 0.2)), what="loss"
        ),
    ]


def build_hidden_backward(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 16))
    return [
        _loss_grad_case(
            rng, reference, n, _hidden_dims(rng), False, float(rng.uniform(0.05, 0.2)), what="grads"
        ),
        _loss_grad_case(
            rng, reference, n, _hidden_dims(rng), True, float(rng.uniform(0.05, 0.2)), what="grads"
        ),
        _gradcheck_case(
            rng,
            reference,
            _hidden_dims(rng),
            float(rng.choice([0.2, 0.4])),
            float(rng.uniform(0.05, 0.2)),
        ),
    ]


# --------------------------------------------------------------------------- judging helpers
def _error(answer: np.ndarray, expected: np.ndarray, floor: float = 0.0) -> float:
    """Largest difference relative to the largest entry (of either array, or ``floor``)."""
    if answer.size == 0:
        return 0.0
    scale = max(float(np.abs(expected).max()), float(np.abs(answer).max()), floor, 1e-12)
    return float(np.abs(answer - expected).max() / scale)


def _scalar_error(answer: float, expected: float) -> float:
    return abs(answer - expected) / max(abs(expected), abs(answer), 1e-12)


def _loss(outputs, name: str, notes: list, big_scores: bool = False) -> float:
    value = outputs.get(name)
    if big_scores and value is not None and value.array is not None and value.array.size == 1:
        if not np.all(np.isfinite(value.array)):
            raise Mismatch(
                f"the loss is {value.array.reshape(-1)[0]} for scores near 800",
                ("capstone.softmax_overflow",),
            )
    return as_scalar(value, "loss", notes)


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


# --------------------------------------------------------------------------- judges
def judge_layers(case: Case, outputs) -> CaseResult:
    kind = case.params["kind"]
    if kind == "layer_dropout_test":
        return dropout_checks.judge_test_mode(case, outputs)
    if kind == "layer_dropout_forward":
        return dropout_checks.judge_train_forward(case, outputs)
    if kind == "layer_dropout_backward":
        return dropout_checks.judge_backward(case, outputs)
    notes: list[str] = []
    problems = []
    for name in ("out", "dx", "dgamma", "dbeta", "running_mean", "running_var"):
        expected = case.expected[name]
        answer = as_array(outputs.get(name), name, expected.shape, notes)
        error = _error(answer, expected)
        if error > VALUE_TOL:
            problems.append(f"{name} (error {error:.1e})")
    if problems:
        raise Mismatch(
            "your batch norm from notebook 03 differs from the expected one in "
            + ", ".join(problems)
            + f" (tolerance {VALUE_TOL:.0e}): run notebook 03's checks on it, fix it, paste it again"
        )
    return CaseResult(case.name, True, "the same batch norm as notebook 03", notes=tuple(notes))


def _judge_dropout_test(case, outputs, notes) -> str:
    expected = case.expected["scores"]
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
    return "test-mode scores are deterministic and right"


def _describe_error(error: float) -> str:
    return f"error {error:.2e} > tolerance {VALUE_TOL:.0e} (largest difference relative to the largest entry)"


def _judge_bn_test(case, outputs, notes) -> str:
    expected = case.expected["scores"]
    head = case.params["head"]
    scores = as_array(outputs.get("scores"), "scores", expected.shape, notes)
    scores_head = as_array(
        outputs.get("scores_head"),
        f"scores of the first {head} rows",
        (head, expected.shape[1]),
        notes,
    )
    problems, diagnosis = [], []
    changed = []
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
    return "running statistics used, independent of the batch, left unchanged"


def _judge_bn_train(case, outputs, notes) -> str:
    expected = case.expected["scores"]
    scores = as_array(outputs.get("scores"), "scores", expected.shape, notes)
    problems, diagnosis = [], []
    error = _error(scores, expected)
    if error > VALUE_TOL:
        problems.append(f"train-mode scores are off: {_describe_error(error)}")
    unchanged, wrong = [], []
    for i in range(1, case.params["hidden"] + 1):
        for name, label in ((f"rm{i}", "running_mean"), (f"rv{i}", "running_var")):
            value = outputs.get(name)
            answer = as_array(
                value, f"layer {i}'s bn_param[{label!r}]", case.inputs[name].shape, notes
            )
            if np.allclose(answer, case.inputs[name], rtol=1e-12, atol=0):
                unchanged.append(f"layer {i}'s {label}")
            elif _error(answer, case.expected[name]) > VALUE_TOL:
                wrong.append(f"layer {i}'s {label}")
    if unchanged:
        problems.append(
            "after a training call, " + ", ".join(unchanged) + " in the bn_params you were given "
            "did not change"
        )
        diagnosis.append("capstone.bn_state_lost")
    if wrong:
        problems.append(", ".join(wrong) + " changed, but not to the expected running average")
    if problems:
        raise Mismatch("; ".join(problems), tuple(diagnosis))
    return "batch statistics used, running statistics updated in the given bn_params"


def _penalties(case: Case) -> dict[str, float]:
    keys = case.params["keys"].split(",")
    groups = {"W": 0.0, "b": 0.0, "bn": 0.0, "norms": 0.0}
    for k in keys:
        square = float(np.sum(case.inputs[k] ** 2))
        if k.startswith("W"):
            groups["W"] += square
            groups["norms"] += np.sqrt(square)
        elif k.startswith("b") and not k.startswith("beta"):
            groups["b"] += square
        else:
            groups["bn"] += square
    return groups


def _judge_loss(case, outputs, notes) -> str:
    loss = _loss(outputs, "loss", notes, case.params["big_scores"])
    expected, data = float(case.expected["loss"]), float(case.expected["data_loss"])
    # scores near 800 are rounded by up to ulp(800) = 6e-5 in float32 (a correct float32 answer
    # is off by up to 5e-5 on many salts): there the error is relative to the scores' size
    floor = BIG_SCORES_FLOOR if case.params["big_scores"] else 0.0
    error = abs(loss - expected) / max(abs(expected), abs(loss), floor, 1e-12)
    if error <= VALUE_TOL:
        return f"loss {loss:.6g}"
    lam, n = case.params["lam"], case.params["n"]
    sq = _penalties(case)
    pen = 0.5 * lam * sq["W"]
    variants = [
        (PENALTY_HALF, "the penalty is λ·Σ‖W‖² (no ½)", data + 2 * pen),
        (
            PENALTY_SQRT,
            "the penalty uses the norms, not their squares",
            data + 0.5 * lam * sq["norms"],
        ),
        (
            PENALTY_SQRT,
            "the penalty uses the norms, not their squares",
            data + 0.5 * lam * np.sqrt(sq["W"]),
        ),
        (
            "capstone.penalty_on_biases",
            "the penalty includes the biases",
            data + pen + 0.5 * lam * sq["b"],
        ),
        (
            "capstone.penalty_on_bn_params",
            "the penalty includes γ and β",
            data + pen + 0.5 * lam * sq["bn"],
        ),
        (
            "capstone.batch_mean_missing",
            "the data loss is summed over the batch, not averaged",
            n * data + pen,
        ),
    ]
    if sq["bn"]:
        both = data + pen + 0.5 * lam * (sq["b"] + sq["bn"])
        variants += [
            ("capstone.penalty_on_biases", "the penalty includes every parameter", both),
            ("capstone.penalty_on_bn_params", "the penalty includes every parameter", both),
        ]
    found = {
        mid: text
        for mid, text, value in variants
        if _scalar_error(value, expected) > 10 * VALUE_TOL
        and _scalar_error(loss, value) <= VALUE_TOL
    }
    message = (
        f"loss {loss:.6g}, expected {expected:.6g} (relative error {error:.1e} > {VALUE_TOL:.0e})"
    )
    if found:
        message += ": " + "; ".join(dict.fromkeys(found.values()))
    elif lam and _scalar_error(loss, data) <= VALUE_TOL:
        message += ": that is the data loss alone, without the penalty (λ/2)·Σ‖W_l‖²"
    raise Mismatch(message, tuple(found))


def _judge_grads(case, outputs, notes) -> str:
    keys = case.params["keys"].split(",")
    lam, n = case.params["lam"], case.params["n"]
    grads = _gradients(case, outputs, "d", notes)
    expected = {k: case.expected[f"d{k}"] for k in keys}
    floor = max(float(np.abs(g).max()) for g in expected.values())
    errors = {k: _error(grads[k], expected[k], floor) for k in keys}
    wrong = [k for k in keys if errors[k] > GRAD_TOL]
    if not wrong:
        return "every gradient matches, max error " + f"{max(errors.values()):.1e}"
    variants = {}
    for k in keys:
        data, p = case.expected[f"data_d{k}"], case.inputs[k]
        if k.startswith("W"):
            variants[k] = [
                (PENALTY_HALF, "λ·W counted twice", data + 2 * lam * p),
                ("capstone.penalty_grad_missing", "no λ·W term", data),
                (
                    "capstone.batch_mean_missing",
                    "data gradient N times too large",
                    n * data + lam * p,
                ),
            ]
        elif k.startswith("b") and not k.startswith("beta"):
            variants[k] = [
                ("capstone.penalty_on_biases", "a λ·b term", data + lam * p),
                ("capstone.batch_mean_missing", "N times too large", n * data),
            ]
        else:
            variants[k] = [
                ("capstone.penalty_on_bn_params", "a λ·γ or λ·β term", data + lam * p),
                ("capstone.batch_mean_missing", "N times too large", n * data),
            ]
    found: dict[str, str] = {}
    details = []
    for k in wrong:
        explained = [
            (mid, text)
            for mid, text, value in variants[k]
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


def _judge_gradcheck(case, outputs, notes) -> str:
    keys = case.params["keys"].split(",")
    h, lam = case.params["h"], case.params["lam"]
    # The gate (issue 10): agreeing with finite differences of your own loss proves nothing if
    # that loss is degenerate (a constant with zero gradients agrees perfectly). With dropout off
    # the loss must be the reference's or one of the catalogued mistakes (charged elsewhere).
    try:
        _judge_loss(case, {"loss": outputs.get("loss0")}, notes)
    except Mismatch as exc:
        if not exc.diagnosis:
            raise Mismatch(
                "with p_drop=0 your loss is not the mean cross-entropy plus the penalty ("
                + exc.message
                + "), so agreeing with finite differences of it proves nothing about the gradients"
            ) from None
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
    n = case.inputs["X"].shape[0]

    def disagreement(analytic: float, numeric: float) -> float:
        return abs(analytic - numeric) / (FD_RTOL * (abs(analytic) + abs(numeric)) + atol)

    bad, diagnosis = [], []
    for k in keys:
        step = (case.inputs[f"{k}+"] - case.inputs[f"{k}-"]) / 2.0  # h·v
        analytic = float(np.sum(grads[k] * step)) / h
        plus = as_scalar(outputs.get(f"loss+{k}"), f"loss at {k} + h·v", notes)
        minus = as_scalar(outputs.get(f"loss-{k}"), f"loss at {k} - h·v", notes)
        numeric = (plus - minus) / (2.0 * h)
        if disagreement(analytic, numeric) > 1.0:
            bad.append(f"{k}: grads say {analytic:.6g}, finite differences {numeric:.6g}")
            p = case.inputs[k]
            penalty_step = lam * float(np.sum(p * step)) / h  # what a stray λ·param adds
            if k.startswith("W"):
                data_step = numeric - penalty_step
                sqrt_step = 0.5 * lam * float(np.sum(p * step)) / (h * np.linalg.norm(p))
                variants = [  # what the gradients would say with each mistake
                    (PENALTY_HALF, numeric + penalty_step),
                    ("capstone.penalty_grad_missing", data_step),
                    (PENALTY_SQRT, data_step + penalty_step + (penalty_step - sqrt_step)),
                    ("capstone.batch_mean_missing", n * data_step + penalty_step),
                ]
            else:
                stray = "capstone.penalty_on_" + (
                    "biases" if k.startswith("b") and not k.startswith("beta") else "bn_params"
                )
                variants = [
                    (stray, numeric + penalty_step),
                    ("capstone.batch_mean_missing", n * numeric),
                ]
            fits = [(disagreement(analytic, value), mid) for mid, value in variants]
            best, mid = min(fits)
            if best <= 1.0:
                diagnosis.append(mid)
    if not bad:
        return f"all {len(keys)} directional derivatives agree with finite differences (h={h:g})"
    message = (
        "along a random direction v in each parameter array, Σ grads·v should equal "
        f"(J(θ + h v) − J(θ − h v)) / 2h with h = {h:g} (the same masks in every call): "
        + "; ".join(bad)
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


_JUDGES = {
    "dropout_test": _judge_dropout_test,
    "bn_test": _judge_bn_test,
    "bn_train": _judge_bn_train,
    "loss": _judge_loss,
    "grads": _judge_grads,
    "gradcheck": _judge_gradcheck,
}


def judge(case: Case, outputs) -> CaseResult:
    """Every mlp_loss case: dispatch on the case's kind."""
    notes: list[str] = []
    message = _JUDGES[case.params["kind"]](case, outputs, notes)
    return CaseResult(case.name, True, message, notes=tuple(notes))


def _check(check_id, title, points, hidden, functions, build, judge_=judge) -> Check:
    return Check(
        check_id, NOTEBOOK, title, points, hidden, functions, build, judge_, needs_reference=True
    )


CHECKS = [
    _check(
        "capstone_layers",
        "your dropout and batch norm, pasted from notebooks 02 and 03",
        1,
        False,
        FUNCTIONS[:4],
        build_layers,
        judge_layers,
    ),
    _check(
        "capstone_scores",
        "class scores in test and train mode",
        2,
        False,
        ("mlp_loss",),
        build_scores,
    ),
    _check(
        "capstone_loss",
        "loss: mean cross-entropy plus (λ/2)·Σ‖W‖²",
        2,
        False,
        ("mlp_loss",),
        build_loss,
    ),
    _check(
        "capstone_gradients", "every gradient, p_drop = 0", 3, False, ("mlp_loss",), build_gradients
    ),
    _check(
        "capstone_gradcheck_dropout",
        "gradients agree with finite differences of your own loss, dropout on",
        2,
        False,
        ("mlp_loss",),
        build_gradcheck,
    ),
    _check(
        "capstone_hidden_forward",
        "scores and loss on hidden networks",
        1,
        True,
        ("mlp_loss",),
        build_hidden_forward,
    ),
    _check(
        "capstone_hidden_backward",
        "gradients on hidden networks, dropout on and off",
        2,
        True,
        ("mlp_loss",),
        build_hidden_backward,
    ),
]
