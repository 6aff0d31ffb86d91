"""What decoded records cost in memory, with every string they keep within a byte cap (pure).

Applied once, to every record a request decodes to, before it is queued: the names, ids,
hosts, models, tools, event names, error texts and kept attributes a record carries into
the queue, the store and the identity caches are cut to ``max_stored_string_bytes`` (with a
digest of the whole, ``daemon/agents/decoding/bounded.py``), and the estimate is what the
queue counts against ``max_queued_bytes``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daemon.agents.decoding.bounded import bounded
from daemon.agents.decoding.records import Agent, Record

# CPython 3.11, 64-bit: a record with slots and its numbers; a (key, value) tuple; an
# Agent with slots.
RECORD_BYTES = 240
PAIR_BYTES = 56
AGENT_BYTES = 120
_AGENT_FIELDS = ("name", "instance_id", "session_id", "service", "host", "version")
_FIELDS: dict[type, tuple[str, ...]] = {}


def text_bytes(text: str) -> int:
    """Memory of a str as CPython holds it.

    >>> text_bytes("abc"), text_bytes("é")
    (52, 74)
    """
    return sys.getsizeof(text)


@dataclass(frozen=True, slots=True)
class Fitted:
    """Records with their strings within the cap, their estimated bytes, and how many
    strings were cut."""

    records: list[Record]
    bytes: int
    cut: int


def _fields(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(kind) if f.name != "agent")
        _FIELDS[kind] = names
    return names


def _fit_agent(agent: Agent, max_bytes: int) -> tuple[Agent, int, int]:
    changes: dict[str, Any] = {}
    cost = AGENT_BYTES
    for name in _AGENT_FIELDS:
        value = getattr(agent, name)
        if isinstance(value, str):
            fitted = bounded(value, max_bytes)
            if fitted is not value:
                changes[name] = fitted
            cost += text_bytes(fitted)
    if changes:
        agent = dataclasses.replace(agent, **changes)
    return agent, cost, len(changes)


def _fit_pairs(pairs: tuple[tuple[str, str], ...], max_bytes: int
               ) -> tuple[tuple[tuple[str, str], ...], int, int]:
    cost = cut = 0
    out = []
    for key, value in pairs:
        short_key, short_value = bounded(key, max_bytes), bounded(value, max_bytes)
        cut += (short_key is not key) + (short_value is not value)
        cost += PAIR_BYTES + text_bytes(short_key) + text_bytes(short_value)
        out.append((short_key, short_value))
    return (tuple(out) if cut else pairs), cost, cut


def fit_records(records: Sequence[Record], max_string_bytes: int) -> Fitted:
    """Every record with each of its strings within ``max_string_bytes`` (a record with
    nothing to cut is kept as it is), and the bytes they hold (an agent shared by several
    records counted once).

    >>> from daemon.agents.decoding.records import SessionStart
    >>> long = Agent("a" * 100, None, "s", None)
    >>> fitted = fit_records([SessionStart(0.0, long, "s", 1)] * 2, 32)
    >>> fitted.cut, len(fitted.records[0].agent.name.encode()), fitted.bytes > 0
    (1, 32, True)
    """
    agents: dict[int, tuple[Agent, int]] = {}
    out: list[Record] = []
    total = cut = 0
    sure = max_string_bytes // 4  # this many characters fit whatever they are
    for record in records:
        changes: dict[str, Any] = {}
        cost = RECORD_BYTES
        for name in _fields(type(record)):
            value = getattr(record, name)
            if isinstance(value, str):
                if len(value) > sure:
                    fitted = bounded(value, max_string_bytes)
                    if fitted is not value:
                        changes[name] = value = fitted
                        cut += 1
                cost += sys.getsizeof(value)
            elif isinstance(value, tuple):
                pairs, pairs_cost, pairs_cut = _fit_pairs(value, max_string_bytes)
                if pairs_cut:
                    changes[name] = pairs
                    cut += pairs_cut
                cost += pairs_cost
        known = agents.get(id(record.agent))
        if known is None:
            agent, agent_cost, agent_cut = _fit_agent(record.agent, max_string_bytes)
            agents[id(record.agent)] = (agent, agent_cut)
            cost += agent_cost
            cut += agent_cut
        else:
            agent = known[0]
        if agent is not record.agent:
            changes["agent"] = agent
        out.append(dataclasses.replace(record, **changes) if changes else record)
        total += cost
    return Fitted(out, total, cut)
