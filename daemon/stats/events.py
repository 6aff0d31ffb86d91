"""A closed stats period as a Sentry event (pure): one issue per host, deduped on re-send."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crash_reports.spool.envelope import STATS_TAG
from daemon.stats.figures import Period, PeriodKey

if TYPE_CHECKING:
    from sentry_sdk._types import Event

# Fixed forever: changing it would change every event id and re-ship old periods as new.
STATS_EVENT_NAMESPACE = uuid.UUID("5f0c4c52-8a53-4d55-9a0c-3c1f7e9b2d41")
STATS_FINGERPRINT = "telemetryd-stats"
CONTEXT_NAME = "telemetryd_stats"


def stats_event_id(host: str, key: PeriodKey) -> str:
    """The event id of a period: the same (host, watch, hour) always gives the same id.

    >>> a = stats_event_id("box", PeriodKey("agent", 7200))
    >>> a == stats_event_id("box", PeriodKey("agent", 7200)), len(a)
    (True, 32)
    >>> a == stats_event_id("box", PeriodKey(None, 7200))
    False
    """
    # Unit separators keep ("a b", c) and ("a", "b c") apart; the kind keeps the daemon's
    # own period apart from a watch that happens to share its name.
    name = "\x1f".join((host, key.kind, key.watch or "", str(key.hour_start)))
    return uuid.uuid5(STATS_EVENT_NAMESPACE, name).hex


def _utc(epoch: int, fmt: str) -> str:
    return time.strftime(fmt, time.gmtime(epoch))


def stats_event(period: Period, host: str) -> Event:
    """The Sentry event for one closed period: level info, grouped per host by fingerprint.

    >>> from daemon.stats.figures import Period, PeriodKey
    >>> e = stats_event(Period(PeriodKey("agent", 1795525200), {"samples": 3}), "box")
    >>> e["message"]
    'telemetryd stats for box, watch agent, 2026-11-24 13:00 UTC'
    >>> e["level"], e["fingerprint"], e["tags"]["watch"]
    ('info', ['telemetryd-stats', 'box'], 'agent')
    """
    key = period.key
    subject = host if key.watch is None else f"{host}, watch {key.watch}"
    tags = {"host": host, STATS_TAG: key.kind}
    if key.watch is not None:
        tags["watch"] = key.watch
    context: dict[str, object] = {
        "period_start": _utc(period.start, "%Y-%m-%dT%H:%M:%SZ"),
        "period_end": _utc(period.end, "%Y-%m-%dT%H:%M:%SZ"),
        "period_start_epoch": period.start,
        **period.figures,
    }
    return {
        "event_id": stats_event_id(host, key),
        "level": "info",
        "logger": "telemetryd.stats",
        "message": f"telemetryd stats for {subject}, {_utc(period.start, '%Y-%m-%d %H:%M')} UTC",
        # The hour's end: when its figures became final, not when they were shipped.
        "timestamp": datetime.fromtimestamp(period.end, UTC),
        "server_name": host,
        "fingerprint": [STATS_FINGERPRINT, host],
        "tags": tags,
        "contexts": {CONTEXT_NAME: context},
    }
