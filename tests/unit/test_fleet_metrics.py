"""The series the dashboard and alert rules need, built from a status snapshot."""

from __future__ import annotations

from dataclasses import replace

from daemon.status.snapshot import BudgetUse, ReportCounts, StatusSnapshot, WatchStatus
from daemon.web.exposition.fleet_metrics import fleet_families
from tests.support.snapshots import process, snapshot, watch


def values(snap: StatusSnapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in fleet_families(snap) for s in family.samples}


def test_levels_oldest_pending_and_budget_ratio() -> None:
    """Levels per watch, the oldest pending report, budget spent over limit."""
    claude = WatchStatus("claude", (process(3),), rss_warning_bytes=100, rss_critical_bytes=200)
    snap = replace(snapshot([claude, watch("aider")]),
                   reports=ReportCounts(pending=1, oldest_pending_at=1234.5),
                   budgets=(BudgetUse("claude-code", "daily", 20.0, 19.0),
                            BudgetUse("aider", "monthly", 5.0, None)))
    got = values(snap)
    assert got[("telemetryd_watch_rss_critical_bytes", (("watch", "claude"),))] == 200
    assert ("telemetryd_watch_rss_critical_bytes", (("watch", "aider"),)) not in got
    assert got[("telemetryd_reports_oldest_pending_timestamp_seconds", ())] == 1234.5
    ratio = ("telemetryd_budget_used_ratio", (("agent", "claude-code"), ("period", "daily")))
    assert got[ratio] == 0.95
    assert not any(name == "telemetryd_budget_used_ratio" and ("agent", "aider") in labels
                   for name, labels in got)


def test_no_pending_report_means_no_oldest_pending_series() -> None:
    """An empty spool exports no timestamp, so `time() - x` alerts cannot fire on a zero."""
    got = values(snapshot([]))
    assert not any(name.startswith("telemetryd_reports_oldest") for name, _ in got)


def test_new_snapshot_fields_round_trip_through_status_json() -> None:
    """Levels, oldest pending, budgets, agents and events survive to_json/from_json."""
    from daemon.agents.store.today import AgentToday
    from daemon.status.recent_events import EventKind, RecentEvent

    snap = replace(
        snapshot([WatchStatus("w", (process(1),), rss_warning_bytes=10, rss_critical_bytes=20)]),
        reports=ReportCounts(pending=1, oldest_pending_at=5.0),
        budgets=(BudgetUse("a", "daily", 2.0, 1.0),),
        agents=(AgentToday("a", 10, 1.0, 0.5, 1, 50.0),),
        events=(RecentEvent(1.0, EventKind.CRITICAL, "w pid 1: rss critical", "w", 1),))
    assert StatusSnapshot.from_json(snap.to_json()) == snap
