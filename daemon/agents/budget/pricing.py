"""Cost of tokens from the maintained ``genai-prices`` tables; an unknown model is never guessed.

The rule that keeps spend from being counted twice:

* Sources are never added up: Claude Code's ``api_request`` events carry the same spend as
  its metrics; per agent and model the source that counted the most counts (costs.py).
* Within one export, cost the agent reported itself (``claude_code.cost.usage`` or
  ``cost_usd`` on its events) stands for the tokens it came with, unless it is implausibly
  low for them; tokens without a reported cost count at the price computed here
  (integrity.py). Gemini CLI and Codex report tokens only.
* A context-window variant (``claude-opus-4-8[1m]``) is priced as its model, per request, so
  long-context tiers apply where the request's input reaches them.
* The provider the agent named (``gen_ai.provider.name`` / ``gen_ai.system``) is asked
  first; when ``genai-prices`` does not know the model under it, the model alone decides
  (as for every record without a provider).
* A model ``genai-prices`` does not know gets cost status ``unknown`` and no cost at all.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any

from daemon.agents.decoding.records import TokenUsage

if TYPE_CHECKING:
    import genai_prices


def _prices() -> ModuleType:
    """genai-prices, imported on first use: it brings pydantic and ~10 MB the daemon
    does not need until an agent sends tokens to price."""
    import genai_prices
    import genai_prices.types

    return genai_prices

_UNPRICEABLE = frozenset({"", "unknown"})
# What each priced kind of token is to genai-prices: the token types, and cache writes by
# how long they are kept when the agent said so (1-hour writes cost more than 5-minute ones).
PriceKind = str
_USAGE_FIELDS: dict[PriceKind, tuple[str, ...]] = {
    "input": ("input_tokens",),
    "output": ("output_tokens",),
    "cache_read": ("input_tokens", "cache_read_tokens"),
    "cache_creation": ("input_tokens", "cache_write_tokens"),
    # genai-prices wants the parent count beside its 5m / 1h part.
    "cache_creation_5m": ("input_tokens", "cache_write_tokens", "cache_write_5m_tokens"),
    "cache_creation_1h": ("input_tokens", "cache_write_tokens", "cache_write_1h_tokens"),
    # Providers bill reasoning (thinking) tokens as output tokens.
    "reasoning": ("output_tokens",),
}


def price_kind(usage: TokenUsage) -> PriceKind:
    """The priced kind of a token record: its type, cache writes by their time to live."""
    if usage.cache_ttl is not None:  # only cache writes have one
        return f"cache_creation_{usage.cache_ttl}"
    return usage.token_type


def price_tokens(usage: TokenUsage) -> TokenUsage:
    """The record with its computed cost, or cost status ``unknown`` for an unpriced model.

    Tokens spread over ``requests`` calls are priced per average call, so tiered prices
    (long-context surcharges) apply as they would have per call.
    """
    requests = max(usage.requests, 1)
    per_request = round(usage.tokens / requests)
    day = datetime.fromtimestamp(usage.ts, UTC).date()
    kind = price_kind(usage)
    unit = None if usage.provider is None else _price(
        usage.model, kind, per_request, day, usage.provider)
    if unit is None:
        unit = _price(usage.model, kind, per_request, day)
    if unit is None:
        return dataclasses.replace(usage, cost_usd=None, cost_status="unknown")
    return dataclasses.replace(usage, cost_usd=float(unit * requests), cost_status="computed")


_PROBE_TOKENS = 1000


def _price(model: str, token_type: PriceKind, tokens: int, day: date,
           provider: str | None = None) -> Decimal | None:
    if model in _UNPRICEABLE:
        return None
    if tokens == 0:
        return Decimal(0)
    linear = _linear_price(model, token_type, day, provider)
    if linear is None:
        return _exact_price(model, token_type, tokens, day, provider)
    per_token, valid_below = linear
    # Tiers switch on the request's input tokens; output alone carries none.
    input_tokens = tokens if "input_tokens" in _USAGE_FIELDS[token_type] else 0
    if input_tokens < valid_below:
        return per_token * tokens
    return _exact_price(model, token_type, tokens, day, provider)


@functools.lru_cache(maxsize=1024)
def _linear_price(model: str, token_type: PriceKind, day: date, provider: str | None
                  ) -> tuple[Decimal, int] | None:
    """Price per token and the input size below which it holds, when pricing is proportional.

    A full genai-prices calculation costs ~130 us; most prices are proportional to tokens
    below the first tier, so one probe per model, type and day prices the rest exactly.
    """
    one = _exact_price(model, token_type, _PROBE_TOKENS, day, provider)
    two = _exact_price(model, token_type, 2 * _PROBE_TOKENS, day, provider)
    if one is None or two is None or two != 2 * one:
        return None  # unknown model, or a fixed per-request part: price every record in full
    calculation = _calculation(model, _usage(token_type, _PROBE_TOKENS), day, provider)
    starts = [
        tier.start
        for value in vars(calculation.model_price).values()
        if isinstance(value, _prices().types.TieredPrices)
        for tier in value.tiers
    ]
    return one / _PROBE_TOKENS, min(starts, default=2**63)


@functools.lru_cache(maxsize=4096)
def _exact_price(model: str, token_type: PriceKind, tokens: int, day: date,
                 provider: str | None) -> Decimal | None:
    calculation = _calculation(model, _usage(token_type, tokens), day, provider)
    return None if calculation is None else Decimal(calculation.total_price)


def _usage(token_type: PriceKind, tokens: int) -> genai_prices.Usage:
    # genai-prices counts cached tokens inside input_tokens (OpenAI's convention), while
    # Claude Code reports them apart (Anthropic's), so each type is priced on its own.
    usage: genai_prices.Usage = _prices().Usage(
        **{field: tokens for field in _USAGE_FIELDS[token_type]}
    )
    return usage


def _calculation(model: str, usage: genai_prices.Usage, day: date,
                 provider: str | None = None) -> Any:
    when = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # provider_id: genai-prices matches OpenTelemetry names too ("aws.bedrock" is
            # its "aws", "gcp.vertex_ai" its "google"); a name it lacks is a LookupError.
            return _prices().calc_price(usage, model, provider_id=provider,
                                        genai_request_timestamp=when)
    except (LookupError, ValueError):
        return None
