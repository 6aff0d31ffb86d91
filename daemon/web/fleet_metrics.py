"""Series the fleet views need (monitoring/): levels, orphans, the oldest pending report, budgets.

Built from the same status snapshot as the other watch series, at scrape time. The Grafana
dashboard draws the levels next to RSS; the alert rules compare against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

Snapshot = Mapping[str, Any]
ORPHANED = "orphaned"


def fleet_families(snapshot: Snapshot) -> list[Metric]:
    """Per-watch levels and orphans, the oldest pending report, and budget use."""
    warning = GaugeMetricFamily("telemetryd_watch_rss_warning_bytes",
                                "Configured RSS warning level of the watch's trees.",
                                labels=["watch"])
    critical = GaugeMetricFamily("telemetryd_watch_rss_critical_bytes",
                                 "Configured RSS critical level of the watch's trees.",
                                 labels=["watch"])
    orphans = GaugeMetricFamily("telemetryd_orphans",
                                "Processes of the watch left running after their agent ended.",
                                labels=["watch"])
    for watch in snapshot.get("watches") or []:
        name = str(watch.get("name", ""))
        if isinstance(watch.get("rss_warning_bytes"), int):
            warning.add_metric([name], float(watch["rss_warning_bytes"]))
        if isinstance(watch.get("rss_critical_bytes"), int):
            critical.add_metric([name], float(watch["rss_critical_bytes"]))
        count = sum(1 for p in watch.get("processes") or [] if p.get("state") == ORPHANED)
        orphans.add_metric([name], float(count))
    out: list[Metric] = [warning, critical, orphans]
    oldest = (snapshot.get("reports") or {}).get("oldest_pending_at")
    if isinstance(oldest, int | float):
        out.append(GaugeMetricFamily(
            "telemetryd_reports_oldest_pending_timestamp_seconds",
            "Unix time the oldest report still waiting in the spool was written.",
            value=float(oldest)))
    used = GaugeMetricFamily("telemetryd_budget_used_ratio",
                             "Share of the agent's cost budget spent this period (1 = all).",
                             labels=["agent", "period"])
    limit = GaugeMetricFamily("telemetryd_budget_limit_usd",
                              "The agent's cost budget for the period, in US dollars.",
                              labels=["agent", "period"])
    for budget in snapshot.get("budgets") or []:
        labels = [str(budget.get("agent", "")), str(budget.get("period", ""))]
        spent, cap = budget.get("spent_usd"), budget.get("limit_usd")
        if isinstance(cap, int | float) and cap > 0 and isinstance(spent, int | float):
            used.add_metric(labels, float(spent) / float(cap))
            limit.add_metric(labels, float(cap))
    out += [used, limit]
    return out
