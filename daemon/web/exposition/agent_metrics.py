"""Agent series for ``/metrics``, from the agent store's all-time totals (one source each).

Label values are capped (``LabelLimits``): past the cap they are summed under ``other``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from daemon.agents.store.totals import DURATION_BUCKETS_SECONDS, TotalRow, chosen_totals
from daemon.stats.histogram import BucketCounts

OTHER = "other"


@dataclass(frozen=True, slots=True)
class LabelLimits:
    """How many distinct values each agent label may take before the rest become ``other``."""

    agents: int = 50
    models: int = 50
    tools: int = 50


class LabelCap:
    """Sticky cap on one label's values: once admitted a value keeps its own series.

    Never evicting keeps every exported counter monotonic: ``other`` only ever gains members.

    >>> cap = LabelCap(1); cap.admit({"b": 5.0, "a": 9.0}); cap("a"), cap("b")
    ('a', 'other')
    >>> cap.admit({"c": 99.0}); cap("c")
    'other'
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._admitted: set[str] = set()

    def admit(self, weights: Mapping[str, float]) -> None:
        """Admit new values, busiest first, while there is room."""
        room = self.limit - len(self._admitted)
        if room <= 0:
            return
        new = [v for v in weights if v not in self._admitted]
        new.sort(key=lambda v: (-weights[v], v))
        self._admitted.update(new[:room])

    def __call__(self, value: str) -> str:
        return value if value in self._admitted else OTHER


# --- agents, from the store's all-time totals ------------------------------------------


class AgentLabelCaps:
    """The three sticky caps agent series share."""

    def __init__(self, limits: LabelLimits) -> None:
        self.agent = LabelCap(limits.agents)
        self.model = LabelCap(limits.models)
        self.tool = LabelCap(limits.tools)

    def admit(self, rows: Iterable[TotalRow]) -> None:
        """Admit the busiest new values (weighted by calls and tokens) while there is room."""
        agents: dict[str, float] = defaultdict(float)
        models: dict[str, float] = defaultdict(float)
        tools: dict[str, float] = defaultdict(float)
        for row in rows:
            weight = row.value if row.measure == "tokens" else float(row.count)
            agents[row.agent] += weight
            if row.model:
                models[row.model] += weight
            if row.tool:
                tools[row.tool] += weight
        self.agent.admit(agents)
        self.model.admit(models)
        self.tool.admit(tools)


_Key = tuple[str, ...]


def agent_families(rows: Sequence[TotalRow], caps: AgentLabelCaps) -> list[Metric]:
    """Agent counters and duration histograms from the store's totals (one source each)."""
    rows = chosen_totals(rows)
    caps.admit(rows)
    tokens: dict[_Key, float] = defaultdict(float)
    unpriced: dict[_Key, float] = defaultdict(float)
    cost: dict[_Key, float] = defaultdict(float)
    requests: dict[_Key, float] = defaultdict(float)
    errors: dict[_Key, float] = defaultdict(float)
    tool_calls: dict[_Key, float] = defaultdict(float)
    sessions: dict[_Key, float] = defaultdict(float)
    work: dict[_Key, float] = defaultdict(float)
    context: dict[_Key, float] = {}
    request_hist = _Histograms()
    tool_hist = _Histograms()
    ttft_hist = _Histograms()
    for row in rows:
        agent = caps.agent(row.agent)
        if row.measure == "tokens":
            tokens[(agent, caps.model(row.model), row.dim)] += row.value
        elif row.measure == "tokens_unpriced":
            unpriced[(agent, caps.model(row.model))] += row.value
        elif row.measure == "cost":
            cost[(agent, caps.model(row.model))] += row.value
        elif row.measure == "requests":
            key = (agent, caps.model(row.model))
            requests[key] += row.count
            request_hist.add_sum(key, row.value / 1000.0)
        elif row.measure == "errors":
            errors[(agent, caps.model(row.model), row.dim)] += row.count
        elif row.measure == "request_le":
            request_hist.add_bucket((agent, caps.model(row.model)), row.dim, row.count)
        elif row.measure == "ttft":
            ttft_hist.add_sum((agent, caps.model(row.model)), row.value / 1000.0)
        elif row.measure == "ttft_le":
            ttft_hist.add_bucket((agent, caps.model(row.model)), row.dim, row.count)
        elif row.measure == "tool_calls":
            key = (agent, caps.tool(row.tool))
            tool_calls[(*key, row.dim)] += row.count
            tool_hist.add_sum(key, row.value / 1000.0)
        elif row.measure == "tool_le":
            tool_hist.add_bucket((agent, caps.tool(row.tool)), row.dim, row.count)
        elif row.measure == "sessions":
            sessions[(agent,)] += row.count
        elif row.measure == "work":
            work[(agent, row.dim)] += row.value
        elif row.measure == "context_max":
            key = (agent, caps.model(row.model))
            context[key] = max(context.get(key, 0.0), row.value)
    return [
        _counters("telemetryd_agent_tokens", "Tokens used, by token type.",
                  ["agent", "model", "type"], tokens),
        _counters("telemetryd_agent_cost_usd",
                  "Cost in US dollars: reported by the agent, else priced from tokens.",
                  ["agent", "model"], cost),
        _counters("telemetryd_agent_tokens_unpriced",
                  "Tokens of models with no known price (not in the cost).",
                  ["agent", "model"], unpriced),
        _counters("telemetryd_agent_requests", "Model API requests.",
                  ["agent", "model"], requests),
        _counters("telemetryd_agent_errors", "Failed model API requests, by error class.",
                  ["agent", "model", "class"], errors),
        _counters("telemetryd_agent_tool_calls", "Tool executions, by outcome (ok, error).",
                  ["agent", "tool", "outcome"], tool_calls),
        _counters("telemetryd_agent_sessions", "Agent sessions started.", ["agent"], sessions),
        _counters("telemetryd_agent_work",
                  "What agents did to the code: lines_added, lines_removed, commits, "
                  "pull_requests, compactions.", ["agent", "kind"], work),
        _gauges("telemetryd_agent_context_tokens_max",
                "Largest context (input and cached tokens) one request used.",
                ["agent", "model"], context),
        request_hist.family("telemetryd_agent_request_duration_seconds",
                            "Duration of model API requests.", ["agent", "model"]),
        ttft_hist.family("telemetryd_agent_time_to_first_token_seconds",
                         "Time from sending a model API request to its first token.",
                         ["agent", "model"]),
        tool_hist.family("telemetryd_agent_tool_duration_seconds",
                         "Duration of tool executions.", ["agent", "tool"]),
    ]


class _Histograms:
    """Bucket counts and sums per label set, merged from totals rows."""

    def __init__(self) -> None:
        self.hists: dict[_Key, BucketCounts] = {}
        self.sums: dict[_Key, float] = defaultdict(float)

    def add_bucket(self, key: _Key, bound: str, count: int) -> None:
        hist = self.hists.get(key)
        if hist is None:
            hist = self.hists[key] = BucketCounts(DURATION_BUCKETS_SECONDS)
        hist.add_bound(bound, count)

    def add_sum(self, key: _Key, seconds: float) -> None:
        self.sums[key] += seconds

    def family(self, name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, doc, labels=labels)
        for key in sorted(self.hists):
            family.add_metric(list(key), self.hists[key].cumulative(), self.sums.get(key, 0.0))
        return family


def _counters(name: str, doc: str, labels: list[str],
              values: Mapping[_Key, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family


def _gauges(name: str, doc: str, labels: list[str],
            values: Mapping[_Key, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family
