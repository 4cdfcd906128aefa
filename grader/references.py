"""Finding the instructor-only reference solutions (never part of the installed package).

The ``grader`` package is what students get; the answers live in the course repository under
``solutions/reference``. Instructors' tools find them, in this order: an explicit path
(``--reference``), the ``DNN_KIT_REFERENCE`` environment variable, a ``solutions/`` folder
above the current directory (an nbgrader course kept in this repository), and the
``solutions/`` folder beside an editable install of ``grader``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

MODULE_NAME = "_dnn_kit_reference"  # private name: never shadows a student's own `reference`


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
    spec = importlib.util.spec_from_file_location(
        MODULE_NAME, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module
