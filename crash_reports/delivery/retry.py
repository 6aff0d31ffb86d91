"""Pure retry policy: exponential backoff with jitter, and Sentry's rate-limit headers.

Nothing here reads a clock or a socket: ``now`` and the random source are arguments.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ALL_CATEGORIES = ""
"""The rate-limit key meaning every category (an empty category list in the header)."""

DEFAULT_RATE_LIMIT_SECONDS = 60.0
"""How long a 429 without any header limits everything (what Sentry's SDKs assume)."""

RateTable = Mapping[str, float]
"""Data category -> wall time until which it must not be sent."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base * 2**(failures-1)``, capped, then jittered down by up to half.

    >>> policy = RetryPolicy(base_seconds=10, cap_seconds=3600)
    >>> [round(policy.delay(n, random.Random(1))) for n in (1, 2, 3)]
    [6, 11, 23]
    >>> round(policy.delay(30, random.Random(1)))
    2042
    >>> policy.delay(30, random.Random(1)) <= 3600
    True
    """

    base_seconds: float = 10.0
    cap_seconds: float = 3600.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures (``failures >= 1``)."""
        exponent = min(max(failures, 1) - 1, 60)
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0**exponent)
        # "Equal jitter": never shorter than half the step, so an outage is not hammered.
        return ceiling / 2 + rng.random() * ceiling / 2

    def retry_at(
        self, failures: int, now: float, rng: random.Random, server_after: float | None
    ) -> float:
        """When to try again: the jittered backoff, but never before the server asked.

        >>> RetryPolicy(base_seconds=10).retry_at(1, 1000.0, random.Random(1), 120.0)
        1120.0
        """
        own = now + self.delay(failures, rng)
        if server_after is None:
            return own
        return max(own, now + min(server_after, self.cap_seconds))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None.

    >>> parse_retry_after("42", 0.0)
    42.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40.0)
    60.0
    >>> parse_retry_after("soon", 0.0) is None
    True
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def parse_rate_limits(value: str | None) -> dict[str, float]:
    """Seconds per data category from ``X-Sentry-Rate-Limits`` (``""`` means all categories).

    Entries look like ``<seconds>:<cat;cat>:<scope>[:reason...]``; malformed ones are skipped.

    >>> parse_rate_limits("60:error;transaction:key, 2700::organization")
    {'error': 60.0, 'transaction': 60.0, '': 2700.0}
    >>> parse_rate_limits("garbage, x:error:key")
    {}
    """
    limits: dict[str, float] = {}
    if not value:
        return limits
    for entry in value.split(","):
        fields = entry.strip().split(":")
        if len(fields) < 2:
            continue
        try:
            seconds = max(0.0, float(fields[0]))
        except ValueError:
            continue
        categories = [c.strip() for c in fields[1].split(";") if c.strip()] or [ALL_CATEGORIES]
        for category in categories:
            limits[category] = max(seconds, limits.get(category, 0.0))
    return limits


def merge_rate_limits(
    table: RateTable, seconds: Mapping[str, float], now: float
) -> dict[str, float]:
    """A new table with ``seconds`` (relative) applied from ``now``; expired entries dropped.

    >>> merge_rate_limits({"error": 50.0, "span": 5.0}, {"": 30.0}, now=10.0)
    {'error': 50.0, '': 40.0}
    """
    merged = {cat: until for cat, until in table.items() if until > now}
    for category, wait in seconds.items():
        merged[category] = max(merged.get(category, 0.0), now + wait)
    return merged


def limited_until(table: RateTable, categories: Iterable[str], now: float) -> float | None:
    """The time until which any of ``categories`` is rate limited, or None if it may be sent.

    >>> table = {"error": 100.0, "": 20.0}
    >>> limited_until(table, ["error"], now=10.0)
    100.0
    >>> limited_until(table, ["transaction"], now=10.0)
    20.0
    >>> limited_until(table, ["transaction"], now=30.0) is None
    True
    """
    keys = {ALL_CATEGORIES, *categories}
    active = [until for cat, until in table.items() if cat in keys and until > now]
    return max(active) if active else None
