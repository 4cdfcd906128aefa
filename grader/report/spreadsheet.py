"""CSV that a spreadsheet opens safely: every export of the kit writes its rows through here.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by Excel, LibreOffice and Google Sheets ("CSV injection", OWASP). Student names and
messages reach our CSVs, so such text cells are prefixed with a single quote, as OWASP
recommends; numbers (``int``/``float``) stay numbers, so ``-0.5`` written as a float is kept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value`` as a spreadsheet should see it: numbers unchanged, text never a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """Rows (the first is the header) as CSV text, every cell passed through :func:`safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()
