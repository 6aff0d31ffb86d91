"""A bounded ring of what happened lately (levels crossed, reports, deliveries), for the views.

``telemetryd top`` and the status page show it as a strip; the daemon publishes it in the
status snapshot. Appends come from the tick and the flush thread (a deque append is atomic).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

MAX_RECENT_EVENTS = 50


class EventKind(StrEnum):
    """What a recent event is about."""

    WARNING = "warning"
    CRITICAL = "critical"
    RECOVERED = "recovered"
    REPORT_WRITTEN = "report_written"
    REPORT_DELIVERED = "report_delivered"
    DELIVERY_FAILED = "delivery_failed"


@dataclass(frozen=True, slots=True)
class RecentEvent:
    """One line of the events strip."""

    at: float
    kind: EventKind
    text: str
    watch: str | None = None
    pid: int | None = None
    report_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for the status snapshot."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecentEvent | None:
        """Read one back from a snapshot (None if it is not one this version knows).

        >>> RecentEvent.from_json({"at": 1.0, "kind": "warning", "text": "x"}).kind
        <EventKind.WARNING: 'warning'>
        >>> RecentEvent.from_json({"at": 1.0, "kind": "nope", "text": "x"}) is None
        True
        """
        try:
            return cls(float(data["at"]), EventKind(data["kind"]), str(data["text"]),
                       data.get("watch"), data.get("pid"), data.get("report_id"))
        except (KeyError, ValueError, TypeError):
            return None


class RecentEvents:
    """The last ``size`` events, oldest first.

    >>> ring = RecentEvents(2)
    >>> for n in range(3): ring.add(RecentEvent(float(n), EventKind.WARNING, str(n)))
    >>> [e.text for e in ring.items()]
    ['1', '2']
    """

    def __init__(self, size: int = MAX_RECENT_EVENTS) -> None:
        self._ring: deque[RecentEvent] = deque(maxlen=size)

    def add(self, event: RecentEvent) -> None:
        """Remember one event, forgetting the oldest beyond the size."""
        self._ring.append(event)

    def items(self) -> list[RecentEvent]:
        """A copy, oldest first."""
        return list(self._ring)
