"""The toolkit's own exceptions: one readable line in a notebook, no traceback.

A wrong argument to a toolkit function (a trainer option, a shape that does not fit) is a
*message* for the student, not a bug to debug: in IPython the exception renders as its message
only, through IPython's ``_render_traceback_`` protocol. Elsewhere it is an ordinary
``ValueError`` with an ordinary traceback.
"""

from __future__ import annotations


class ToolkitUsageError(ValueError):
    """A toolkit function was called with arguments it cannot use.

    A subclass of ``ValueError``, so ``except ValueError`` still catches it.
    """

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of formatting the frames (see IPython.core.interactiveshell)
        return [f"{type(self).__name__}: {self}"]
