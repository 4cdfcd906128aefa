r"""Checks for notebook 01: L1/L2 norms of weight matrices and the L1/L2 weight penalties.

Expected values come from the reference solution (``needs_reference=True``); the kit's tests
confirm every one of them with independent formulas and, for the gradients, with finite
differences. One hidden case compares the gradients directly with finite differences of the
reference penalty, computed when the case is built.

Mistakes are recognised by recomputing, in the trusted judge, what each catalogued mistake
returns on the case's inputs (``np.linalg.norm(W, 1)``, the spectral norm, a missing square root
or ½, ``W/|W|``, ...) and comparing the student's value with it. Inputs are chosen so that these
variants differ from the right answer: matrices with several rows *and* columns (for a single
row or column the induced and spectral norms coincide with the entry-wise ones), λ ≠ 1, several
layers of different shapes, and exact zeros for the L1 subgradient.

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
    Check,
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
from grader.toolkit.gradcheck import numerical_gradient, rel_error

NOTEBOOK = "01_norms"
FUNCTIONS = ("l1_norm", "l2_norm", "l1_penalty", "l1_penalty_grad", "l2_penalty", "l2_penalty_grad")

VALUE_TOL = 1e-5  # relative; float32 round-off passes, every catalogued mistake is off by >= 10 %
GRAD_TOL = 1e-5  # CS231n rel_error, element-wise
VARIANT_TOL = 1e-4  # how close a wrong answer must be to a mistake's value to be named after it

#: The matrix on the slides' "Recall linear algebra" page.
SLIDE_W = np.array([[0.1, 0.5, -0.3], [-0.2, 0.4, 0.2], [-0.1, 0.3, 0.3]])

MISCONCEPTIONS = {
    m.id: m
    for m in [
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
}


# --------------------------------------------------------------------------- inputs
def _matrix(rng: np.random.Generator, shape: tuple[int, int], style: str) -> np.ndarray:
    """A random matrix: weight-like (small, centred) or shifted and scaled (large, off-centre)."""
    if style == "weights":
        return float(rng.uniform(0.05, 0.5)) * rng.standard_normal(shape)
    return float(rng.uniform(-3.0, 3.0)) + float(rng.uniform(0.5, 5.0)) * rng.standard_normal(shape)


def _with_zeros(rng: np.random.Generator, W: np.ndarray, fraction: float) -> np.ndarray:
    """W with about ``fraction`` of its entries (at least two) set to exactly 0."""
    W = W.copy()
    flat = W.reshape(-1)
    count = max(2, int(round(fraction * flat.size)))
    flat[rng.choice(flat.size, size=count, replace=False)] = 0.0
    return W


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Entries with |w| in [0.05, 1.5]: |w| is smooth there, so finite differences are exact."""
    return rng.uniform(0.05, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def _random_shape(rng: np.random.Generator, low: int = 2, high: int = 40) -> tuple[int, int]:
    """A non-square shape with at least two rows and two columns."""
    rows = int(rng.integers(low, high))
    cols = int(rng.integers(low, high - 1))
    cols += cols >= rows  # never square
    return rows, cols


def _layer_shapes(rng: np.random.Generator, n_layers: int, high: int = 30) -> list[tuple[int, int]]:
    """Shapes of consecutive layers D0 -> D1 -> ... (each W^l is (D_{l-1}, D_l)), all different."""
    dims = [int(d) for d in rng.choice(np.arange(2, high), size=n_layers + 1, replace=False)]
    return [(dims[i], dims[i + 1]) for i in range(n_layers)]


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _layers_text(weights) -> str:
    return f"{len(weights)} layers " + ", ".join(_shape_text(W.shape) for W in weights)


def _weights_list(n: int) -> dict:
    return {"list": [given(f"W{i}") for i in range(n)]}


def _norm_case(W: np.ndarray, functions: tuple[str, ...], label: str, reference) -> Case:
    plan = [call(f, given("W"), out=f) for f in functions]
    return Case(
        name=label,
        plan=plan,
        returns={f: var(f) for f in functions},
        inputs={"W": W},
        expected={f: np.float64(getattr(reference, f)(W.copy())) for f in functions},
        params={"kind": "norm"},
    )


def _penalty_case(weights, lam: float, functions: tuple[str, ...], reference) -> Case:
    plan = [call(f, _weights_list(len(weights)), lam, out=f) for f in functions]
    return Case(
        name=f"{_layers_text(weights)}, λ = {lam:g}",
        plan=plan,
        returns={f: var(f) for f in functions},
        inputs={f"W{i}": W for i, W in enumerate(weights)},
        expected={
            f: np.float64(getattr(reference, f)([W.copy() for W in weights], lam))
            for f in functions
        },
        params={"kind": "penalty", "lam": lam, "layers": len(weights)},
    )


def _grad_case(weights, lam: float, function: str, reference, *, label: str = "") -> Case:
    expected = [
        np.asarray(g, dtype=np.float64)
        for g in getattr(reference, function)([W.copy() for W in weights], lam)
    ]
    return Case(
        name=label or f"{function}: {_layers_text(weights)}, λ = {lam:g}",
        plan=[
            let("weights", _weights_list(len(weights))),
            call(function, var("weights"), lam, out="grads"),
        ],
        returns={"grads": var("grads"), "weights_after": var("weights")},
        inputs={f"W{i}": W for i, W in enumerate(weights)},
        expected={"grads": expected},
        params={
            "kind": "grad",
            "function": function,
            "lam": lam,
            "layers": len(weights),
            "source": "reference",
        },
    )


def _finite_difference_case(weights, lam: float, function: str, reference) -> Case:
    """Expected gradient: centred finite differences of the reference penalty, in float64."""
    penalty = reference.l1_penalty if function == "l1_penalty_grad" else reference.l2_penalty
    work = [W.copy() for W in weights]
    expected = []
    for W in work:
        expected.append(numerical_gradient(lambda _, work=work: float(penalty(work, lam)), W))
    case = _grad_case(weights, lam, function, reference)
    case.name = (
        f"{function} against finite differences of the penalty: {_layers_text(weights)}, "
        f"λ = {lam:g}"
    )
    case.expected = {"grads": expected}
    case.params["source"] = "finite differences"
    return case


# --------------------------------------------------------------------------- builders
def _slides_matrix(seed: int, check_id: str) -> np.ndarray:
    """The slides' matrix in the shipped fixtures. At any other seed (the batch grade) its
    entries are shuffled, their signs flipped and the whole scaled by the seed, so its answer can
    be read neither off the slides nor off the fixtures."""
    if seed == public_seed(check_id):
        return SLIDE_W.copy()
    rng = np.random.default_rng([seed, 3])
    entries = rng.permutation(SLIDE_W.ravel()) * rng.choice([-1.0, 1.0], SLIDE_W.size)
    return rng.uniform(0.5, 2.0) * entries.reshape(SLIDE_W.shape)


def _public_norm_cases(seed: int, function: str, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    slides = _slides_matrix(seed, f"norms_{function}")
    return [
        _norm_case(slides, (function,), "the slides' 3×3 matrix", reference),
        _norm_case(
            _matrix(rng, (4, 7), "weights"), (function,), "weights of shape (4, 7)", reference
        ),
        _norm_case(
            _matrix(rng, (9, 3), "shifted"),
            (function,),
            "shifted and scaled entries, shape (9, 3)",
            reference,
        ),
    ]


def build_l1_norm(seed: int, reference) -> list[Case]:
    return _public_norm_cases(seed, "l1_norm", reference)


def build_l2_norm(seed: int, reference) -> list[Case]:
    return _public_norm_cases(seed, "l2_norm", reference)


def build_hidden_norms(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(6):
        shape = _random_shape(rng)
        style = "weights" if i % 2 == 0 else "shifted"
        what = "weights" if style == "weights" else "shifted and scaled entries"
        cases.append(
            _norm_case(
                _matrix(rng, shape, style),
                ("l1_norm", "l2_norm"),
                f"{what}, shape {_shape_text(shape)}",
                reference,
            )
        )
    return cases


def _public_layers(rng: np.random.Generator) -> list[list[np.ndarray]]:
    return [
        [
            _matrix(rng, (6, 5), "weights"),
            _matrix(rng, (5, 4), "shifted"),
            _matrix(rng, (4, 3), "weights"),
        ],
        [_matrix(rng, (8, 2), "shifted"), _matrix(rng, (2, 7), "weights")],
    ]


def build_l1_penalty(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _penalty_case(ws, lam, ("l1_penalty",), reference)
        for ws, lam in zip(_public_layers(rng), (0.37, 2.5e-3), strict=True)
    ]


def build_l2_penalty(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _penalty_case(ws, lam, ("l2_penalty",), reference)
        for ws, lam in zip(_public_layers(rng), (0.37, 2.5e-3), strict=True)
    ]


HIDDEN_LAMBDAS = (1e-4, 3e-3, 0.05, 0.3, 0.7, 4.2)


def build_hidden_penalties(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for lam in rng.choice(HIDDEN_LAMBDAS, size=4, replace=False):
        shapes = _layer_shapes(rng, int(rng.integers(2, 5)))
        weights = [_matrix(rng, s, str(rng.choice(["weights", "shifted"]))) for s in shapes]
        cases.append(_penalty_case(weights, float(lam), ("l1_penalty", "l2_penalty"), reference))
    return cases


def build_l1_penalty_grad(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    zeros = [
        _with_zeros(rng, _matrix(rng, (5, 6), "weights"), 0.25),
        _with_zeros(rng, _matrix(rng, (6, 3), "shifted"), 0.2),
    ]
    return [
        _grad_case(
            zeros,
            0.3,
            "l1_penalty_grad",
            reference,
            label=f"exact zeros in W: {_layers_text(zeros)}, λ = 0.3",
        ),
        _grad_case(
            [_matrix(rng, (7, 4), "weights"), _matrix(rng, (4, 2), "shifted")],
            1.7e-2,
            "l1_penalty_grad",
            reference,
        ),
    ]


def build_l2_penalty_grad(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [
        _grad_case(
            [_matrix(rng, s, "weights") for s in ((5, 6), (6, 4), (4, 3))],
            0.3,
            "l2_penalty_grad",
            reference,
        ),
        _grad_case(
            [_matrix(rng, (8, 2), "shifted"), _matrix(rng, (2, 5), "weights")],
            1.7e-2,
            "l2_penalty_grad",
            reference,
        ),
    ]


def build_hidden_gradients(seed: int, reference) -> list[Case]:
    rng = np.random.default_rng(seed)
    lams = [float(lam) for lam in rng.choice(HIDDEN_LAMBDAS, size=4, replace=False)]
    shapes = _layer_shapes(rng, 3)
    with_zeros = [_with_zeros(rng, _matrix(rng, s, "weights"), 0.2) for s in shapes]
    cases = [
        _grad_case(
            with_zeros,
            lams[0],
            "l1_penalty_grad",
            reference,
            label=f"l1_penalty_grad with exact zeros in W: {_layers_text(with_zeros)}, "
            f"λ = {lams[0]:g}",
        ),
        _grad_case(
            [_matrix(rng, s, "shifted") for s in _layer_shapes(rng, 4)],
            lams[1],
            "l2_penalty_grad",
            reference,
        ),
    ]
    small = _layer_shapes(rng, 2, high=8)  # finite differences cost two penalties per entry
    # entries away from 0 here too: finite differences carry an absolute round-off error of
    # about eps·R/h, which would dominate the element-wise relative error of a tiny λ·w
    shift = float(rng.uniform(1.6, 3.0))
    cases.append(
        _finite_difference_case(
            [shift + _away_from_zero(rng, s) for s in small], lams[2], "l2_penalty_grad", reference
        )
    )
    cases.append(
        _finite_difference_case(
            [_away_from_zero(rng, s) for s in small], lams[3], "l1_penalty_grad", reference
        )
    )
    return cases


# --------------------------------------------------------------------------- mistakes
def _entrywise_sq(W) -> float:
    return float(np.sum(W * W))


def _scalar_variants(function: str, weights: list[np.ndarray], lam: float | None):
    """(value, diagnosis ids, what it looks like) for each recognised wrong answer."""
    fro = [np.sqrt(_entrywise_sq(W)) for W in weights]
    sq = [_entrywise_sq(W) for W in weights]
    absum = [float(np.abs(W).sum()) for W in weights]
    colsum = [float(np.abs(W).sum(axis=0).max()) for W in weights]
    rowsum = [float(np.abs(W).sum(axis=1).max()) for W in weights]
    spectral = [float(np.linalg.norm(W, 2)) for W in weights]
    plain = [float(W.sum()) for W in weights]
    if function == "l1_norm":
        return [
            (
                colsum[0],
                ("norms.l1_max_column_sum",),
                "your value is the largest column sum of |W| (np.linalg.norm(W, 1))",
            ),
            (rowsum[0], (), "your value is the largest row sum of |W| (np.linalg.norm(W, inf))"),
            (plain[0], (), "your value is the sum of the entries without absolute values"),
            (fro[0], (), "your value is the L2 (Frobenius) norm"),
        ]
    if function == "l2_norm":
        return [
            (spectral[0], ("norms.l2_spectral",), "your value is the spectral norm"),
            (sq[0], ("norms.l2_norm_no_sqrt",), "your value is the sum of squares, without √"),
            (absum[0], (), "your value is the L1 norm"),
        ]
    if function == "l1_penalty":
        return [
            (
                lam * sum(colsum),
                ("norms.l1_max_column_sum",),
                "your value is λ times the sum of the largest column sums (np.linalg.norm(W, 1))",
            ),
            (sum(absum), (), "your value is Σ‖W‖₁ without the factor λ"),
            (lam / 2 * sum(absum), (), "your value is half the expected one: no ½ in L1"),
            (lam * absum[0], (), "your value is the penalty of the first layer only"),
            (lam * absum[-1], (), "your value is the penalty of the last layer only"),
            (lam * sum(plain), (), "your value uses the entries without absolute values"),
        ]
    if function == "l2_penalty":
        return [
            (lam * sum(sq), ("norms.l2_missing_half",), "your value is twice the expected one"),
            (
                lam / 2 * sum(fro),
                ("norms.l2_penalty_sqrt",),
                "your value is (λ/2)·Σ‖W‖₂, with the norm instead of its square",
            ),
            (
                lam / 2 * np.sqrt(sum(sq)),
                ("norms.l2_penalty_sqrt",),
                "your value is (λ/2)·√(Σ‖W‖₂²), with a square root",
            ),
            (
                lam * sum(fro),
                ("norms.l2_penalty_sqrt", "norms.l2_missing_half"),
                "your value is λ·Σ‖W‖₂: no square and no ½",
            ),
            (
                lam / 2 * sum(s * s for s in spectral),
                ("norms.l2_spectral",),
                "your value uses the spectral norm (np.linalg.norm(W, 2))",
            ),
            (
                lam / 2 * sum(spectral),
                ("norms.l2_spectral", "norms.l2_penalty_sqrt"),
                "your value is (λ/2)·Σ of spectral norms, not squared",
            ),
            (sum(sq) / 2, (), "your value is ½Σ‖W‖₂² without the factor λ"),
            (lam / 2 * sq[0], (), "your value is the penalty of the first layer only"),
            (lam / 2 * sq[-1], (), "your value is the penalty of the last layer only"),
        ]
    raise ValueError(function)


def _grad_variants(function: str, weights: list[np.ndarray], lam: float):
    """(list of arrays, diagnosis ids, what it looks like) for each recognised wrong gradient."""
    if function == "l1_penalty_grad":
        return [
            ([lam * np.abs(W) for W in weights], ("norms.l1_grad_abs",), "your gradient is λ|W|"),
            ([np.sign(W) for W in weights], (), "your gradient is sign(W) without the factor λ"),
            ([lam * W for W in weights], (), "your gradient is λW, the L2 penalty's gradient"),
            (
                [lam / 2 * np.sign(W) for W in weights],
                (),
                "your gradient is half the expected one",
            ),
        ]
    norms = [np.sqrt(_entrywise_sq(W)) for W in weights]
    total = np.sqrt(sum(_entrywise_sq(W) for W in weights))
    return [
        ([2 * lam * W for W in weights], ("norms.l2_missing_half",), "your gradient is 2λW"),
        (
            [lam / 2 * W / n for W, n in zip(weights, norms, strict=True)],
            ("norms.l2_penalty_sqrt",),
            "your gradient is that of (λ/2)·‖W‖₂, the norm instead of its square",
        ),
        (
            [lam * W / n for W, n in zip(weights, norms, strict=True)],
            ("norms.l2_penalty_sqrt",),
            "your gradient is λW/‖W‖₂, the gradient of a norm without its square",
        ),
        (
            [lam / 2 * W / total for W in weights],
            ("norms.l2_penalty_sqrt",),
            "your gradient is that of (λ/2)·√(Σ‖W‖₂²), with a square root",
        ),
        ([W.copy() for W in weights], (), "your gradient is W without the factor λ"),
        ([lam * np.sign(W) for W in weights], (), "your gradient is λ·sign(W), the L1 gradient"),
        ([lam / 2 * W for W in weights], (), "your gradient is λW/2, half the expected one"),
    ]


def _close_scalar(value: float, target: float, tol: float) -> bool:
    return abs(value - target) <= tol * max(abs(target), 1e-12)


# --------------------------------------------------------------------------- judges
def _weights_of(case: Case) -> list[np.ndarray]:
    if "W" in case.inputs:
        return [case.inputs["W"]]
    return [case.inputs[f"W{i}"] for i in range(case.params["layers"])]


def _judge_scalar(case: Case, outputs: dict[str, Returned], function: str, notes: list) -> str:
    """Judge one returned number; a short description when right, a Mismatch when wrong."""
    value = as_scalar(outputs.get(function), f"{function}(...)", notes)
    expected = float(case.expected[function])
    error = abs(value - expected) / max(abs(expected), 1e-12)
    if error <= VALUE_TOL:
        return f"{function} = {value:.6g}"
    weights = _weights_of(case)
    lam = case.params.get("lam")
    found, diagnosis = [], []
    for target, ids, text in _scalar_variants(function, weights, lam):
        if _close_scalar(value, target, VARIANT_TOL):
            found.append(text)
            diagnosis.extend(ids)
            break
    message = (
        f"{function} returned {value:.6g}; expected {expected:.6g} "
        f"(relative error {error:.2e} > tolerance {VALUE_TOL:.0e})"
    )
    if found:
        message += f": {found[0]}"
    if "W" in case.inputs and np.array_equal(case.inputs["W"], SLIDE_W):
        if function == "l1_norm" and _close_scalar(value, 1.2, VARIANT_TOL):
            message += " (1.2 is what the slide prints, but 0.1+0.5+0.3+…+0.3 = 2.4)"
        if function == "l2_norm" and _close_scalar(value, 0.78, VARIANT_TOL):
            message += " (0.78 is the slide's sum of squares, i.e. the squared norm)"
    raise Mismatch(message, tuple(dict.fromkeys(diagnosis)))


def judge_values(case: Case, outputs: dict[str, Returned]) -> CaseResult:
    """Norms and penalties: every function named in the case's expected values."""
    notes: list[str] = []
    problems, diagnosis, good = [], [], []
    for function in case.expected:
        try:
            good.append(_judge_scalar(case, outputs, function, notes))
        except Mismatch as exc:
            problems.append(exc.message)
            diagnosis.extend(exc.diagnosis)
    if problems:
        raise Mismatch("; ".join(problems), tuple(dict.fromkeys(diagnosis)))
    return CaseResult(case.name, True, ", ".join(good), notes=tuple(notes))


def _gradient_list(
    value: Returned | None, weights: list[np.ndarray], function: str, notes: list
) -> list[np.ndarray]:
    """The returned gradients as float64 arrays, one per weight matrix, or a Mismatch."""
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
    grads = []
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
        grads.append(as_array(item, what, W.shape, notes))
    return grads


def _grad_error(grads: list[np.ndarray], targets: list[np.ndarray]) -> float:
    return max(rel_error(g, t) for g, t in zip(grads, targets, strict=True))


def judge_gradients(case: Case, outputs: dict[str, Returned]) -> CaseResult:
    notes: list[str] = []
    weights = _weights_of(case)
    function, lam = case.params["function"], case.params["lam"]
    grads = _gradient_list(outputs.get("grads"), weights, function, notes)
    expected = case.expected["grads"]
    error = _grad_error(grads, expected)
    against = case.params["source"]
    if error > GRAD_TOL:
        diagnosis, found = [], ""
        for target, ids, text in _grad_variants(function, weights, lam):
            if _grad_error(grads, target) <= VARIANT_TOL:
                diagnosis, found = list(ids), text
                break
        if not found and function == "l1_penalty_grad":
            zero = [W == 0 for W in weights]
            off_zero_ok = all(
                rel_error(g[~z], t[~z]) <= GRAD_TOL
                for g, t, z in zip(grads, expected, zero, strict=True)
            )
            if off_zero_ok:
                found = (
                    "your gradient is right wherever w ≠ 0 but not 0 where the weight is exactly "
                    "0; the contract uses sign(0) = 0"
                )
        message = (
            f"the gradients differ from the {against} (relative error {error:.2e} > tolerance "
            f"{GRAD_TOL:.0e})"
        )
        if found:
            message += f": {found}"
        raise Mismatch(message, tuple(dict.fromkeys(diagnosis)))
    if function == "l1_penalty_grad":
        for i, (g, W) in enumerate(zip(grads, weights, strict=True)):
            if np.any(g[W == 0] != 0):
                raise Mismatch(
                    f"the gradient of weights[{i}] is not exactly 0 where the weight is exactly "
                    "0; the contract uses sign(0) = 0"
                )
    after = outputs.get("weights_after")
    if after is None or after.kind != "sequence" or after.length != len(weights):
        raise Mismatch(f"{function} replaced or emptied the list of weights it was given")
    for i, (item, W) in enumerate(zip(after.items, weights, strict=True)):
        if item.array is None or item.array.shape != W.shape or not np.array_equal(item.array, W):
            raise Mismatch(
                f"{function} changed weights[{i}] in place; compute new arrays instead (in "
                "training, the weights would be changed behind the optimiser's back)"
            )
    zeros = sum(int(np.sum(W == 0)) for W in weights)
    detail = f", exactly 0 at the {zeros} zero weights" if zeros and "l1" in function else ""
    return CaseResult(
        case.name,
        True,
        f"matches the {against} (relative error {error:.1e}){detail}",
        notes=tuple(notes),
    )


def _check(check_id, title, points, hidden, functions, build, judge) -> Check:
    return Check(
        check_id, NOTEBOOK, title, points, hidden, functions, build, judge, needs_reference=True
    )


CHECKS = [
    _check(
        "norms_l1_norm",
        "entry-wise L1 norm, including the slides' matrix",
        1,
        False,
        ("l1_norm",),
        build_l1_norm,
        judge_values,
    ),
    _check(
        "norms_l2_norm",
        "L2 (Frobenius) norm, including the slides' matrix",
        1,
        False,
        ("l2_norm",),
        build_l2_norm,
        judge_values,
    ),
    _check(
        "norms_hidden_norms",
        "both norms on hidden matrices",
        1,
        True,
        ("l1_norm", "l2_norm"),
        build_hidden_norms,
        judge_values,
    ),
    _check(
        "norms_l1_penalty",
        "L1 penalty over several layers",
        1,
        False,
        ("l1_penalty",),
        build_l1_penalty,
        judge_values,
    ),
    _check(
        "norms_l2_penalty",
        "L2 penalty over several layers",
        1,
        False,
        ("l2_penalty",),
        build_l2_penalty,
        judge_values,
    ),
    _check(
        "norms_hidden_penalties",
        "both penalties on hidden layers and λ",
        1,
        True,
        ("l1_penalty", "l2_penalty"),
        build_hidden_penalties,
        judge_values,
    ),
    _check(
        "norms_l1_penalty_grad",
        "L1 (sub)gradient, exact zeros included",
        2,
        False,
        ("l1_penalty_grad",),
        build_l1_penalty_grad,
        judge_gradients,
    ),
    _check(
        "norms_l2_penalty_grad",
        "L2 gradient (weight decay)",
        2,
        False,
        ("l2_penalty_grad",),
        build_l2_penalty_grad,
        judge_gradients,
    ),
    _check(
        "norms_hidden_gradients",
        "both gradients on hidden layers, against the reference and finite differences",
        2,
        True,
        ("l1_penalty_grad", "l2_penalty_grad"),
        build_hidden_gradients,
        judge_gradients,
    ),
]
