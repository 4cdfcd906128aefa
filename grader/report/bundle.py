"""A Gradescope autograder bundle, and the command it runs for each submission.

    python -m grader gradescope-bundle --out autograder.zip --assignment 02_dropout
                                       [--salt S] [--reference DIR] [--points FILE]

The zip holds, at its root (Gradescope's autograder specification):

* ``setup.sh``: run once as root when Gradescope builds the image: installs Python >= 3.11 and
  bubblewrap with apt, makes a virtual environment in ``/autograder/venv`` and installs the kit's
  ``grader`` package from ``kit/`` into it, makes ``course/`` readable by root only, and probes
  the sandbox: the image build fails loudly when bubblewrap does not work there;
* ``run_autograder``: run for every submission: ``python -m grader gradescope`` grades the one
  notebook of ``/autograder/submission`` that is the assignment's (``<assignment>.ipynb``, else
  the one whose content is that assignment's; any others are listed, never graded or summed) and
  writes ``/autograder/results/results.json``;
* ``kit/``: the ``grader`` package (checks, public fixtures, runner) with a minimal ``pyproject.toml``;
* ``course/``: what only the grader may see: the reference solutions (hidden checks need them),
  ``salt.txt`` (the course-private salt of the hidden inputs) and ``points.toml``.

Gradescope's autograder image is the instructor's side, so the answers may live there; the
student's code still runs sandboxed and never sees them (bubblewrap, or an unprivileged uid that
cannot read the root-only ``course/``).
"""

from __future__ import annotations

import io
import stat
import zipfile
from importlib import metadata
from pathlib import Path

import grader
from grader import __version__

DISTRIBUTION = "dnn-discussion-kit"

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
set -euo pipefail
SOURCE=/autograder/source
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-pip bubblewrap >/dev/null

# The kit needs Python >= 3.11 (Ubuntu 24.04 has 3.12; on 22.04 python3.11 comes from apt).
PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        PYTHON="$candidate"
        break
    fi
done
if [ -z "$PYTHON" ]; then
    apt-get install -y -qq python3.11 python3.11-venv >/dev/null
    PYTHON=python3.11
fi

"$PYTHON" -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet --upgrade pip
/autograder/venv/bin/python -m pip install --quiet --no-cache-dir "$SOURCE/kit"

# The answers and the salt are for the grader only: student code never runs as root.
chown -R root:root "$SOURCE/course"
chmod -R go-rwx "$SOURCE/course"
/autograder/venv/bin/python -m grader --version

# Grading refuses to run without its sandbox: prove here, once, that bubblewrap works in this
# image (a fork server and one trial run), so a broken image fails its build, not every student.
if ! DNN_KIT_SANDBOX=required /autograder/venv/bin/python -c \
    'from grader.runner import sandbox; print("sandbox:", sandbox.require())'; then
    echo "ERROR: the bubblewrap sandbox does not work in this autograder image." >&2
    echo "ERROR: it needs the bubblewrap package and permission to create namespaces." >&2
    exit 1
fi
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission (as root, in /autograder).
# AUTOGRADER_ROOT and DNN_KIT_PYTHON exist only to test the bundle outside Gradescope.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${DNN_KIT_PYTHON:-$ROOT/venv/bin/python}"
COURSE="$ROOT/source/course"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
cd "$ROOT"
"$PYTHON" -m grader gradescope "$ROOT/submission" --results "$RESULTS" \
    --reference "$COURSE/reference" --salt-file "$COURSE/salt.txt" \
    --points "$COURSE/points.toml" __ASSIGNMENT__
if [ ! -s "$RESULTS" ]; then
    # the grader itself could not run: Gradescope still needs a results.json
    printf '%s\n' '{"score": 0, "output": "The autograder failed before grading (see the instructor log). Please tell your instructor.", "visibility": "visible", "tests": []}' >"$RESULTS"
fi
"""

README = """DNN Discussion 2 autograder for Gradescope (dnn-discussion-kit {version})

Upload this zip as the assignment's autograder ("Zip file upload"; base image: Ubuntu 24.04
recommended). Students upload their notebook (.ipynb). Hidden checks use the salt in
course/salt.txt; points come from course/points.toml{assignment}.

Rebuild it with: python -m grader gradescope-bundle --out autograder.zip --assignment ASSIGNMENT
"""


def _kit_files() -> list[tuple[str, bytes]]:
    """The installed ``grader`` package: sources, fixtures, data (no caches)."""
    package = Path(grader.__file__).resolve().parent
    files = []
    for path in sorted(package.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        files.append((f"kit/grader/{path.relative_to(package).as_posix()}", path.read_bytes()))
    return files


def kit_pyproject() -> str:
    """A minimal ``pyproject.toml`` installing the package with its runtime dependencies."""
    try:
        requires = [r for r in metadata.requires(DISTRIBUTION) or [] if "extra ==" not in r]
    except metadata.PackageNotFoundError:
        requires = [
            "numpy>=1.26,<3",
            "matplotlib>=3.8,<4",
            "tqdm>=4.66,<5",
            "threadpoolctl>=3.1,<4",
            "nbformat>=5.9,<6",
        ]
    dependencies = "".join(f'    "{r}",\n' for r in requires)
    return (
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{DISTRIBUTION}"\nversion = "{__version__}"\nrequires-python = ">=3.11"\n'
        f"dependencies = [\n{dependencies}]\n\n"
        '[tool.setuptools.packages.find]\ninclude = ["grader*"]\n\n'
        '[tool.setuptools.package-data]\ngrader = ["datasets/*", "checks/fixtures/*.npz", "report/templates/*"]\n'
    )


def build_bundle(
    out: Path,
    *,
    salt: str,
    reference_dir: Path,
    points_text: str = "",
    assignment: str | None = None,
) -> list[str]:
    """Write the autograder zip; returns the names inside it."""
    run = RUN_AUTOGRADER.replace(
        "__ASSIGNMENT__", f"--assignment {assignment}" if assignment else ""
    )
    entries: list[tuple[str, bytes, bool]] = [
        ("setup.sh", SETUP_SH.encode(), True),
        ("run_autograder", run.encode(), True),
        (
            "README.txt",
            README.format(
                version=__version__, assignment=f"; assignment {assignment}" if assignment else ""
            ).encode(),
            False,
        ),
        ("kit/pyproject.toml", kit_pyproject().encode(), False),
        ("course/salt.txt", salt.encode(), False),
        (
            "course/points.toml",
            (points_text or "# points per check; empty: the check library's\n[points]\n").encode(),
            False,
        ),
    ]
    entries += [(name, data, False) for name, data in _kit_files()]
    for path in sorted(Path(reference_dir).rglob("*.py")):
        if "__pycache__" not in path.parts:
            entries.append(
                (
                    f"course/reference/{path.relative_to(reference_dir).as_posix()}",
                    path.read_bytes(),
                    False,
                )
            )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, executable in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if executable else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, data)
    from grader.store import write_atomic

    write_atomic(Path(out), buffer.getvalue())
    return [name for name, _, _ in entries]
