"""The series the dashboard and alert rules need, built from a status snapshot."""

from __future__ import annotations

from typing import Any

from daemon.web.fleet_metrics import fleet_families


def values(snapshot: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in fleet_families(snapshot) for s in family.samples}


def test_levels_orphans_oldest_pending_and_budget_ratio() -> None:
    """Levels per watch, orphans counted by state (0 when none), budget spent over limit."""
    got = values({
        "watches": [
            {"name": "claude", "rss_warning_bytes": 100, "rss_critical_bytes": 200,
             "processes": [{"state": "orphaned"}, {"state": "orphaned"}, {"state": "ok"}]},
            {"name": "aider", "rss_warning_bytes": None, "rss_critical_bytes": None,
             "processes": []},
        ],
        "reports": {"oldest_pending_at": 1234.5},
        "budgets": [{"agent": "claude-code", "period": "daily", "limit_usd": 20.0,
                     "spent_usd": 19.0},
                    {"agent": "aider", "period": "monthly", "limit_usd": 5.0,
                     "spent_usd": None}],
    })
    assert got[("telemetryd_watch_rss_critical_bytes", (("watch", "claude"),))] == 200
    assert ("telemetryd_watch_rss_critical_bytes", (("watch", "aider"),)) not in got
    assert got[("telemetryd_orphans", (("watch", "claude"),))] == 2
    assert got[("telemetryd_orphans", (("watch", "aider"),))] == 0
    assert got[("telemetryd_reports_oldest_pending_timestamp_seconds", ())] == 1234.5
    ratio = ("telemetryd_budget_used_ratio", (("agent", "claude-code"), ("period", "daily")))
    assert got[ratio] == 0.95
    assert not any(name == "telemetryd_budget_used_ratio" and ("agent", "aider") in labels
                   for name, labels in got)


def test_no_pending_report_means_no_oldest_pending_series() -> None:
    """An empty spool exports no timestamp, so `time() - x` alerts cannot fire on a zero."""
    got = values({"watches": [], "reports": {"oldest_pending_at": None}})
    assert not any(name.startswith("telemetryd_reports_oldest") for name, _ in got)
