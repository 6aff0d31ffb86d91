"""Pricing through genai-prices, the cost rule, and budget thresholds with their Sentry event."""

from __future__ import annotations

from datetime import UTC, datetime

import genai_prices

from daemon.agents.budget.budgets import check, sentry_event
from daemon.agents.budget.periods import period_start
from daemon.agents.budget.pricing import price_tokens
from daemon.agents.decoding.records import Agent, TokenUsage
from daemon.agents.settings import BudgetSettings

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC).timestamp()
A = Agent("a", None, None, None)


def test_each_token_type_is_priced_like_genai_prices_prices_it() -> None:
    """Cache reads and writes are priced as such, matching genai-prices for the same usage."""
    total = sum(
        price_tokens(TokenUsage(NOW, A, None, "claude-sonnet-4-5", kind, n, "claude_code")).cost_usd
        or 0.0
        for kind, n in (
            ("input", 1000),
            ("output", 500),
            ("cache_read", 20_000),
            ("cache_creation", 3000),
        )
    )
    usage = genai_prices.Usage(
        input_tokens=24_000, output_tokens=500, cache_read_tokens=20_000, cache_write_tokens=3000
    )
    expected = genai_prices.calc_price(usage, "claude-sonnet-4-5")
    assert abs(total - float(expected.total_price)) < 1e-9


def test_unknown_model_has_unknown_cost() -> None:
    """A model missing from genai-prices gets no cost and status unknown."""
    priced = price_tokens(TokenUsage(NOW, A, None, "totally-made-up-llm", "input", 5, "metric"))
    assert (priced.cost_usd, priced.cost_status) == (None, "unknown")


def test_thresholds_fire_once_per_period_and_100_builds_a_warning_event() -> None:
    """50/75/90/100 fire once each per month; 100 % gives a warning event per agent+period."""
    budget = BudgetSettings("claude-code", "monthly", 100.0)
    state, crossed = check(budget, 95.0, None, NOW)
    assert [c.threshold_percent for c in crossed] == [50, 75, 90]
    state, crossed = check(budget, 96.0, state, NOW + 60)
    assert crossed == []
    state, crossed = check(budget, 130.0, state, NOW + 120)
    (full,) = crossed
    event = sentry_event(full, NOW)
    assert event["level"] == "warning"
    assert event["fingerprint"] == ["telemetryd-budget", "claude-code", "monthly"]
    assert event["contexts"]["budget"]["percent"] == 130.0
    next_month = datetime(2026, 12, 1, 0, 1, tzinfo=UTC).timestamp()
    _, crossed = check(budget, 60.0, state, next_month)
    assert [c.threshold_percent for c in crossed] == [50]
    assert period_start("monthly", next_month) == datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def test_zero_budget_never_fires() -> None:
    """A zero limit is treated as no budget rather than dividing by zero."""
    _, crossed = check(BudgetSettings("a", "daily", 0.0), 5.0, None, NOW)
    assert crossed == []
