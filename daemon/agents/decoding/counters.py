"""Thread-safe counters: what was received, refused and dropped, never silent.

Each OTLP counter is a member of ``OtlpCounter`` holding its ``/metrics`` family, help and
label names; a count is kept per (counter, label values). ``/metrics``
(``daemon/web/exposition/metrics.py``) and the status snapshot
(``daemon/runtime/agent_link.py``) read the counters as they are: no name is built here and
parsed apart there.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
Labels = tuple[str, ...]


class Counters(Generic[K]):
    """Monotonic counters by key, safe to add to from any thread.

    >>> c: Counters[str] = Counters(); c.add("nan", 2); c.snapshot()
    {'nan': 2}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[K] = Counter()

    def add(self, key: K, amount: int = 1) -> None:
        """Add to one counter."""
        if amount:
            with self._lock:
                self._values[key] += amount

    def snapshot(self) -> dict[K, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._values)


class OtlpCounter(Enum):
    """A counter of the OTLP receiver and the event store: (family, help, label names).

    A family of ``None`` is kept for tests and logs but not exported.
    """

    REQUESTS_RECEIVED = ("telemetryd_otlp_requests", "OTLP export requests received.",
                         ("signal",))
    REQUESTS_REFUSED = ("telemetryd_otlp_requests_refused",
                        "OTLP requests answered with an error status.", ("status", "reason"))
    REQUESTS_TRUSTED = ("telemetryd_otlp_requests_trusted",
                        "OTLP requests taken, by what vouched for the sender "
                        "([otlp] trust: token, watched, any).", ("how",))
    POINTS = ("telemetryd_otlp_points", "Data points and log records received, by outcome.",
              ("signal", "outcome"))
    POINTS_DROPPED = ("telemetryd_otlp_points_dropped",
                      "Accepted points dropped before reaching the store.", ("reason",))
    EVICTED = ("telemetryd_otlp_evicted",
               "Agents, models, tools, sessions and series forgotten past their caps (LRU).",
               ("kind",))
    TRUNCATED = ("telemetryd_otlp_truncated",
                 "Strings cut to their byte caps (attribute keys and values, series keys, "
                 "stored strings) and attributes dropped past the per-list cap.", ("kind",))
    CONNECTIONS_DROPPED = (
        "telemetryd_otlp_connections_dropped",
        "Receiver connections dropped: evicted past the cap, shed at accept, write timeout.",
        ("reason",))
    REQUESTS_TIMED_OUT = ("telemetryd_otlp_requests_timed_out",
                          "Connections closed for reading too slowly.", ())
    HANDLER_ERRORS = ("telemetryd_otlp_handler_errors",
                      "Requests that hit a bug in the receiver.", ())
    REQUESTS_NOT_TAKEN = ("telemetryd_otlp_requests_not_taken",
                          "Well-formed exports a decoder bug kept out of the store "
                          "(answered 200).", ())
    EVENTS_WRITTEN = ("telemetryd_agent_events_written",
                      "Agent events written to the event store.", ())
    WRITE_ERRORS = ("telemetryd_agent_store_write_errors",
                    "Batches the event store failed to write.", ())
    OBSERVER_ERRORS = (None, "Observers of written records that raised.", ())

    def __init__(self, metric: str | None, doc: str, labels: Labels) -> None:
        self.metric = metric
        self.doc = doc
        self.labels = labels


OtlpKey = tuple[OtlpCounter, Labels]


class OtlpCounters(Counters[OtlpKey]):
    """The OTLP counters shared by the receiver, the ingest writer and the store."""

    def count(self, counter: OtlpCounter, labels: Labels = (), amount: int = 1) -> None:
        """Add ``amount`` to ``counter`` with these label values (one per label name)."""
        self.add((counter, labels), amount)


@dataclass(frozen=True, slots=True)
class OtlpStats:
    """The OTLP counters at one moment, and the receiver's gauges.

    >>> s = OtlpStats({(OtlpCounter.POINTS, ("metrics", "accepted")): 3})
    >>> s.get(OtlpCounter.POINTS, ("metrics", "accepted")), s.total(OtlpCounter.POINTS)
    (3, 3)
    """

    counts: Mapping[OtlpKey, int] = field(default_factory=dict)
    queue_depth: int = 0
    active_series: int = 0
    series_bytes: int = 0
    queued_bytes: int = 0
    connections_open: int = 0

    def get(self, counter: OtlpCounter, labels: Labels = ()) -> int:
        """One count (0 when never counted)."""
        return self.counts.get((counter, labels), 0)

    def by_labels(self, counter: OtlpCounter) -> dict[Labels, int]:
        """Every count of ``counter``, by label values."""
        return {labels: n for (which, labels), n in self.counts.items() if which is counter}

    def total(self, counter: OtlpCounter) -> int:
        """The sum over every label value of ``counter``."""
        return sum(self.by_labels(counter).values())
