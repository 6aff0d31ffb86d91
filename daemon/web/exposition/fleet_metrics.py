"""Series the fleet views need (monitoring/): levels, the oldest pending report, budgets.

Built from the same status snapshot as the other watch series, at scrape time. The Grafana
dashboard draws the levels next to RSS; the alert rules compare against them.
"""

from __future__ import annotations

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from daemon.status.snapshot import StatusSnapshot


def fleet_families(snapshot: StatusSnapshot) -> list[Metric]:
    """Per-watch levels, the oldest pending report, and budget use (orphans: metrics.py)."""
    warning = GaugeMetricFamily("telemetryd_watch_rss_warning_bytes",
                                "Configured RSS warning level of the watch's trees.",
                                labels=["watch"])
    critical = GaugeMetricFamily("telemetryd_watch_rss_critical_bytes",
                                 "Configured RSS critical level of the watch's trees.",
                                 labels=["watch"])
    for watch in snapshot.watches:
        if watch.rss_warning_bytes is not None:
            warning.add_metric([watch.name], float(watch.rss_warning_bytes))
        if watch.rss_critical_bytes is not None:
            critical.add_metric([watch.name], float(watch.rss_critical_bytes))
    out: list[Metric] = [warning, critical]
    oldest = snapshot.reports.oldest_pending_at
    if oldest is not None:
        out.append(GaugeMetricFamily(
            "telemetryd_reports_oldest_pending_timestamp_seconds",
            "Unix time the oldest report still waiting in the spool was written.",
            value=oldest))
    used = GaugeMetricFamily("telemetryd_budget_used_ratio",
                             "Share of the agent's cost budget spent this period (1 = all).",
                             labels=["agent", "period"])
    limit = GaugeMetricFamily("telemetryd_budget_limit_usd",
                              "The agent's cost budget for the period, in US dollars.",
                              labels=["agent", "period"])
    for budget in snapshot.budgets:
        ratio = budget.used_ratio
        if ratio is not None:
            used.add_metric([budget.agent, budget.period], ratio)
            limit.add_metric([budget.agent, budget.period], budget.limit_usd)
    return [*out, used, limit]
