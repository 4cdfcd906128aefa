"""The check library: every check, misconception and notebook the kit knows, as data.

Topics are found, never listed by hand:

* every module of this package that defines ``TOPIC`` (a :class:`~grader.checks.table.Topic`):
  a new built-in exercise needs no edit here;
* every entry point of the group ``dnn_kit.topics`` in the installed distributions, each naming
  a ``Topic`` object (``mycourse.checks:TOPIC``): an instructor's own topic, kept outside this
  repository (its reference solutions stay private, see :mod:`grader.references`).

They are sorted by notebook name. Two topics with the same notebook, or two checks (or
misconceptions) with the same id, stop the grader with a message naming both origins.

Discovery runs on first use of ``TOPICS``, ``NOTEBOOKS``, ``CHECKS`` or ``MISCONCEPTIONS``
(module attributes computed lazily), so importing :mod:`grader.checks.base` costs nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.checks.base import Check, Misconception
    from grader.checks.table import Topic

ENTRY_POINT_GROUP = "dnn_kit.topics"


class RegistryError(RuntimeError):
    """Topics that cannot be registered together (a clash of notebooks or ids, a bad entry)."""


@dataclass(frozen=True)
class Registered:
    """One registered topic: what the tools read of it, and where it came from.

    ``fixtures``: the package whose ``fixtures/`` folder holds the topic's public fixtures
    (``Topic.fixtures`` if set, else the package of the module defining the topic).
    ``reference``: ``Topic.reference`` (empty: the kit's own reference package).
    """

    notebook: str
    functions: tuple[str, ...]
    misconceptions: dict[str, Misconception]
    checks: tuple[Check, ...]
    origin: str  # "grader.checks.norms" or "entry point mycourse = mycourse.checks:TOPIC"
    fixtures: str = "grader.checks"
    reference: str = ""
    title: str = ""
    topic: Topic | None = None

    # the names the tools and the tests have always read of a topic module
    @property
    def NOTEBOOK(self) -> str:  # noqa: N802
        return self.notebook

    @property
    def FUNCTIONS(self) -> tuple[str, ...]:  # noqa: N802
        return self.functions

    @property
    def MISCONCEPTIONS(self) -> dict[str, Misconception]:  # noqa: N802
        return self.misconceptions

    @property
    def CHECKS(self) -> tuple[Check, ...]:  # noqa: N802
        return self.checks


def _package_of(module_name: str) -> str:
    module = importlib.import_module(module_name)
    return module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]


def from_topic(topic: Topic, origin: str, module_name: str, checks=None, title="") -> Registered:
    """A :class:`Registered` of a ``Topic`` object (``checks``: already compiled ones)."""
    from grader.checks.table import Topic

    if not isinstance(topic, Topic):
        raise RegistryError(f"{origin}: {topic!r} is not a grader.checks.table.Topic")
    return Registered(
        notebook=topic.notebook,
        functions=tuple(topic.functions),
        misconceptions=topic.catalogue,
        checks=tuple(topic.checks() if checks is None else checks),
        origin=origin,
        fixtures=topic.fixtures or _package_of(module_name),
        reference=topic.reference,
        title=title,
        topic=topic,
    )


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


def _builtin() -> list[Registered]:
    found = []
    for info in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
        module = importlib.import_module(info.name)
        title = _first_line(module.__doc__)
        if hasattr(module, "TOPIC"):
            found.append(
                from_topic(
                    module.TOPIC, info.name, info.name, getattr(module, "CHECKS", None), title
                )
            )
    return found


def _installed() -> list[Registered]:
    found = []
    for point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        origin = f"entry point {point.name} = {point.value}"
        try:
            topic = point.load()
        except Exception as exc:  # noqa: BLE001 - any failure names the entry point
            raise RegistryError(
                f"{origin} (group {ENTRY_POINT_GROUP}) fails to load: {exc}"
            ) from exc
        title = _first_line(getattr(importlib.import_module(point.module), "__doc__", ""))
        found.append(from_topic(topic, origin, point.module, title=title))
    return found


def register(topics: list[Registered]) -> dict[str, Any]:
    """The registry tables of ``topics`` (sorted by notebook), or a :class:`RegistryError`."""
    topics = sorted(topics, key=lambda t: t.notebook)
    notebooks: dict[str, Registered] = {}
    checks: dict[str, tuple[Check, Registered]] = {}
    misconceptions: dict[str, tuple[Misconception, Registered]] = {}
    for topic in topics:
        if topic.notebook in notebooks:
            raise RegistryError(
                f"two topics define the notebook {topic.notebook!r}: "
                f"{notebooks[topic.notebook].origin} and {topic.origin}"
            )
        notebooks[topic.notebook] = topic
        for check in topic.checks:
            if check.id in checks:
                raise RegistryError(
                    f"two checks have the id {check.id!r}: one in {checks[check.id][1].origin}, "
                    f"one in {topic.origin}"
                )
            if check.notebook != topic.notebook:
                raise RegistryError(
                    f"{topic.origin}: check {check.id!r} says notebook {check.notebook!r}, "
                    f"its topic is {topic.notebook!r}"
                )
            checks[check.id] = (check, topic)
        for mid, item in topic.misconceptions.items():
            if mid in misconceptions:
                raise RegistryError(
                    f"two misconceptions have the id {mid!r}: one in "
                    f"{misconceptions[mid][1].origin}, one in {topic.origin}"
                )
            misconceptions[mid] = (item, topic)
    return {
        "TOPICS": tuple(topics),
        "NOTEBOOKS": {t.notebook: t.functions for t in topics},
        "CHECKS": {cid: check for cid, (check, _) in checks.items()},
        "MISCONCEPTIONS": {mid: item for mid, (item, _) in misconceptions.items()},
        "BY_NOTEBOOK": notebooks,
    }


_tables: dict[str, Any] = {}
_discovering: list[bool] = []


def _registry() -> dict[str, Any]:
    if not _tables:
        if _discovering:
            raise RegistryError(
                "a topic module reads the registry (TOPICS, CHECKS, ...) while it is imported; "
                "import grader.checks.base or grader.checks.table there instead"
            )
        _discovering.append(True)
        try:
            _tables.update(register(_builtin() + _installed()))
        finally:
            _discovering.clear()
    return _tables


def __getattr__(name: str):
    # TOPICS, NOTEBOOKS, CHECKS, MISCONCEPTIONS: discovered on first use (PEP 562)
    if name in ("TOPICS", "NOTEBOOKS", "CHECKS", "MISCONCEPTIONS"):
        return _registry()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def topic_of(notebook: str) -> Registered:
    """The registered topic of one notebook."""
    try:
        return _registry()["BY_NOTEBOOK"][notebook]
    except KeyError:
        known = ", ".join(_registry()["NOTEBOOKS"])
        raise KeyError(f"no topic for the notebook {notebook!r}; known: {known}") from None


def checks_for(notebook: str, include_hidden: bool = True) -> list[Check]:
    """The checks of one notebook, in the order they appear in it."""
    return [
        c
        for c in _registry()["CHECKS"].values()
        if c.notebook == notebook and (include_hidden or not c.hidden)
    ]


def get_check(check_id: str) -> Check:
    checks = _registry()["CHECKS"]
    try:
        return checks[check_id]
    except KeyError:
        raise KeyError(f"no check called {check_id!r}; known: {', '.join(checks)}") from None
