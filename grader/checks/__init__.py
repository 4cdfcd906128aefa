"""The check library: every check, misconception and notebook the kit knows, as data.

One module per topic defines ``NOTEBOOK``, ``FUNCTIONS``, ``MISCONCEPTIONS`` and ``CHECKS``;
this registry is what both runners (in-notebook and batch) read.
"""

from __future__ import annotations

from grader.checks import batchnorm, capstone, dropout, layernorm, norms
from grader.checks.base import Check, Misconception

TOPICS = (norms, dropout, batchnorm, capstone, layernorm)

NOTEBOOKS: dict[str, tuple[str, ...]] = {topic.NOTEBOOK: topic.FUNCTIONS for topic in TOPICS}
CHECKS: dict[str, Check] = {check.id: check for topic in TOPICS for check in topic.CHECKS}
MISCONCEPTIONS: dict[str, Misconception] = {
    m.id: m for topic in TOPICS for m in topic.MISCONCEPTIONS.values()
}


def checks_for(notebook: str, include_hidden: bool = True) -> list[Check]:
    """The checks of one notebook, in the order they appear in it."""
    return [
        c for c in CHECKS.values() if c.notebook == notebook and (include_hidden or not c.hidden)
    ]


def get_check(check_id: str) -> Check:
    try:
        return CHECKS[check_id]
    except KeyError:
        raise KeyError(f"no check called {check_id!r}; known: {', '.join(CHECKS)}") from None
