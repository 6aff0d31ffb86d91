"""Budget integrity rules: what an export may add to spend, and that spend only grows."""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.agents.budget.integrity import MIN_REPORTED_SHARE, screen
from daemon.agents.budget.spend import cost_per_agent
from daemon.agents.decoding.records import Agent, CostUsage, Record, Source, TokenUsage
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.queries import StoreReader
from daemon.agents.store.rows import figures

NOW = 1_790_000_000.0
BOT = Agent("bot", None, None, None)


def tokens(n: int, usd: float | None, model: str = "m", source: Source = "metric",
           session: str = "s") -> TokenUsage:
    """Priced tokens (``usd`` None: a model without a known price)."""
    if usd is None:
        return TokenUsage(NOW, BOT, session, model, "input", n, source, cost_status="unknown")
    return TokenUsage(NOW, BOT, session, model, "input", n, source, cost_usd=usd,
                      cost_status="computed")


def cost(usd: float, model: str = "m", source: Source = "metric",
         session: str = "s") -> CostUsage:
    """A cost the agent reported."""
    return CostUsage(NOW, BOT, session, model, usd, source)


def session_usd(exports: list[list[Record]]) -> float:
    """The session's spend after these exports, aggregated as the store aggregates it."""
    sums: dict[tuple[str, ...], float] = defaultdict(float)
    for export in exports:
        for record in screen(export).records:
            who = (str(record.session_id), record.agent.name)
            for model, tool, measure, dim, value, _count in figures(record):
                sums[(*who, model, tool, measure, dim)] += value
    return cost_per_agent((*key, value, 0) for key, value in sums.items()).get("bot", 0.0)


def test_a_plausible_reported_cost_covers_its_tokens() -> None:
    """The agent's own cost counts for the tokens it came with; they are not priced again."""
    assert session_usd([[tokens(1000, 0.031), cost(0.03)]]) == 0.03


def test_an_implausible_reported_cost_is_refused_and_the_priced_figure_counts() -> None:
    """50 M tokens said to cost 0.000001 USD count what they are priced at."""
    out = screen([tokens(50_000_000, 150.0), cost(0.000001)])
    assert out.refused == 1
    assert not any(isinstance(r, CostUsage) for r in out.records)
    assert session_usd([[tokens(50_000_000, 150.0), cost(0.000001)]]) == 150.0


def test_the_margin_is_the_documented_share_of_the_priced_figure() -> None:
    """Just above the share stands, just below is refused."""
    assert screen([tokens(10, 10.0), cost(MIN_REPORTED_SHARE * 10.0)]).refused == 0
    assert screen([tokens(10, 10.0), cost(MIN_REPORTED_SHARE * 10.0 - 1e-6)]).refused == 1


def test_negative_and_non_finite_values_are_refused() -> None:
    """No export may subtract: negative or NaN costs and negative token counts are refused."""
    out = screen([cost(-5.0), cost(math.nan), cost(math.inf), tokens(-10, -1.0), tokens(5, 0.1)])
    assert out.refused == 4
    assert [type(r).__name__ for r in out.records] == ["TokenUsage"]


def test_cost_of_an_unpriced_model_or_without_tokens_counts_as_sent() -> None:
    """Nothing to compare with: the reported cost stands."""
    assert screen([tokens(10, None), cost(0.01)]).refused == 0
    assert session_usd([[cost(0.01)], [tokens(10, None), cost(0.02)]]) == 0.03


def test_the_source_that_counted_most_wins_never_a_sum_of_sources() -> None:
    """Events counted 25 USD; metrics with more tokens and a tiny cost do not replace it."""
    events = [tokens(10_000, 0.04, source="event"), cost(25.0, source="event")]
    attack = [tokens(50_000_000, 150.0), cost(0.000001)]
    assert session_usd([events]) == 25.0
    assert session_usd([events, attack]) == 150.0
    assert session_usd([events, events]) == 50.0


_exports = st.lists(st.lists(st.one_of(
    st.builds(tokens, st.integers(-10, 10**9), st.one_of(st.none(), st.floats(0, 1e4)),
              st.sampled_from(["m", "n"]), st.sampled_from(["metric", "event"]),
              st.sampled_from(["s", "t"])),
    st.builds(cost, st.floats(allow_nan=True, allow_infinity=True, width=32),
              st.sampled_from(["m", "n"]), st.sampled_from(["metric", "event"]),
              st.sampled_from(["s", "t"])),
), max_size=6), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(_exports)
def test_spend_never_drops_whatever_exports_arrive(exports: list[list[Record]]) -> None:
    """Property: after every export, a session's counted spend is at least what it was."""
    before = 0.0
    for end in range(1, len(exports) + 1):
        now = session_usd(exports[:end])
        assert now >= before - 1e-9 * max(1.0, before), (exports[:end], before, now)
        before = now


def test_a_store_written_before_counted_cost_keeps_what_it_counted(tmp_path: Path) -> None:
    """Opening a store whose cost rows predate ``cost_counted`` fills it in by the old rule
    (reported wins over computed), once: budget check then reads the same figures."""
    path = tmp_path / "events.db"
    EventStore(path, 30.0, 1 << 30).close()
    db = sqlite3.connect(path)
    hour = int(NOW // 3600)
    legacy = [("cost_reported@event", 0.5), ("cost_computed@event", 9.0),
              ("cost_computed", 2.0)]
    db.executemany("INSERT INTO hourly VALUES (?, 'bot', 'm', '', ?, '', ?, 0)",
                   [(hour, measure, value) for measure, value in legacy])
    db.executemany("INSERT INTO session_totals VALUES ('bot', 's', 'm', '', ?, '', ?, 0)",
                   legacy)
    db.commit()
    db.close()
    for _ in range(2):  # a second open adds nothing
        EventStore(path, 30.0, 1 << 30).close()
    reader = StoreReader(path)
    assert reader.session_spend("s") == {"bot": 2.0}  # metrics counted 2.0, events 0.5
    assert reader.spend_usd("bot", NOW - 60, NOW) == 2.0
    db = sqlite3.connect(path)
    counted = db.execute("SELECT count(*) FROM hourly WHERE measure LIKE 'cost_counted%'")
    assert counted.fetchone()[0] == 2
    db.close()
