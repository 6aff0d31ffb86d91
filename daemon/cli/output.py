"""What the command line prints for people: lines and aligned tables (never logs)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from crash_reports.common.humanize import printable, printable_lines


def out(text: str = "") -> None:
    """One line on standard output; a control character that slipped through is escaped."""
    sys.stdout.write(printable_lines(text) + "\n")


def err(text: str) -> None:
    """One line on standard error; a control character that slipped through is escaped."""
    sys.stderr.write(printable_lines(text) + "\n")


def table(rows: Sequence[Sequence[str]], last_column_free: bool = False) -> None:
    """Rows in aligned columns; with ``last_column_free`` the last column is not padded."""
    if not rows:
        return
    rows = [[printable(cell) for cell in row] for row in rows]
    count = len(rows[0]) - 1 if last_column_free else len(rows[0])
    widths = [max(len(row[i]) for row in rows) for i in range(count)]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:count])]
        if last_column_free:
            cells.append(row[-1])
        out("  ".join(cells).rstrip())
