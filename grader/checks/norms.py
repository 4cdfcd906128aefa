r"""Checks for notebook 01: L1/L2 norms of weight matrices and the L1/L2 weight penalties, as a
table (:mod:`grader.checks.table`).

Each kind calls one function (or, in the hidden checks, both norms or both penalties) and is
judged by :func:`~grader.checks.table.compare` against the reference's returns of the same plan;
one hidden kind compares the gradients with centred finite differences of the reference penalty
instead (``derive``, at build). The kit's tests confirm every expected value with independent
formulas and, for the gradients, with finite differences.

Mistakes are recognised by recomputing, in the trusted judge, what each catalogued mistake
returns on the case's inputs (``np.linalg.norm(W, 1)``, the spectral norm, a missing square root
or ½, ``W/|W|``, ...): the :class:`~grader.checks.table.Variant` lists below. Inputs are chosen
so that these variants differ from the right answer (the builders assert it): matrices with
several rows *and* columns (for a single row or column the induced and spectral norms coincide
with the entry-wise ones), λ ≠ 1, several layers of different shapes, and exact zeros for the L1
subgradient.

*Regularising the biases* (in the DESIGN catalogue) is deliberately not a diagnosis here: by
contract the penalty functions receive the list of weight matrices only, and the trainer builds
that list, so nothing a student writes in these six functions can add the biases, and no output
could reveal the belief. The notebook teaches it instead (a worked demonstration with the
student's own functions and a manually graded question); the checks make sure the gradient
functions return exactly one array per weight matrix, in order and of the same shape, which is
the part of that contract these functions own.
"""

from __future__ import annotations

import numpy as np

from grader.checks.base import (
    Case,
    CaseResult,
    Misconception,
    Mismatch,
    Returned,
    as_array,
    as_scalar,
    call,
    given,
    let,
    public_seed,
    var,
)
from grader.checks.table import Kind, Row, Spec, Topic, Variant, compare
from grader.toolkit.gradcheck import numerical_gradient

VALUE_TOL = 1e-5  # relative; float32 round-off passes, every catalogued mistake is off by >= 10 %
GRAD_TOL = 1e-5

#: The matrix on the slides' "Recall linear algebra" page.
SLIDE_W = np.array([[0.1, 0.5, -0.3], [-0.2, 0.4, 0.2], [-0.1, 0.3, 0.3]])

CATALOGUE = [
    Misconception(
        "norms.l1_max_column_sum",
        "np.linalg.norm(W, 1): the largest column sum",
        "For a matrix, np.linalg.norm(W, 1) is the induced 1-norm, the largest column sum of "
        "|W| (the 1.2 printed on the slide); the L1 norm of a weight matrix adds |w| over "
        "every entry (2.4 for the slide's matrix).",
    ),
    Misconception(
        "norms.l2_spectral",
        "np.linalg.norm(W, 2): the spectral norm",
        "For a matrix, np.linalg.norm(W, 2) is the spectral norm (the largest singular "
        "value); the L2 norm of a weight matrix is the Frobenius norm, the square root of "
        "the sum of all squared entries.",
    ),
    Misconception(
        "norms.l2_norm_no_sqrt",
        "L2 norm without the square root",
        "The L2 norm is the square root of the sum of squares (0.883 for the slide's "
        "matrix); the sum of squares itself (0.78, what the slide shows) is the squared "
        "norm, the quantity the L2 penalty uses.",
    ),
    Misconception(
        "norms.l2_penalty_sqrt",
        "L2 penalty with the norm instead of its square",
        "The L2 penalty is (λ/2)·Σ‖W‖₂² with the squared norm, i.e. the plain sum of "
        "squared entries (no square root); the square is what makes its gradient simply λW.",
    ),
    Misconception(
        "norms.l2_missing_half",
        "L2 penalty or gradient without the ½",
        "Your L2 penalty or its gradient is twice the expected one: did you drop the ½? The "
        "penalty is (λ/2)·Σ‖W‖₂², and the ½ cancels the 2 of the square, so the gradient "
        "is λW.",
    ),
    Misconception(
        "norms.l1_grad_divide_by_abs",
        "L1 gradient W/|W|: NaN at exact zeros",
        "W/|W| is 0/0 = NaN where a weight is exactly 0, and one NaN spreads through the "
        "whole network at the next step; the sign function gives +1, -1, and 0 at 0 (a "
        "valid subgradient of |w|).",
    ),
    Misconception(
        "norms.l1_grad_abs",
        "L1 gradient |W| instead of sign(W)",
        "The derivative of |w| is sign(w), not |w|: the L1 gradient has the same size λ for "
        "every non-zero weight and always points back towards 0.",
    ),
]


# --------------------------------------------------------------------------- inputs
def _matrix(rng: np.random.Generator, shape: tuple[int, int], style: str) -> np.ndarray:
    """A random matrix: weight-like (small, centred), shifted and scaled (large, off-centre), or
    entries with |w| in [0.05, 1.5] ("away": |w| is smooth there, so finite differences are
    exact)."""
    if style == "weights":
        return float(rng.uniform(0.05, 0.5)) * rng.standard_normal(shape)
    if style == "away":
        return rng.uniform(0.05, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return float(rng.uniform(-3.0, 3.0)) + float(rng.uniform(0.5, 5.0)) * rng.standard_normal(shape)


def _with_zeros(rng: np.random.Generator, W: np.ndarray, fraction: float) -> np.ndarray:
    """W with about ``fraction`` of its entries (at least two) set to exactly 0."""
    flat = W.reshape(-1)
    count = max(2, int(round(fraction * flat.size)))
    flat[rng.choice(flat.size, size=count, replace=False)] = 0.0
    return W


def _shapes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(n) for n in s.split("x")) for s in text.split(",")]


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def make_matrix(rng, shape: str, style: str, **_) -> dict:
    """The slides' matrix in the shipped fixtures ("slides"); in the batch grade ("disguised")
    its entries shuffled, their signs flipped and the whole scaled, so its answer can be read
    neither off the slides nor off the fixtures. Otherwise a random matrix."""
    if style == "slides":
        return {"W": SLIDE_W.copy()}
    if style == "disguised":
        entries = rng.permutation(SLIDE_W.ravel()) * rng.choice([-1.0, 1.0], SLIDE_W.size)
        return {"W": rng.uniform(0.5, 2.0) * entries.reshape(SLIDE_W.shape)}
    return {"W": _matrix(rng, _shapes(shape)[0], style)}


def make_layers(rng, shapes: str, styles: str, zeros: float = 0.0, shift: bool = False, **_):
    """Weight matrices W0, W1, ... of the given shapes and styles; ``zeros``: the fraction of
    exact zeros in each; ``shift``: one common shift in [1.6, 3] added to all (entries away from
    0 for finite differences: their absolute round-off, about eps·R/h, would otherwise dominate
    the error of a tiny λ·w)."""
    offset = float(rng.uniform(1.6, 3.0)) if shift else 0.0
    weights = [
        offset + _matrix(rng, s, style)
        for s, style in zip(_shapes(shapes), styles.split(","), strict=True)
    ]
    if zeros:
        weights = [_with_zeros(rng, W, zeros) for W in weights]
    return {f"W{i}": W for i, W in enumerate(weights)}


def weights_of(case: Case) -> list[np.ndarray]:
    if "W" in case.inputs:
        return [case.inputs["W"]]
    return [case.inputs[f"W{i}"] for i in range(case.params["layers"])]


def _layers_title(s) -> str:
    shapes = _shapes(s["shapes"])
    return f"{len(shapes)} layers " + ", ".join(map(_shape_text, shapes)) + f", λ = {s['lam']:g}"


def _matrix_title(s) -> str:
    if s["style"] in ("slides", "disguised"):
        return "the slides' 3×3 matrix"
    shape = _shape_text(_shapes(s["shape"])[0])
    return (
        f"weights of shape {shape}"
        if s["style"] == "weights"
        else (f"shifted and scaled entries, shape {shape}")
    )


def _weights_list(s) -> dict:
    return {"list": [given(f"W{i}") for i in range(s["layers"])]}


# --------------------------------------------------------------------------- mistakes
def _v(misconception: str, description: str, **values) -> list[Variant]:
    """A mistake's values; several catalogue ids, separated by "+", make one variant each."""
    return [Variant(m, description, values) for m in misconception.split("+")]


def norm_variants(case: Case) -> list[Variant]:
    (W,) = weights_of(case)
    absum, sq = float(np.abs(W).sum()), float(np.sum(W * W))
    return [
        *_v(
            "norms.l1_max_column_sum",
            "the largest column sum of |W| (np.linalg.norm(W, 1))",
            l1_norm=np.abs(W).sum(axis=0).max(),
        ),
        *_v(
            "",
            "the largest row sum of |W| (np.linalg.norm(W, inf))",
            l1_norm=np.abs(W).sum(1).max(),
        ),
        *_v("", "the sum of the entries without absolute values", l1_norm=W.sum()),
        *_v("", "the L2 (Frobenius) norm", l1_norm=np.sqrt(sq)),
        *_v(
            "norms.l2_spectral",
            "the spectral norm (np.linalg.norm(W, 2))",
            l2_norm=np.linalg.norm(W, 2),
        ),
        *_v("norms.l2_norm_no_sqrt", "the sum of squares, without √", l2_norm=sq),
        *_v("", "the L1 norm", l2_norm=absum),
    ]


def penalty_variants(case: Case) -> list[Variant]:
    weights, lam = weights_of(case), case.params["lam"]
    sq = [float(np.sum(W * W)) for W in weights]
    absum = [float(np.abs(W).sum()) for W in weights]
    spectral = [float(np.linalg.norm(W, 2)) for W in weights]
    colsum = sum(float(np.abs(W).sum(axis=0).max()) for W in weights)
    fro = sum(np.sqrt(sq))
    return [
        *_v(
            "norms.l1_max_column_sum",
            "λ times the sum of the largest column sums (np.linalg.norm(W, 1))",
            l1_penalty=lam * colsum,
        ),
        *_v("", "Σ‖W‖₁ without the factor λ", l1_penalty=sum(absum)),
        *_v("", "half the expected value: no ½ in L1", l1_penalty=lam / 2 * sum(absum)),
        *_v("", "the penalty of the first layer only", l1_penalty=lam * absum[0]),
        *_v("", "the penalty of the last layer only", l1_penalty=lam * absum[-1]),
        *_v(
            "",
            "the entries without absolute values",
            l1_penalty=lam * sum(W.sum() for W in weights),
        ),
        *_v(
            "norms.l2_missing_half", "λ·Σ‖W‖₂², twice the expected value", l2_penalty=lam * sum(sq)
        ),
        *_v(
            "norms.l2_penalty_sqrt",
            "(λ/2)·Σ‖W‖₂, with the norm instead of its square",
            l2_penalty=lam / 2 * fro,
        ),
        *_v(
            "norms.l2_penalty_sqrt",
            "(λ/2)·√(Σ‖W‖₂²), with a square root",
            l2_penalty=lam / 2 * np.sqrt(sum(sq)),
        ),
        *_v(
            "norms.l2_penalty_sqrt+norms.l2_missing_half",
            "λ·Σ‖W‖₂: no square and no ½",
            l2_penalty=lam * fro,
        ),
        *_v(
            "norms.l2_spectral",
            "the spectral norm (np.linalg.norm(W, 2)) squared",
            l2_penalty=lam / 2 * sum(s * s for s in spectral),
        ),
        *_v(
            "norms.l2_spectral+norms.l2_penalty_sqrt",
            "(λ/2)·Σ of spectral norms, not squared",
            l2_penalty=lam / 2 * sum(spectral),
        ),
        *_v("", "½Σ‖W‖₂² without the factor λ", l2_penalty=sum(sq) / 2),
        *_v("", "the penalty of the first layer only", l2_penalty=lam / 2 * sq[0]),
        *_v("", "the penalty of the last layer only", l2_penalty=lam / 2 * sq[-1]),
    ]


def l1_grad_variants(case: Case) -> list[Variant]:
    ws, lam = weights_of(case), case.params["lam"]
    zero = " where a weight is exactly 0; the contract uses sign(0) = 0"
    return [
        *_v("norms.l1_grad_abs", "λ|W|", grads=[lam * np.abs(W) for W in ws]),
        *_v("", "sign(W) without the factor λ", grads=[np.sign(W) for W in ws]),
        *_v("", "λW, the L2 penalty's gradient", grads=[lam * W for W in ws]),
        *_v("", "half the expected gradient", grads=[lam / 2 * np.sign(W) for W in ws]),
        *_v("", "λ·sign(W) but +λ" + zero, grads=[lam * np.where(W >= 0, 1.0, -1.0) for W in ws]),
        *_v("", "λ·sign(W) but -λ" + zero, grads=[lam * np.where(W > 0, 1.0, -1.0) for W in ws]),
    ]


def l2_grad_variants(case: Case) -> list[Variant]:
    ws, lam = weights_of(case), case.params["lam"]
    norms = [np.sqrt(np.sum(W * W)) for W in ws]
    total = np.sqrt(sum(n * n for n in norms))
    return [
        *_v("norms.l2_missing_half", "2λW", grads=[2 * lam * W for W in ws]),
        *_v(
            "norms.l2_penalty_sqrt",
            "the gradient of (λ/2)·‖W‖₂, the norm instead of its square",
            grads=[lam / 2 * W / n for W, n in zip(ws, norms, strict=True)],
        ),
        *_v(
            "norms.l2_penalty_sqrt",
            "λW/‖W‖₂, the gradient of a norm without its square",
            grads=[lam * W / n for W, n in zip(ws, norms, strict=True)],
        ),
        *_v(
            "norms.l2_penalty_sqrt",
            "the gradient of (λ/2)·√(Σ‖W‖₂²), with a square root",
            grads=[lam / 2 * W / total for W in ws],
        ),
        *_v("", "W without the factor λ", grads=[W.copy() for W in ws]),
        *_v("", "λ·sign(W), the L1 gradient", grads=[lam * np.sign(W) for W in ws]),
        *_v("", "λW/2, half the expected gradient", grads=[lam / 2 * W for W in ws]),
    ]


# --------------------------------------------------------------------------- judges
_VALUES = {
    "norm": compare(tol=VALUE_TOL, variants=norm_variants),
    "penalty": compare(tol=VALUE_TOL, variants=penalty_variants),
}
_SLIDES_SAY = {  # what the slide prints for each norm, and why it is not that norm
    "l1_norm": (1.2, "1.2 is what the slide prints, but 0.1+0.5+0.3+…+0.3 = 2.4"),
    "l2_norm": (0.78, "0.78 is the slide's sum of squares, i.e. the squared norm"),
}


def _values_judge(family: str):
    """compare(), and a failure says the numbers (and, on the slides' matrix, the slide's)."""
    judge = _VALUES[family]

    def judge_values(case: Case, got: dict[str, Returned]) -> CaseResult:
        result = judge(case, got)
        if result.passed or "differ" not in result.message:
            return result
        numbers = []
        for name, expected in case.expected.items():
            value = as_scalar(got[name], name)
            if abs(value - float(expected)) > VALUE_TOL * abs(float(expected)):
                numbers.append(f"{name} returned {value:.6g}; expected {float(expected):.6g}")
                said = _SLIDES_SAY.get(name)
                slides = "W" in case.inputs and np.array_equal(case.inputs["W"], SLIDE_W)
                if slides and said and abs(value - said[0]) <= 1e-4 * said[0]:
                    numbers[-1] += f" ({said[1]})"
        result.message = "; ".join(numbers) + ": " + result.message
        return result

    judge_values.assert_separated = judge.assert_separated
    return judge_values


def _gradient_list(value: Returned | None, weights: list[np.ndarray], function: str) -> None:
    """A Mismatch unless the gradients are a list of one finite array per weight matrix."""
    n = len(weights)
    if value is None or value.kind == "none":
        raise Mismatch(f"{function} returned None (did you forget a `return`?)")
    if value.kind != "sequence":
        shape = f" of shape {value.array.shape}" if value.array is not None else ""
        raise Mismatch(
            f"{function} returned a {value.type}{shape}; expected a list with one gradient "
            f"array per weight matrix ({n} here: the layers have different shapes)"
        )
    if value.length != n:
        raise Mismatch(
            f"{function} returned {value.length} arrays for {n} weight matrices; expected "
            "exactly one gradient per weight matrix, in the same order (the trainer adds "
            "grads[l] to the gradient of weights[l])"
        )
    for i, (item, W) in enumerate(zip(value.items, weights, strict=True)):
        what = f"the gradient of weights[{i}]"
        if item.array is not None and item.array.dtype.kind == "f" and item.array.shape == W.shape:
            bad = ~np.isfinite(item.array)
            if bad.any() and function == "l1_penalty_grad" and np.all(W[bad] == 0):
                raise Mismatch(
                    f"{what} is NaN at the {int(bad.sum())} entries where the weight is exactly "
                    "0, as W/|W| gives; the contract asks for exactly 0 there",
                    ("norms.l1_grad_divide_by_abs",),
                )
        as_array(item, what, W.shape)


def _gradients_judge(function: str):
    variants = l1_grad_variants if function == "l1_penalty_grad" else l2_grad_variants
    judge = compare(("grads",), GRAD_TOL, variants, labels={"grads": "the gradient list"})

    def judge_gradients(case: Case, got: dict[str, Returned]) -> CaseResult:
        weights = weights_of(case)
        _gradient_list(got.get("grads"), weights, function)
        result = judge(case, got)
        if not result.passed:
            return result
        grads = [item.array for item in got["grads"].items]
        if function == "l1_penalty_grad":
            for i, (g, W) in enumerate(zip(grads, weights, strict=True)):
                if np.any(g[W == 0] != 0):
                    raise Mismatch(
                        f"the gradient of weights[{i}] is not exactly 0 where the weight is "
                        "exactly 0; the contract uses sign(0) = 0"
                    )
        after = got.get("weights_after")
        if after is None or after.kind != "sequence" or after.length != len(weights):
            raise Mismatch(f"{function} replaced or emptied the list of weights it was given")
        for i, (item, W) in enumerate(zip(after.items, weights, strict=True)):
            if (
                item.array is None
                or item.array.shape != W.shape
                or not np.array_equal(item.array, W)
            ):
                raise Mismatch(
                    f"{function} changed weights[{i}] in place; compute new arrays instead (in "
                    "training, the weights would be changed behind the optimiser's back)"
                )
        zeros = sum(int(np.sum(W == 0)) for W in weights)
        if zeros and function == "l1_penalty_grad":
            result.message = f"exactly 0 at the {zeros} zero weights"
        return result

    judge_gradients.assert_separated = judge.assert_separated
    return judge_gradients


def finite_differences(case: Case, reference) -> dict:
    """For ``source="finite differences"``: the expected gradient is the centred finite
    difference of the reference penalty, in float64 (trusted, at build)."""
    if case.params["source"] != "finite differences":
        return {}
    penalty = getattr(reference, case.params["kind"].removesuffix("_grad"))
    lam, work = case.params["lam"], [W.copy() for W in weights_of(case)]
    return {"grads": [numerical_gradient(lambda _: float(penalty(work, lam)), W) for W in work]}


# --------------------------------------------------------------------------- kinds
def _values_kind(functions: tuple[str, ...], family: str) -> Kind:
    if family == "norm":
        make, args, title = make_matrix, lambda s: [given("W")], _matrix_title
    else:
        make, args, title = make_layers, lambda s: [_weights_list(s), s["lam"]], _layers_title
    return Kind(
        "+".join(functions),
        functions,
        make,
        lambda s: [call(f, *args(s), out=f) for f in functions],
        {f: var(f) for f in functions},
        _values_judge(family),
        title=title,
    )


def _grad_title(s) -> str:
    zeros = " with exact zeros in W" if s.get("zeros") else ""
    fd = " against finite differences of the penalty" if s["source"] != "reference" else ""
    return f"{s['function']}{zeros}{fd}: {_layers_title(s)}"


def _grad_kind(function: str) -> Kind:
    return Kind(
        function,
        (function,),
        make_layers,
        lambda s: [
            let("weights", _weights_list(s)),
            call(function, var("weights"), s["lam"], out="grads"),
        ],
        {"grads": var("grads"), "weights_after": var("weights")},
        _gradients_judge(function),
        title=lambda s: _grad_title({"function": function, **s}),
        derive=finite_differences,
    )


L1, L2 = ("l1_norm",), ("l2_norm",)
P1, P2 = ("l1_penalty",), ("l2_penalty",)
KINDS = [
    *(_values_kind(f, "norm") for f in (L1, L2, L1 + L2)),
    *(_values_kind(f, "penalty") for f in (P1, P2, P1 + P2)),
    _grad_kind("l1_penalty_grad"),
    _grad_kind("l2_penalty_grad"),
]


# --------------------------------------------------------------------------- rows
def _public_norms(check_id: str, function: str):
    def cases(rng: np.random.Generator) -> list[Spec]:
        public = (
            rng.bit_generator.state
            == np.random.default_rng(public_seed(check_id)).bit_generator.state
        )
        return [
            Spec(function, shape="3x3", style="slides" if public else "disguised"),
            Spec(function, shape="4x7", style="weights"),
            Spec(function, shape="9x3", style="shifted"),
        ]

    return cases


def _random_shape(rng: np.random.Generator, low: int = 2, high: int = 40) -> str:
    """A non-square shape with at least two rows and two columns."""
    rows = int(rng.integers(low, high))
    cols = int(rng.integers(low, high - 1))
    return f"{rows}x{cols + (cols >= rows)}"


def _layer_shapes(rng: np.random.Generator, n_layers: int, high: int = 30) -> str:
    """Shapes of consecutive layers D0 -> D1 -> ... (each W^l is (D_{l-1}, D_l)), all different."""
    dims = [int(d) for d in rng.choice(np.arange(2, high), size=n_layers + 1, replace=False)]
    return ",".join(f"{dims[i]}x{dims[i + 1]}" for i in range(n_layers))


def _layers(kind: str, lam: float, shapes: str, styles: str, **more) -> Spec:
    return Spec(kind, lam=lam, layers=len(shapes.split(",")), shapes=shapes, styles=styles, **more)


def _grad(function: str, lam: float, shapes: str, styles: str, **more) -> Spec:
    return _layers(function, lam, shapes, styles, source="reference", **more)


PUBLIC_LAYERS = [
    ("6x5,5x4,4x3", "weights,shifted,weights", 0.37),
    ("8x2,2x7", "shifted,weights", 2.5e-3),
]
HIDDEN_LAMBDAS = (1e-4, 3e-3, 0.05, 0.3, 0.7, 4.2)


def _hidden_norms(rng) -> list[Spec]:
    return [
        Spec("l1_norm+l2_norm", shape=_random_shape(rng), style=("weights", "shifted")[i % 2])
        for i in range(6)
    ]


def _hidden_penalties(rng) -> list[Spec]:
    cases = []
    for lam in rng.choice(HIDDEN_LAMBDAS, size=4, replace=False):
        shapes = _layer_shapes(rng, int(rng.integers(2, 5)))
        styles = ",".join(str(rng.choice(["weights", "shifted"])) for _ in shapes.split(","))
        cases.append(_layers("l1_penalty+l2_penalty", float(lam), shapes, styles))
    return cases


def _hidden_gradients(rng) -> list[Spec]:
    lams = [float(lam) for lam in rng.choice(HIDDEN_LAMBDAS, size=4, replace=False)]
    small = _layer_shapes(rng, 2, high=8)  # finite differences cost two penalties per entry
    fd = {"source": "finite differences"}
    return [
        _grad(
            "l1_penalty_grad", lams[0], _layer_shapes(rng, 3), "weights,weights,weights", zeros=0.2
        ),
        _grad("l2_penalty_grad", lams[1], _layer_shapes(rng, 4), "shifted,shifted,shifted,shifted"),
        _layers("l2_penalty_grad", lams[2], small, "away,away", shift=True, **fd),
        _layers("l1_penalty_grad", lams[3], small, "away,away", **fd),
    ]


TOPIC = Topic(
    notebook="01_norms",
    functions=(
        "l1_norm",
        "l2_norm",
        "l1_penalty",
        "l1_penalty_grad",
        "l2_penalty",
        "l2_penalty_grad",
    ),
    misconceptions=CATALOGUE,
    kinds=KINDS,
    rows=[
        Row(
            "norms_l1_norm",
            "entry-wise L1 norm, including the slides' matrix",
            1,
            _public_norms("norms_l1_norm", "l1_norm"),
        ),
        Row(
            "norms_l2_norm",
            "L2 (Frobenius) norm, including the slides' matrix",
            1,
            _public_norms("norms_l2_norm", "l2_norm"),
        ),
        Row("norms_hidden_norms", "both norms on hidden matrices", 1, _hidden_norms, hidden=True),
        Row(
            "norms_l1_penalty",
            "L1 penalty over several layers",
            1,
            [_layers("l1_penalty", lam, s, st) for s, st, lam in PUBLIC_LAYERS],
        ),
        Row(
            "norms_l2_penalty",
            "L2 penalty over several layers",
            1,
            [_layers("l2_penalty", lam, s, st) for s, st, lam in PUBLIC_LAYERS],
        ),
        Row(
            "norms_hidden_penalties",
            "both penalties on hidden layers and λ",
            1,
            _hidden_penalties,
            hidden=True,
        ),
        Row(
            "norms_l1_penalty_grad",
            "L1 (sub)gradient, exact zeros included",
            2,
            [
                _grad("l1_penalty_grad", 0.3, "5x6,6x3", "weights,shifted", zeros=0.25),
                _grad("l1_penalty_grad", 1.7e-2, "7x4,4x2", "weights,shifted"),
            ],
        ),
        Row(
            "norms_l2_penalty_grad",
            "L2 gradient (weight decay)",
            2,
            [
                _grad("l2_penalty_grad", 0.3, "5x6,6x4,4x3", "weights,weights,weights"),
                _grad("l2_penalty_grad", 1.7e-2, "8x2,2x5", "shifted,weights"),
            ],
        ),
        Row(
            "norms_hidden_gradients",
            "both gradients on hidden layers, against the reference and finite differences",
            2,
            _hidden_gradients,
            hidden=True,
        ),
    ],
)
NOTEBOOK, FUNCTIONS, MISCONCEPTIONS = TOPIC.notebook, TOPIC.functions, TOPIC.catalogue
CHECKS = TOPIC.checks()
