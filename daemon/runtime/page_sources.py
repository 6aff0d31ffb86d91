"""The status page's sources inside the daemon: its last snapshot, the stats file, the spool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crash_reports.spool.store import Spool
from daemon.agents.store.queries import StoreReader
from daemon.agents.store.session_list import SessionStep, SessionSummary, read_sessions, read_steps
from daemon.agents.store.today import hourly_cost
from daemon.status.snapshot import StatusSnapshot
from daemon.web.links import sentry_event_url
from daemon.web.page_daemon import daemon_hours_from_file
from daemon.web.sources import (
    PageSources,
    earliest_from_file,
    history_from_file,
    history_of_file,
    spans_from_file,
)


def daemon_page_sources(snapshot: Callable[[], StatusSnapshot | None], stats_db: Path,
                        spool: Callable[[], Spool | None], agents: StoreReader | None,
                        dsn: Callable[[], str | None]) -> PageSources:
    """Sources reading what the running daemon already keeps; nothing here samples."""

    def reports() -> list[Any]:
        current = spool()
        return current.list_all() if current is not None else []

    def costs(since: float, until: float) -> dict[str, list[tuple[float, float]]]:
        return hourly_cost(agents, since, until) if agents is not None else {}

    def sessions(until: float) -> list[SessionSummary]:
        return read_sessions(agents.path, until) if agents is not None else []

    def steps(agent: str, session_id: str) -> list[SessionStep]:
        return read_steps(agents.path, agent, session_id) if agents is not None else []

    return PageSources(
        snapshot=snapshot,
        running=lambda: True,
        history=history_from_file(stats_db),
        history_of=history_of_file(stats_db),
        spans=spans_from_file(stats_db),
        earliest=earliest_from_file(stats_db),
        daemon_hours=daemon_hours_from_file(stats_db),
        sessions=sessions,
        session_steps=steps,
        reports=reports,
        costs=costs,
        event_url=lambda event_id: sentry_event_url(dsn(), event_id),
    )
