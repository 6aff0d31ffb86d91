"""Global identity caps: agents, models, tools and sessions bounded, least recently used out."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.agents.decoding.cardinality import IdentityLimits
from daemon.agents.decoding.counters import OtlpCounter, OtlpCounters, OtlpStats
from daemon.agents.decoding.records import Agent, ApiRequest, SessionStart, ToolCall
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.queries import StoreReader
from daemon.agents.store.totals import read_totals

NOW = 1_800_000_000.0
SMALL = IdentityLimits(agents=3, models=4, tools=2, sessions=5)


def store_at(path: Path, counters: OtlpCounters, limits: IdentityLimits = SMALL) -> EventStore:
    """An event store with small caps."""
    return EventStore(path, 30.0, 1 << 30, limits=limits, counters=counters)


def test_agents_past_the_cap_evict_the_least_recently_used(tmp_path: Path) -> None:
    """A flood of service names keeps the totals at max_agents, the busy agent stays."""
    counters = OtlpCounters()
    store = store_at(tmp_path / "s.sqlite3", counters)
    busy = Agent("claude-code", "i-1", None, None)
    for n in range(50):
        store.append([SessionStart(NOW, busy, None, 1),
                      SessionStart(NOW, Agent(f"flood-{n}", None, None, None), None, 1)])
    agents = {row.agent for row in read_totals(store.path)}
    assert len(agents) == 3 and "claude-code" in agents
    assert counters.snapshot()[(OtlpCounter.EVICTED, ("agents",))] == 48


def test_model_and_tool_pairs_are_capped(tmp_path: Path) -> None:
    """New (agent, model) and (agent, tool) pairs push out the oldest ones' totals."""
    counters = OtlpCounters()
    store = store_at(tmp_path / "s.sqlite3", counters)
    bot = Agent("bot", None, None, None)
    store.append([ApiRequest(NOW, bot, None, f"model-{n}", 1, 5.0) for n in range(10)])
    store.append([ToolCall(NOW, bot, None, f"tool-{n}", True, 1, 5.0) for n in range(6)])
    rows = read_totals(store.path)
    assert {r.model for r in rows if r.model} == {f"model-{n}" for n in range(6, 10)}
    assert {r.tool for r in rows if r.tool} == {"tool-4", "tool-5"}
    assert counters.snapshot()[(OtlpCounter.EVICTED, ("models",))] == 6
    assert counters.snapshot()[(OtlpCounter.EVICTED, ("tools",))] == 4


def test_session_streams_are_forgotten_in_memory_but_sequences_continue(tmp_path: Path) -> None:
    """Past max_sessions the sequence cache evicts; a returning stream continues its numbers."""
    counters = OtlpCounters()
    store = store_at(tmp_path / "s.sqlite3", counters)
    first = Agent("bot", None, "s-0", None)
    store.append([SessionStart(NOW, first, None, 1)] * 2)
    for n in range(1, 20):
        store.append([SessionStart(NOW, Agent("bot", None, f"s-{n}", None), None, 1)])
    store.append([SessionStart(NOW, first, None, 1)])
    assert [e.seq for e in StoreReader(store.path).events("bot/session-s-0")] == [1, 2, 3]
    assert counters.snapshot()[(OtlpCounter.EVICTED, ("sessions",))] == 16  # 21 stream uses, 5 kept


def test_a_lower_cap_at_reopen_trims_what_the_store_holds(tmp_path: Path) -> None:
    """Opening a store that holds more agents than the cap evicts the extras at once."""
    path = tmp_path / "s.sqlite3"
    store = store_at(path, OtlpCounters(), IdentityLimits(agents=100, models=100, tools=100,
                                                      sessions=100))
    store.append([SessionStart(NOW, Agent(f"a-{n}", None, None, None), None, 1)
                  for n in range(20)])
    store.close()
    counters = OtlpCounters()
    store_at(path, counters).close()
    count = sqlite3.connect(path).execute("SELECT count(DISTINCT agent) FROM totals").fetchone()
    assert count[0] == 3
    assert counters.snapshot()[(OtlpCounter.EVICTED, ("agents",))] == 17


def test_evictions_reach_metrics_and_status() -> None:
    """EVICTED counts become telemetryd_otlp_evicted{kind} and status's evicted field."""
    from daemon.status.snapshot import OtlpStatus
    from daemon.web.exposition.metrics import otlp_families

    (family,) = [f for f in otlp_families(OtlpStats({
                     (OtlpCounter.EVICTED, ("agents",)): 3,
                     (OtlpCounter.EVICTED, ("series",)): 2}))
                 if f.name == "telemetryd_otlp_evicted"]
    assert {s.labels["kind"]: s.value for s in family.samples if s.name.endswith("_total")} == {
        "agents": 3.0, "series": 2.0}
    status = OtlpStatus(up=True, evicted={"agents": 3})
    assert status.to_json()["evicted"] == {"agents": 3}
    assert "evicted" not in OtlpStatus(up=True).to_json()
