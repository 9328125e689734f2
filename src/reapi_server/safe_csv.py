"""CSV that is safe to open in a spreadsheet.

A text cell a spreadsheet would read as a formula (it starts with = + - @, a tab or a carriage
return) gets a leading apostrophe, so it shows as text and never runs (CSV/formula injection:
a key named `=HYPERLINK(...)` must stay a name). Numbers are written as numbers. Lines end in
CRLF (RFC 4180); the text is UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

__all__ = ["cell", "csv_lines"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(rows: Iterable[Sequence[object]]) -> bytes:
    """These rows (the header is a row too) as CSV bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return buffer.getvalue().encode()
