"""Every insights table as CSV: the same rows as the page, cells made inert for spreadsheets."""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Sequence

from kb.followup.report_csv import safe_cell


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The rows as CSV text with ``header`` first; text a spreadsheet would run gets a leading quote."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else safe_cell(cell) for cell in row])
    return out.getvalue()
