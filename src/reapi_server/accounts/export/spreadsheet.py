"""Sections as CSV, safe to open in a spreadsheet: a text cell that a spreadsheet would read
as a formula (starting with = + - @, a tab or a carriage return) gets a leading apostrophe,
so it shows as text and never runs (CSV/formula injection). Numbers are written as numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from .section import Row

__all__ = ["to_csv"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(rows: Sequence[Row], columns: Sequence[str]) -> bytes:
    """A header of `columns`, then one line per row (UTF-8, CRLF line ends as RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue().encode()
