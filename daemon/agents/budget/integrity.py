"""Budget integrity at the door: what one export may add to the spend it is counted in (pure).

Budgets count ``cost_counted`` (``daemon.agents.budget.costs``), a sum the writer only adds to.
This module decides, for the records of one export (one OTLP request, priced already), what
they add, per agent, session, model and source:

* the agent's own reported cost, when it is plausible for the tokens it came with: at least
  ``MIN_REPORTED_SHARE`` of what ``genai-prices`` gives for them (the tokens are then
  ``covered``: their priced cost is kept for display but not counted again);
* else the priced cost of those tokens: the reported cost is refused (dropped and counted
  as ``implausible_cost``), so 50 M tokens said to cost 0.000001 USD count as 50 M tokens;
* tokens without a reported cost count at their priced cost; a reported cost without priced
  tokens (an unknown model, or cost and tokens sent in different exports) counts as sent.

Negative, infinite or NaN costs and negative token counts are refused outright: nothing an
export adds can lower a total. The share is a half of the priced figure with room to spare:
the largest long-context surcharge a price table has doubles a price, and tokens summed over
several calls in one metrics export can be priced at that tier, so an honest agent's own
figure is never below half of ours; 0.4 leaves room for rounding.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from daemon.agents.decoding.records import CostUsage, Record, TokenUsage

MIN_REPORTED_SHARE = 0.4
REFUSAL_REASON = "implausible_cost"
_Key = tuple[str, str | None, str, str]


@dataclass(frozen=True, slots=True)
class Screened:
    """The records to store, and how many values were refused (costs and token counts)."""

    records: list[Record]
    refused: int = 0


def _key(record: TokenUsage | CostUsage) -> _Key:
    return (record.agent.name, record.session_id, record.model, record.source)


def plausible(reported_usd: float, priced_usd: float) -> bool:
    """Whether a reported cost may stand for tokens priced at ``priced_usd``.

    >>> plausible(0.031, 0.031), plausible(1e-6, 150.0), plausible(5.0, 0.0)
    (True, False, True)
    """
    return reported_usd >= MIN_REPORTED_SHARE * priced_usd


def screen(records: Sequence[Record]) -> Screened:
    """What one export's priced records add to the spend (see the module docstring).

    >>> from daemon.agents.decoding.records import Agent
    >>> bot = Agent("bot", None, None, None)
    >>> tokens = TokenUsage(0.0, bot, "s", "m", "input", 50_000_000, cost_usd=150.0,
    ...                     cost_status="computed")
    >>> out = screen([tokens, CostUsage(0.0, bot, "s", "m", 1e-6)])
    >>> [type(r).__name__ for r in out.records], out.refused
    (['TokenUsage'], 1)
    >>> out = screen([tokens, CostUsage(0.0, bot, "s", "m", 151.0)])
    >>> [getattr(r, "cost_status", "-") for r in out.records], out.refused
    (['covered', '-'], 0)
    """
    reported: dict[_Key, float] = {}
    priced: dict[_Key, float] = {}
    kept: list[Record] = []
    refused = 0
    for record in records:
        if isinstance(record, CostUsage):
            if not math.isfinite(record.usd) or record.usd < 0:
                refused += 1
                continue
            reported[_key(record)] = reported.get(_key(record), 0.0) + record.usd
        elif isinstance(record, TokenUsage):
            if record.tokens < 0:
                refused += 1
                continue
            if record.cost_status == "computed" and record.cost_usd is not None:
                priced[_key(record)] = priced.get(_key(record), 0.0) + record.cost_usd
        kept.append(record)
    implausible = {key for key, usd in reported.items()
                   if key in priced and not plausible(usd, priced[key])}
    out: list[Record] = []
    for record in kept:
        if isinstance(record, CostUsage) and _key(record) in implausible:
            refused += 1
            continue
        if (isinstance(record, TokenUsage) and record.cost_status == "computed"
                and _key(record) in reported and _key(record) not in implausible):
            record = dataclasses.replace(record, cost_status="covered")
        out.append(record)
    return Screened(out, refused)
