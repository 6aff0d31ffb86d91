"""``/api/status`` and ``/api/history``: the JSON the status page (and anyone) reads.

Documented in the README ("Status page and JSON API"). Both are read-only GETs built
from what the daemon already published; neither touches the tick.
"""

from __future__ import annotations

from daemon.status.view import history_json, status_view
from daemon.web.sources import RANGES_SECONDS, PageSources, Reply, json_reply, window


def api_status(sources: PageSources) -> Reply:
    """The daemon, every watched tree, agents today, recent events and reports."""
    now = sources.clock()
    view = status_view(sources.snapshot(), sources.running(), now, sources.reports(),
                       sources.event_url)
    return json_reply(view.to_json())


def api_history(sources: PageSources, query: str) -> Reply:
    """RSS/CPU points per tree over ``range`` with levels and report markers, cost per agent."""
    now = sources.clock()
    snapshot = sources.snapshot()
    interval = snapshot.interval if snapshot is not None else 1.0
    win = window(query, now, interval,
                 sources.earliest(now - RANGES_SECONDS["24h"]))
    view = status_view(snapshot, sources.running(), now, sources.reports(), sources.event_url)
    document = history_json(sources.history(win.since, win.until, win.step_seconds), view.trees,
                            view.reports, sources.costs(win.since, win.until),
                            win.since, win.until, win.step_seconds)
    document["range"] = win.name
    return json_reply(document)
