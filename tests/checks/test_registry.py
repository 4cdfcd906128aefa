"""The registry finds its topics: modules of ``grader.checks`` and installed entry points."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import grader.checks as registry
from grader.checks import CHECKS, MISCONCEPTIONS, NOTEBOOKS, TOPICS, checks_for, get_check
from grader.checks.base import Misconception, call, given, var
from grader.checks.table import Kind, Row, Spec, Topic, compare


def _toy(notebook: str, check_id: str, mid: str = "toy.mistake") -> Topic:
    kind = Kind(
        "double",
        functions=("double",),
        make=lambda rng, n: {"x": rng.standard_normal((n, 2))},
        plan=lambda s: [call("double", given("x"), out="y")],
        returns={"y": var("y")},
        judge=compare(),
    )
    return Topic(
        notebook,
        ("double",),
        [Misconception(mid, "t", "h")],
        [kind],
        [Row(check_id, "d", 1, [Spec("double", n=3)])],
    )


def test_every_topic_module_of_the_package_is_registered():
    found = []
    for info in pkgutil.iter_modules(registry.__path__, prefix="grader.checks."):
        module = importlib.import_module(info.name)
        if hasattr(module, "TOPIC") or hasattr(module, "CHECKS"):
            found.append(module)
    assert found, "no topic module found"
    assert sorted(m.NOTEBOOK for m in found) == list(NOTEBOOKS) == [t.notebook for t in TOPICS]
    for module in found:
        assert NOTEBOOKS[module.NOTEBOOK] == tuple(module.FUNCTIONS)
        # the very Check objects of the module (the runners cache their cases by them)
        assert checks_for(module.NOTEBOOK) == list(module.CHECKS)
        assert all(get_check(c.id) is c for c in module.CHECKS)
        assert set(module.MISCONCEPTIONS) <= set(MISCONCEPTIONS)
    assert len(CHECKS) == sum(len(m.CHECKS) for m in found)
    assert all(t.fixtures == "grader.checks" and t.reference == "" for t in TOPICS)


def test_a_topic_object_registers_with_its_package_for_fixtures():
    topic = _toy("95_toy", "toy_double")
    entry = registry.from_topic(topic, "test", "grader.checks.table")
    tables = registry.register([entry, *TOPICS])
    assert list(tables["NOTEBOOKS"]) == sorted([*NOTEBOOKS, "95_toy"])
    assert entry.fixtures == "grader.checks"  # the package of the module that defines it
    assert tables["CHECKS"]["toy_double"].notebook == "95_toy"
    assert entry.NOTEBOOK == "95_toy" and "toy.mistake" in entry.MISCONCEPTIONS


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (_toy("95_toy", "other_id", "other.id"), "two topics define the notebook '95_toy'"),
        (_toy("96_toy", "toy_double", "other.id"), "two checks have the id 'toy_double'"),
        (_toy("96_toy", "other_id"), "two misconceptions have the id 'toy.mistake'"),
    ],
)
def test_clashes_fail_naming_both_origins(second, message):
    first = registry.from_topic(_toy("95_toy", "toy_double"), "origin one", "grader.checks")
    other = registry.from_topic(second, "origin two", "grader.checks")
    with pytest.raises(registry.RegistryError, match=message) as raised:
        registry.register([first, other])
    assert "origin one" in str(raised.value) and "origin two" in str(raised.value)


def _distribution(folder, package: str, value: str, code: str) -> None:
    """An installed distribution as importlib.metadata finds one: a package and its .dist-info."""
    (folder / package).mkdir(parents=True)
    (folder / package / "__init__.py").write_text(code, encoding="utf-8")
    info = folder / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{value}\n")


TOY_MODULE = """\
'''Checks for notebook 97: a toy.'''
from grader.checks.base import Misconception, call, given, var
from grader.checks.table import Kind, Row, Spec, Topic, compare

KIND = Kind("k", ("double",), lambda rng, n: {"x": rng.standard_normal((n, 2))},
            lambda s: [call("double", given("x"), out="y")], {"y": var("y")}, compare())
TOPIC = Topic("97_toy", ("double",), [Misconception("toy97.m", "t", "h")], [KIND],
              [Row("toy97_double", "d", 1, [Spec("k", n=3)])], reference="toy97_reference")
"""


def test_entry_points_are_found_on_the_path(tmp_path, monkeypatch):
    _distribution(tmp_path, "toy97", "toy = toy97:TOPIC", TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        (entry,) = [e for e in registry._installed() if e.notebook == "97_toy"]
        assert entry.origin == "entry point toy = toy97:TOPIC"
        assert (entry.fixtures, entry.reference) == ("toy97", "toy97_reference")
        assert entry.title == "Checks for notebook 97: a toy."
        assert [c.id for c in entry.checks] == ["toy97_double"]
    finally:
        sys.modules.pop("toy97", None)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("TOPIC = 42\n", "is not a grader.checks.table.Topic"),
        ("raise ImportError('broken on purpose')\n", "fails to load: broken on purpose"),
        (
            "from grader.checks.table import Topic\nTOPIC = Topic('01_norms', (), [], [], [])\n",
            "two topics define the notebook '01_norms'",
        ),
    ],
)
def test_a_bad_entry_point_stops_the_grader_with_its_name(tmp_path, code, message):
    _distribution(tmp_path, "badtopic", "bad = badtopic:TOPIC", code)
    done = subprocess.run(
        [sys.executable, "-c", "from grader.checks import NOTEBOOKS"],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert message in done.stderr and "badtopic:TOPIC" in done.stderr
