"""Reference solutions of the course kit: instructor-only, never shipped to students.

This package lives under ``solutions/`` and is not part of the installed ``grader`` package; the
batch grader finds it through an option (default: the repository's ``solutions/``).

Every public function defined at the top of a module here is exported, so a new exercise only
adds its module (``solutions/reference/<topic>.py``); nothing is listed by hand.
"""

import importlib
import inspect
import pkgutil

__all__: list[str] = []

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _module = importlib.import_module(f".{_info.name}", __name__)
    for _name, _function in inspect.getmembers(_module, inspect.isfunction):
        if not _name.startswith("_") and _function.__module__ == _module.__name__:
            if _name in globals():
                raise ImportError(f"reference: {_name} is defined twice ({_module.__name__})")
            globals()[_name] = _function
            __all__.append(_name)
