r"""Checks as tables: a topic declares case *kinds* once and lists its checks as rows.

A **kind** is one sort of case, declared once: how its inputs are made from a random generator
(``make``), which student functions it calls and how (``plan``, a call plan run by
:mod:`grader.runner.child`), what comes back (``returns``) and how that is judged (``judge``).
The expected values are never written by hand: :func:`build` runs the *same plan* on the
reference solution, in the trusted process, and keeps its returns as ``case.expected``. Values a
judge needs are copied the moment the call that made them returns (copy-on-return, for the
student's process and the reference alike).

**The judge interface, in one sentence:** a judge is ``judge(case, got) -> CaseResult``, where
``case`` holds the inputs, the settings (``case.params``) and the reference's returns of the same
plan (``case.expected``), and ``got`` the student's returns (:class:`~grader.checks.base.Returned`,
numbers only); a judge may raise :class:`~grader.checks.base.Mismatch` as a short cut for a failed
case. Most kinds need no judge code at all: :func:`compare` builds one that compares returned
arrays, numbers or lists of arrays with the expected ones within a tolerance and names the
catalogued mistake (a :class:`Variant`) that explains a wrong answer.

A **row** (:class:`Row`) is one check, that is one nbgrader grade cell: id, title, points,
public or hidden, and its cases (:class:`Spec`: a kind, its settings, optional points of its
own). A hidden check is a row of its own that uses the same kinds (hidden tests in Gradescope
are released ``after_published``; a mixed check would leak hidden messages).

**Errors carried forward.** A backward kind whose plan also returns the student's forward output
passes ``carry=Carry(check, variants, forward)`` to :func:`compare`: when the forward fails the
reference but matches a catalogued variant, and the backward matches *that variant's* exact
gradient, the case is marked ``carried_forward`` (earned unless the course turns the rule off, see
:attr:`~grader.checks.base.CheckResult.carry_forward`) and the message says which check charged
the mistake. A forward that matches no variant (no normalisation, all zeros, the identity) is
judged against the reference only, so its own exact gradient earns nothing.

A worked example (the whole check of a function ``double(x) -> 2 x``)::

    DOUBLE = Kind(
        "double",
        functions=("double",),
        make=lambda rng, n, d: {"x": rng.standard_normal((n, d))},
        plan=lambda s: [call("double", given("x"), out="y")],
        returns={"y": var("y")},
        judge=compare(variants=lambda case: [Variant("demo.forgot_two", "returns x",
                                                     {"y": case.inputs["x"]})]),
        title=lambda s: f"x of shape ({s['n']}, {s['d']})",
    )
    TOPIC = Topic(
        notebook="00_demo", functions=("double",), misconceptions=[...], kinds=[DOUBLE],
        rows=[Row("demo_double", "doubling", 1, [Spec("double", n=4, d=3)])],
    )
    CHECKS = TOPIC.checks()   # what the registry, both runners and the fixtures read
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
)
from grader.runner.child import run_plan

Settings = Mapping[str, Any]


# --------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Variant:
    """What a catalogued mistake returns at one case (computed in the trusted process).

    ``values``: returned name -> the mistaken function's value. ``carried``: for a *forward*
    variant used in errors carried forward, the exact backward values of that mistaken forward
    at the same inputs (returned name -> value).
    """

    misconception: str  # a catalogue id, or "" for a description only
    description: str
    values: Mapping[str, Any]
    carried: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Carry:
    """Errors carried forward for a backward kind (see the module docstring)."""

    check: str  # the check that charges the forward's mistakes, e.g. "bn_forward_train"
    variants: Callable[[Case], Sequence[Variant]]  # forward variants, each with ``carried``
    forward: str = "out"  # the returned name holding the student's forward output


@dataclass(frozen=True)
class Kind:
    """One sort of case: inputs from a generator, the call plan, what returns, the judge."""

    name: str
    functions: tuple[str, ...]  # student functions the plan calls
    make: Callable[..., dict[str, np.ndarray]]  # make(rng, **settings) -> inputs
    plan: Callable[[Settings], list[dict]]
    returns: Mapping[str, Any] | Callable[[Settings], Mapping[str, Any]]
    judge: Callable[[Case, dict[str, Returned]], CaseResult]
    title: Callable[[Settings], str] | str = ""
    reference: bool = True  # run the plan on the reference for ``case.expected``
    derive: Callable[[Case, Any], Mapping[str, Any]] | None = None  # extra trusted expectations


@dataclass(frozen=True)
class Spec:
    """One case of a check: its kind, its settings (JSON scalars), and optionally its points."""

    kind: str
    settings: Mapping[str, Any]
    points: float = 1.0  # relative weight of this case within its check
    title: str = ""

    def __init__(self, kind: str, points: float = 1.0, title: str = "", **settings):
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "title", title)


@dataclass(frozen=True)
class Row:
    """One check (one grade cell). ``cases`` is a list of :class:`Spec`, or a function of a
    random generator returning one (hidden checks draw their shapes and settings)."""

    id: str
    title: str
    points: float
    cases: Sequence[Spec] | Callable[[np.random.Generator], Sequence[Spec]]
    hidden: bool = False


@dataclass(frozen=True)
class Topic:
    """A notebook's checks: what a topic module exports (its ``TOPIC``)."""

    notebook: str
    functions: tuple[str, ...]
    misconceptions: Sequence[Misconception]
    kinds: Sequence[Kind]
    rows: Sequence[Row]
    reference: str = ""  # an importable module with the reference functions, for a topic kept
    # outside this repository (empty: the kit's own ``solutions/reference`` package)
    fixtures: str = ""  # the package whose ``fixtures/`` folder holds the public fixtures
    # (empty: the package of the module defining the topic, e.g. grader.checks)

    def checks(self) -> list[Check]:
        kinds = {k.name: k for k in self.kinds}
        if len(kinds) != len(self.kinds):
            raise ValueError(f"{self.notebook}: two kinds share a name")
        return [_compile(self, row, kinds) for row in self.rows]

    @property
    def catalogue(self) -> dict[str, Misconception]:
        return {m.id: m for m in self.misconceptions}


def _compile(topic: Topic, row: Row, kinds: dict[str, Kind]) -> Check:
    specs = row.cases if not callable(row.cases) else row.cases(np.random.default_rng(0))
    functions = tuple(dict.fromkeys(f for s in specs for f in kinds[s.kind].functions))

    def build_row(seed: int, reference) -> list[Case]:
        return build(row, kinds, seed, reference)

    def judge_row(case: Case, got: dict[str, Returned]) -> CaseResult:
        return kinds[case.params["kind"]].judge(case, got)

    return Check(
        id=row.id,
        notebook=topic.notebook,
        title=row.title,
        points=row.points,
        hidden=row.hidden,
        functions=functions,
        build=build_row,
        judge=judge_row,
        needs_reference=any(kinds[s.kind].reference for s in specs),
    )


# --------------------------------------------------------------------------- building
def build(row: Row, kinds: Mapping[str, Kind], seed: int, reference) -> list[Case]:
    """The cases of one row from ``seed``: inputs from the kind's ``make``, expected values from
    running the same plan on ``reference`` (trusted process)."""
    rng = np.random.default_rng(seed)
    specs = row.cases(rng) if callable(row.cases) else row.cases
    cases = []
    for index, spec in enumerate(specs):
        kind = kinds[spec.kind]
        inputs = kind.make(np.random.default_rng([seed, index]), **spec.settings)
        plan = kind.plan(spec.settings)
        returns = kind.returns(spec.settings) if callable(kind.returns) else dict(kind.returns)
        title = spec.title or (kind.title(spec.settings) if callable(kind.title) else kind.title)
        case = Case(
            name=title or kind.name,
            plan=plan,
            returns=dict(returns),
            inputs={k: np.asarray(v) for k, v in inputs.items()},
            params={"kind": kind.name, **spec.settings},
            points=float(spec.points),
        )
        if kind.reference:
            if reference is None:
                raise RuntimeError(f"check {row.id} needs the reference solutions")
            case.expected = expected_by_plan(reference, kind.functions, case)
        if kind.derive is not None:
            case.expected |= dict(kind.derive(case, reference))
        separated = getattr(kind.judge, "assert_separated", None)
        if separated is not None and kind.reference:
            separated(case)
        cases.append(case)
    return cases


def expected_by_plan(reference, functions: Sequence[str], case: Case) -> dict[str, Any]:
    """Run ``case.plan`` on the reference's functions; the returns, copied when made."""
    namespace = {}
    for name in functions:
        function = getattr(reference, name, None)
        if function is None:
            raise RuntimeError(f"the reference solutions have no function {name!r}")
        namespace[name] = function
    return run_plan(namespace, case.plan, case.returns, case.inputs, encode=snapshot)


def snapshot(value):
    """A trusted copy of a returned value: float64 arrays, lists of them, floats, or None."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return np.array(value, dtype=np.float64, copy=True)


# --------------------------------------------------------------------------- comparing
def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference relative to the size of the arrays: max|a-b| / (max|a| + max|b|)."""
    diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    if diff.size == 0:
        return 0.0
    scale = float(np.abs(a).max() + np.abs(b).max())
    return float(diff.max() / max(scale, 1e-8))


def slice_error(axis: int) -> Callable[[np.ndarray, np.ndarray], float]:
    """A metric for (N, D) arrays: the worst slice's :func:`relative_error`, one slice per column
    (``axis=0``) or per row (``axis=1``), for data whose columns or rows differ in scale; other
    arrays are compared as a whole (:func:`relative_error`)."""

    def error(a: np.ndarray, b: np.ndarray) -> float:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        diff = np.abs(a - b)
        if diff.ndim != 2 or diff.size == 0:
            return relative_error(a, b)
        scale = np.abs(a).max(axis=axis) + np.abs(b).max(axis=axis)
        return float(np.max(diff.max(axis=axis) / np.maximum(scale, 1e-8)))

    return error


def received(got: Returned | None, like, what: str, notes: list) -> Any:
    """The student's value shaped like the expected one ``like`` (array, number or list of
    arrays), or a :class:`Mismatch` saying precisely what is wrong with it."""
    if isinstance(like, list):
        if got is None or got.kind != "sequence":
            kind = "missing" if got is None else f"a {got.type}"
            raise Mismatch(f"{what} is {kind}; expected a list of {len(like)} arrays")
        if got.length != len(like):
            raise Mismatch(f"{what} has {got.length} items; expected {len(like)}")
        return [
            received(item, ref, f"{what}[{i}]", notes)
            for i, (item, ref) in enumerate(zip(got.items, like, strict=True))
        ]
    like = np.asarray(like)
    if like.ndim == 0:
        return as_scalar(got, what, notes)
    return as_array(got, what, like.shape, notes)


def distance(a, b, error: Callable = relative_error) -> float:
    """``error`` between two values of the same layout (lists compare item by item, worst)."""
    if isinstance(a, list) or isinstance(b, list):
        if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b):
            return np.inf
        return max((distance(x, y, error) for x, y in zip(a, b, strict=True)), default=0.0)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.all(np.isfinite(b)):
        return np.inf
    return error(a, b)


def _memo(case: Case, key: str, make: Callable[[Case], Sequence[Variant]]) -> list[Variant]:
    if key not in case.memo:
        case.memo[key] = list(make(case))
    return case.memo[key]


@dataclass(frozen=True)
class compare:  # noqa: N801 - used like a function in the tables: judge=compare(...)
    """A judge comparing returned values with ``case.expected`` within ``tol``.

    ``names``: which returns to judge (default: all expected ones, in order). ``labels``: how to
    call them in messages. ``variants(case)``: catalogued mistakes' values at this case, to name
    the one that explains a wrong answer. ``carry``: errors carried forward (module docstring).
    ``error``: the metric, ``error(answer, expected) -> float``.
    """

    names: tuple[str, ...] = ()
    tol: float = 1e-5
    variants: Callable[[Case], Sequence[Variant]] | None = None
    carry: Carry | None = None
    error: Callable[[np.ndarray, np.ndarray], float] = relative_error
    labels: Mapping[str, str] = field(default_factory=dict)
    distinct: float | None = None  # a variant is blamed only if this far from the right answer

    def __call__(self, case: Case, got: dict[str, Returned]) -> CaseResult:
        notes: list[str] = []
        names = self.names or tuple(case.expected)
        try:
            values = {
                n: received(got.get(n), case.expected[n], self._label(n), notes) for n in names
            }
        except Mismatch as exc:
            return CaseResult(case.name, False, exc.message, exc.diagnosis, tuple(notes))
        errors = {n: distance(values[n], case.expected[n], self.error) for n in names}
        wrong = [n for n in names if errors[n] > self.tol]
        if not wrong:
            return CaseResult(case.name, True, notes=tuple(notes))
        carried = self._carried(case, got, values, notes)
        if carried is not None:
            return carried
        found = self._explained(case, values, wrong)
        worst = max(wrong, key=lambda n: errors[n])
        message = (
            f"{', '.join(self._label(n) for n in wrong)} differ"
            f"{'s' if len(wrong) == 1 else ''} from the expected values: error "
            f"{errors[worst]:.2e} > tolerance {self.tol:.0e}"
        )
        if found:
            message += "; it matches " + " / ".join(dict.fromkeys(v.description for v in found))
        diagnosis = tuple(dict.fromkeys(v.misconception for v in found if v.misconception))
        return CaseResult(case.name, False, message, diagnosis, tuple(notes))

    def _label(self, name: str) -> str:
        return self.labels.get(name, name)

    def _explained(self, case: Case, values: dict, wrong: list[str]) -> list[Variant]:
        """The variants that explain the wrong values, the closest one per misconception."""
        if self.variants is None:
            return []
        distinct = self.tol if self.distinct is None else self.distinct
        best: dict[str, tuple[float, Variant]] = {}
        for variant in _memo(case, f"variants:{id(self)}", self.variants):
            names = [n for n in wrong if n in variant.values]
            if not names or any(
                distance(variant.values[n], case.expected[n], self.error) <= distinct for n in names
            ):
                continue
            gap = max(distance(values[n], variant.values[n], self.error) for n in names)
            key = variant.misconception or variant.description
            if gap <= self.tol and (key not in best or gap < best[key][0]):
                best[key] = (gap, variant)
        return [variant for _, variant in best.values()]

    def _carried(self, case: Case, got, values: dict, notes: list) -> CaseResult | None:
        carry = self.carry
        if carry is None or carry.forward not in case.expected:
            return None
        try:
            forward = received(got.get(carry.forward), case.expected[carry.forward], "out", [])
        except Mismatch:
            return None
        if distance(forward, case.expected[carry.forward], self.error) <= self.tol:
            return None  # the forward is right: the backward is judged on its own
        names = [n for n in values if n != carry.forward]
        fitting = []  # forward variants the student's forward matches, closest first
        for variant in _memo(case, f"carry:{id(self)}", carry.variants):
            if variant.misconception and carry.forward in variant.values:
                gap = distance(forward, variant.values[carry.forward], self.error)
                if gap <= self.tol:
                    fitting.append((gap, variant))
        for _, variant in sorted(fitting, key=lambda pair: pair[0]):
            if names and all(
                n in variant.carried
                and distance(values[n], variant.carried[n], self.error) <= self.tol
                for n in names
            ):
                message = (
                    f"your forward matches {variant.description} [{variant.misconception}], "
                    f"which is charged in {carry.check}; this backward is right for your "
                    "forward (errors carried forward)"
                )
                return CaseResult(
                    case.name,
                    False,
                    message,
                    notes=tuple(notes),
                    carried_forward=True,
                    charged_in=carry.check,
                )
        return None

    def assert_separated(self, case: Case) -> None:
        """Every named variant differs from the right answer by more than the tolerance here,
        so a catalogued mistake always costs points (builders call this on every case)."""
        families = [(f"variants:{id(self)}", self.variants)]
        if self.carry is not None:
            families.append((f"carry:{id(self)}", self.carry.variants))
        for key, make in families:
            if make is None:
                continue
            for variant in _memo(case, key, make):
                if not variant.misconception:
                    continue
                shared = [n for n in variant.values if n in case.expected]
                if shared and all(
                    distance(variant.values[n], case.expected[n], self.error) <= self.tol
                    for n in shared
                ):
                    raise AssertionError(
                        f"case {case.name!r}: the variant {variant.description!r} "
                        f"[{variant.misconception}] is within the tolerance of the right answer"
                    )
