r"""Checks for notebook 05: layer normalization, forward and backward, as a table.

Written with :mod:`grader.checks.table` by following ``docs/authoring.md``: two case kinds
(``forward``, ``backward``), each declared once with its inputs, call plan and judge, and four
rows (two public checks and their hidden siblings, which share the kinds). Expected values are
the reference run on the same plan; nothing here calls the reference by hand.

Inputs tell the catalogued mistakes apart: every row (example) has its own shift and scale, a
few *quiet* rows have a variance comparable to :math:`\epsilon` (so a wrong or misplaced
:math:`\epsilon` shows), ``gamma`` has mixed signs and ``beta`` is never 0, ``dout`` is random,
and ``N, D >= 4``. Every backward check has a square case (``N == D``), the only shape where
reducing :math:`d\gamma` over the wrong axis still returns an array of the right shape and can be
named; elsewhere that mistake is a shape error, reported as such.

Comparisons (``row_error``): for an (N, D) array, the largest difference in a row relative to
the size of that row (a quiet row's ``dx`` is ~30 times that of an ordinary one); for a (D,)
array, relative to the whole array. Correct float64 answers give ~1e-15, float32 ones below
1e-6; the tolerance is 1e-5, and :func:`grader.checks.table.build` asserts that every
catalogued variant is farther than that from the right answer at every case.

Errors carried forward: the backward kind also returns the student's forward output; when it
matches a catalogued forward variant, a backward exact *for that variant* keeps its points (the
variants' gradients below are analytic; the tests confirm them by finite differences).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from grader.checks import normalisation
from grader.checks.base import Case, Misconception, call, given, var
from grader.checks.table import Carry, Kind, Row, Spec, Topic, Variant, compare, slice_error

NOTEBOOK = "05_layernorm"
FUNCTIONS = ("layernorm_forward", "layernorm_backward")

TOL = 1e-5
DEFAULT_EPS = 1e-3  # the course's default, as for batch norm
OTHER_EPS = (0.0, 1e-8, 1e-5, 1e-3, 1e-2)  # epsilons a student may use instead of the right one

CATALOGUE = [
    Misconception(
        "ln.batch_axis",
        "statistics over the batch axis (like batch norm)",
        "Layer norm normalises each example over its own D features: take the mean and the "
        "variance along axis 1 (keepdims), shapes (N, 1), not along the batch, axis 0.",
    ),
    Misconception(
        "ln.unbiased_variance",
        "variance divided by D - 1",
        "Use the biased variance of each example's features: the mean of (x - mu)^2 over the D "
        "features (ddof=0, NumPy's default), not divided by D - 1.",
    ),
    Misconception(
        "ln.eps_outside_sqrt",
        "epsilon added after the square root",
        "Epsilon goes inside the square root: divide by sqrt(var + eps), not sqrt(var) + eps; "
        "the two differ most for examples whose features hardly vary.",
    ),
    Misconception(
        "ln.wrong_eps",
        "epsilon other than ln_param's eps (default 1e-3)",
        'Read epsilon from ln_param["eps"] and fall back to 1e-3 (this course\'s default, as '
        "for batch norm) only when the key is missing.",
    ),
    Misconception(
        "ln.forward_no_gamma",
        "the output forgets the scale gamma",
        "out = gamma * x_hat + beta: gamma (one per feature, shape (D,)) scales x_hat before "
        "beta shifts it.",
    ),
    Misconception(
        "ln.backward_missing_mean_path",
        "backward misses the gradient through the mean",
        "Each example's mean depends on all its features: the path through mu removes the row "
        "mean of the gradient reaching x_hat.",
    ),
    Misconception(
        "ln.backward_missing_var_path",
        "backward misses the gradient through the variance",
        "Each example's variance depends on all its features too: the path through var removes "
        "the part of the gradient along x_hat (a row mean of g * x_hat).",
    ),
    Misconception(
        "ln.backward_no_gamma",
        "dx forgets the factor gamma",
        "The gradient reaching x_hat is dout * gamma, and every term of dx carries it.",
    ),
    Misconception(
        "ln.param_grad_wrong_axis",
        "dgamma or dbeta reduced over the features instead of the examples",
        "gamma and beta are per feature, shared by the N examples, exactly as in batch norm: sum "
        "their gradients over axis 0, giving shape (D,), even though the statistics use axis 1.",
    ),
]
MISCONCEPTIONS = {m.id: m for m in CATALOGUE}


# --------------------------------------------------------------------------- the metric
#: Largest difference relative to the size of its row ((N, D)) or of the array ((D,)).
row_error = slice_error(axis=1)


# --------------------------------------------------------------------------- mistaken layers
# layer norm is the normalisation over the features (axis 1); its mistakes change the options
normalise = partial(normalisation.normalise, axis=1)
variant_forward = partial(normalisation.variant_forward, axis=1)
variant_backward = partial(normalisation.variant_backward, axis=1)


def _eps(case: Case) -> float:
    eps = case.params.get("eps")
    return DEFAULT_EPS if eps is None else float(eps)


MISTAKES = [  # forward mistakes: (id, description, options of variant_forward)
    ("ln.batch_axis", "statistics over axis 0 (the batch, as in batch norm)", {"axis": 0}),
    ("ln.unbiased_variance", "the variance divided by D - 1", {"ddof": 1}),
    ("ln.eps_outside_sqrt", "dividing by sqrt(var) + eps", {"outside": True}),
    ("ln.forward_no_gamma", "gamma left out (out = x_hat + beta)", {"use_gamma": False}),
]


def forward_variants(case: Case) -> list[Variant]:
    """Every catalogued forward mistake at this case, with its exact backward when it has one."""
    x, gamma, beta = (case.inputs[k] for k in ("x", "gamma", "beta"))
    dout, eps = case.inputs.get("dout"), _eps(case)
    found = [(mid, text, eps, options) for mid, text, options in MISTAKES]
    found += [
        ("ln.wrong_eps", f"epsilon = {e:g} instead of {eps:g}", e, {})
        for e in OTHER_EPS
        if e != eps
    ]
    return [
        Variant(
            mid,
            text,
            {"out": variant_forward(x, gamma, beta, e, **options)},
            {} if dout is None else variant_backward(x, gamma, dout, e, **options),
        )
        for mid, text, e, options in found
    ]


def backward_variants(case: Case) -> list[Variant]:
    """Catalogued backward mistakes (the forward right) at this case."""
    x, gamma, dout = (case.inputs[k] for k in ("x", "gamma", "dout"))
    xhat, s, _ = normalise(x, _eps(case))
    g = gamma * dout
    row = lambda v: v.mean(axis=1, keepdims=True)  # noqa: E731
    found = [
        Variant(
            "ln.backward_missing_mean_path",
            "dx without the path through the mean",
            {"dx": (g - xhat * row(g * xhat)) / s},
        ),
        Variant(
            "ln.backward_missing_var_path",
            "dx without the path through the variance",
            {"dx": (g - row(g)) / s},
        ),
        Variant(
            "ln.backward_no_gamma",
            "dx without the factor gamma",
            {"dx": (dout - row(dout) - xhat * row(dout * xhat)) / s},
        ),
    ]
    if x.shape[0] == x.shape[1]:  # otherwise the wrong axis gives a wrong shape
        found.append(
            Variant(
                "ln.param_grad_wrong_axis",
                "dgamma / dbeta summed over axis 1 (the features)",
                {"dgamma": (dout * xhat).sum(axis=1), "dbeta": dout.sum(axis=1)},
            )
        )
    return found


# --------------------------------------------------------------------------- inputs and plans
def make_inputs(rng: np.random.Generator, n: int, d: int, eps=None, backward=False) -> dict:
    """x with a shift and scale per example, quiet rows (variance ~ eps), gamma, beta, dout."""
    eps = DEFAULT_EPS if eps is None else eps
    loc = rng.uniform(-4.0, 6.0, size=(n, 1))
    scale = rng.uniform(0.5, 3.0, size=(n, 1))
    quiet = rng.choice(n, size=max(1, n // 4), replace=False)
    loc[quiet] = rng.uniform(-0.5, 0.5, size=(quiet.size, 1))  # near 0: float32 keeps digits
    scale[quiet] = np.sqrt(max(eps, 1e-4)) * rng.uniform(0.7, 1.4, size=(quiet.size, 1))
    inputs = {
        "x": loc + scale * rng.standard_normal((n, d)),
        "gamma": rng.choice([-1.0, 1.0], size=d) * rng.uniform(0.5, 2.0, size=d),
        "beta": rng.uniform(-2.0, 2.0, size=d),
    }
    if backward:
        inputs["dout"] = rng.standard_normal((n, d))
    return inputs


def _forward_call(s) -> dict:
    ln_param = {} if s.get("eps") is None else {"eps": s["eps"]}
    return call(
        "layernorm_forward",
        given("x"),
        given("gamma"),
        given("beta"),
        {"dict": ln_param},
        out=["out", "cache"],
    )


def _title(s) -> str:
    eps = "eps absent (default 1e-3)" if s.get("eps") is None else f"eps={s['eps']:g}"
    return f"x of shape ({s['n']}, {s['d']}), {eps}"


FORWARD = Kind(
    "forward",
    functions=("layernorm_forward",),
    make=make_inputs,
    plan=lambda s: [_forward_call(s)],
    returns={"out": var("out")},
    judge=compare(tol=TOL, error=row_error, variants=forward_variants),
    title=_title,
)
BACKWARD = Kind(
    "backward",
    functions=FUNCTIONS,
    make=lambda rng, **s: make_inputs(rng, **s, backward=True),
    plan=lambda s: [
        _forward_call(s),
        call("layernorm_backward", given("dout"), var("cache"), out=["dx", "dgamma", "dbeta"]),
    ],
    returns={"out": var("out"), "dx": var("dx"), "dgamma": var("dgamma"), "dbeta": var("dbeta")},
    judge=compare(
        names=("dx", "dgamma", "dbeta"),
        tol=TOL,
        error=row_error,
        variants=backward_variants,
        carry=Carry("ln_forward", forward_variants),
    ),
    title=lambda s: "backward: " + _title(s),
)


# --------------------------------------------------------------------------- the table
def _hidden_forward(rng) -> list[Spec]:
    shape = lambda: {"n": int(rng.integers(4, 11)), "d": int(rng.integers(4, 17))}  # noqa: E731
    return [Spec("forward", **shape()), Spec("forward", **shape(), eps=2e-3)]


def _hidden_backward(rng) -> list[Spec]:
    side = int(rng.integers(4, 10))
    return [
        Spec("backward", n=int(rng.integers(4, 11)), d=int(rng.integers(4, 17))),
        Spec("backward", n=side, d=side, eps=2e-3),
    ]


TOPIC = Topic(
    notebook=NOTEBOOK,
    functions=FUNCTIONS,
    misconceptions=CATALOGUE,
    kinds=[FORWARD, BACKWARD],
    rows=[
        Row(
            "ln_forward",
            "layernorm_forward: per-example statistics, eps from ln_param",
            3,
            [
                Spec("forward", n=6, d=8),
                Spec("forward", n=5, d=12, eps=1e-2),
                Spec("forward", n=8, d=5, eps=1e-4),
            ],
        ),
        Row(
            "ln_backward",
            "layernorm_backward: dx, dgamma, dbeta",
            3,
            [
                Spec("backward", n=6, d=8),
                Spec("backward", n=7, d=7, eps=1e-2),
            ],
        ),
        Row("ln_hidden_forward", "layernorm_forward on hidden shapes", 2, _hidden_forward, True),
        Row("ln_hidden_backward", "layernorm_backward on hidden shapes", 2, _hidden_backward, True),
    ],
)
CHECKS = TOPIC.checks()
