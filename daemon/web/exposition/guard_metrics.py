"""The behaviour guard's series for /metrics: reports raised and episodes open, per rule."""

from __future__ import annotations

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from daemon.guard.guard import GuardCounts


def guard_families(counts: GuardCounts) -> list[Metric]:
    """``telemetryd_guard_reports_total{rule}``, ``telemetryd_guard_active{rule}`` (every rule
    listed, zero included, so an alert can watch a rule that never fired) and the verdicts
    dropped because too many came in one tick interval."""
    raised = CounterMetricFamily("telemetryd_guard_reports",
                                 "Behaviour-guard reports raised since start, by rule.",
                                 labels=["rule"])
    for rule, value in counts.raised:
        raised.add_metric([rule], float(value))
    active = GaugeMetricFamily("telemetryd_guard_active",
                               "Behaviour-guard episodes open now (condition still holding), "
                               "by rule.", labels=["rule"])
    for rule, value in counts.active:
        active.add_metric([rule], float(value))
    dropped = CounterMetricFamily("telemetryd_guard_verdicts_dropped",
                                  "Guard verdicts dropped: more than the tick could take.",
                                  value=float(counts.dropped))
    return [raised, active, dropped]
