"""Finding the instructor-only reference solutions (never part of the installed package).

The ``grader`` package is what students get; the answers live in the course repository under
``solutions/reference``. Instructors' tools find them, in this order: an explicit path
(``--reference``), the ``DNN_KIT_REFERENCE`` environment variable, a ``solutions/`` folder
above the current directory (an nbgrader course kept in this repository), and the
``solutions/`` folder beside an editable install of ``grader``.

A topic kept outside this repository (an instructor's own package, registered by an entry
point, see :mod:`grader.checks`) names its reference in ``Topic.reference``: an importable
module or package, or a path to one (``.py`` file or package folder). A name is looked up in
the folders of ``DNN_KIT_TOPIC_REFERENCES`` (``os.pathsep``-separated: the path given to the
grader, kept private), then in the ``solutions/`` folder holding the kit's reference, then on
``sys.path``. It is imported in the trusted process only; the sandboxed student never sees it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

MODULE_NAME = "_dnn_kit_reference"  # private name: never shadows a student's own `reference`
TOPIC_PATH_VARIABLE = "DNN_KIT_TOPIC_REFERENCES"


def locate(explicit: str | os.PathLike | None = None) -> Path | None:
    """The ``reference`` package folder, or None when no candidate exists."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("DNN_KIT_REFERENCE"):
        candidates.append(Path(os.environ["DNN_KIT_REFERENCE"]))
    here = Path.cwd().resolve()
    candidates += [parent / "solutions" for parent in (here, *here.parents)]
    candidates.append(Path(__file__).resolve().parent.parent / "solutions")
    for candidate in candidates:
        for folder in (candidate, candidate / "reference"):
            if (folder / "__init__.py").is_file() and folder.name == "reference":
                return folder
    return None


def load(explicit: str | os.PathLike | None = None) -> ModuleType | None:
    """Import the reference package from where :func:`locate` finds it (None if nowhere)."""
    folder = locate(explicit)
    if folder is None:
        return None
    cached = sys.modules.get(MODULE_NAME)
    if cached is not None and Path(cached.__file__).parent == folder:
        return cached
    return _import_from(folder, MODULE_NAME)


def _import_from(path: Path, private_name: str) -> ModuleType:
    package = path.is_dir()
    spec = importlib.util.spec_from_file_location(
        private_name,
        path / "__init__.py" if package else path,
        submodule_search_locations=[str(path)] if package else None,
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[private_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[private_name]
        raise
    return module


def topic_search_path(kit_reference: ModuleType | None = None) -> list[Path]:
    """Folders searched for a topic's reference module, in order."""
    folders = [Path(p) for p in os.environ.get(TOPIC_PATH_VARIABLE, "").split(os.pathsep) if p]
    kit = kit_reference or load()
    if kit is not None and getattr(kit, "__file__", None):
        folders.append(Path(kit.__file__).resolve().parent.parent)  # the solutions/ folder
    return folders


def load_topic(spec: str, kit_reference: ModuleType | None = None) -> ModuleType:
    """The reference module a topic names (``Topic.reference``), or a ``FileNotFoundError``
    saying where it was looked for."""
    private_name = f"{MODULE_NAME}_topic_{abs(hash((spec, os.environ.get(TOPIC_PATH_VARIABLE))))}"
    if private_name in sys.modules:
        return sys.modules[private_name]
    looked: list[str] = []
    if "/" in spec or os.sep in spec or spec.endswith(".py"):
        path = Path(spec).expanduser()
        if path.is_file() or (path / "__init__.py").is_file():
            return _import_from(path.resolve(), private_name)
        raise FileNotFoundError(f"the topic reference {spec} does not exist")
    head, *rest = spec.split(".")
    for folder in topic_search_path(kit_reference):
        for candidate in (folder / head / "__init__.py", folder / f"{head}.py"):
            looked.append(str(candidate.parent if candidate.name == "__init__.py" else candidate))
            if candidate.is_file():
                module = _import_from(
                    candidate.parent if candidate.name == "__init__.py" else candidate,
                    private_name if not rest else f"{private_name}_root",
                )
                if rest:  # a submodule of a private package
                    module = importlib.import_module(f"{module.__name__}.{'.'.join(rest)}")
                    sys.modules[private_name] = module
                return module
    try:
        module = importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is not None and not spec.startswith(exc.name):
            raise  # the reference itself imports something missing: say that
        raise FileNotFoundError(
            f"the topic reference {spec!r} was not found: looked in "
            f"{', '.join(looked) or '(no folders)'} and on sys.path; give its folder in "
            f"{TOPIC_PATH_VARIABLE}"
        ) from None
    sys.modules[private_name] = module
    return module


def for_check(check, kit_reference: ModuleType | None) -> ModuleType | None:
    """The reference a check's cases are built from: its topic's own (``Topic.reference``) or
    the kit's ``kit_reference``."""
    from grader.checks import TOPICS

    spec = next((t.reference for t in TOPICS if t.notebook == check.notebook), "")
    if not spec:
        return kit_reference
    return load_topic(spec, kit_reference)
