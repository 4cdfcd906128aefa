"""Make the instructor-only ``reference`` package importable for these tests.

The references live in ``<repo>/solutions/reference`` and are deliberately not part of the
installed ``grader`` package, so the tests put ``<repo>/solutions`` on ``sys.path`` themselves
(computed from this file's location, so it works from any working directory). The repository
root is appended too, so that ``grader.toolkit.gradcheck`` imports even when the ``grader``
package is not installed (an installed copy still wins).
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO_ROOT / "solutions"

if str(SOLUTIONS) not in sys.path:
    sys.path.insert(0, str(SOLUTIONS))
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))
