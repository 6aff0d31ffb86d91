"""Thread-safe named counters: what was received, refused and dropped, never silent."""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    """Monotonic counters shared by the receiver and the ingest writer.

    >>> c = Counters(); c.add("points_refused.nan", 2); c.snapshot()
    {'points_refused.nan': 2}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        """Add to one counter."""
        if amount:
            with self._lock:
                self._values[name] += amount

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter, sorted by name."""
        with self._lock:
            return dict(sorted(self._values.items()))
