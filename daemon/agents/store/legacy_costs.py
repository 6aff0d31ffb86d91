"""Stores written before ``cost_counted`` existed: each group gets it once, by the old rule.

Budgets count ``cost_counted`` (costs.py). An aggregate group (an hour's, a session's or the
all-time totals' agent, model and tool, per source) that has cost rows but no
``cost_counted`` row was written by an earlier build; its figure becomes what that build
counted: the reported cost when there is one, else the computed cost. Run when the store
opens, before anything new is written, so a group is either all old or all new. Idempotent:
a group that has the row is left alone (a downgraded daemon's groups are filled the next
time this build opens the file).
"""

from __future__ import annotations

import sqlite3

from daemon.agents.measures import measure_key, split_measure

# table -> the columns that name one group (besides measure and dim)
_TABLES: dict[str, tuple[str, ...]] = {
    "hourly": ("hour", "agent", "model", "tool"),
    "session_totals": ("agent", "session_id", "model", "tool"),
    "totals": ("agent", "model", "tool"),
}


def legacy_counted(measures: dict[str, float]) -> float | None:
    """What an old build counted for one group and source, given its cost measures (plain
    names); None when there is nothing to fill (no cost, or already counted).

    >>> legacy_counted({"cost_reported": 0.5, "cost_computed": 9.0})
    0.5
    >>> legacy_counted({"cost_computed": 2.0}), legacy_counted({"cost_counted": 1.0})
    (2.0, None)
    """
    if "cost_counted" in measures:
        return None
    if "cost_reported" in measures:
        return max(measures["cost_reported"], 0.0)
    if "cost_computed" in measures:
        return max(measures["cost_computed"], 0.0)
    return None


def fill_counted(db: sqlite3.Connection) -> int:
    """Add ``cost_counted`` to every old group (one transaction); returns rows added."""
    added = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, columns in _TABLES.items():
            names = ", ".join(columns)
            found: dict[tuple[object, ...], dict[str, float]] = {}
            for *key, stored, value in db.execute(
                    f"SELECT {names}, measure, value FROM {table} "  # noqa: S608
                    "WHERE measure LIKE 'cost_%'"):
                base, source = split_measure(str(stored))
                slot = found.setdefault((*key, source), {})
                slot[base] = slot.get(base, 0.0) + value
            rows = []
            for (*key, where), measures in found.items():
                counted = legacy_counted(measures)
                if counted is not None:
                    rows.append((*key, measure_key("cost_counted", str(where)), "", counted, 0))
            marks = ", ".join("?" for _ in range(len(columns) + 4))
            db.executemany(
                f"INSERT OR IGNORE INTO {table} ({names}, measure, dim, value, count) "  # noqa: S608
                f"VALUES ({marks})", rows)
            added += len(rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return added
