"""How a stored figure's measure is named: its base and the source it came from (pure).

One figure sent three ways (a metric, an event, a span) is stored under one base measure per
source, ``tokens`` for the metric and ``tokens@event`` for the event, so sources are never
added up (``daemon.agents.store.choose`` picks one). The store and the cost rule both read
these names; they live here, below both.
"""

from __future__ import annotations


def measure_key(base: str, source: str) -> str:
    """The stored measure name of a figure from ``source``.

    >>> measure_key("tokens", "metric"), measure_key("tokens", "event")
    ('tokens', 'tokens@event')
    """
    return base if source == "metric" else f"{base}@{source}"


def split_measure(measure: str) -> tuple[str, str]:
    """Base measure and source of a stored measure name.

    >>> split_measure("requests@span"), split_measure("tokens")
    (('requests', 'span'), ('tokens', 'metric'))
    """
    base, _, source = measure.partition("@")
    return base, source or "metric"
