"""The last calls a crash report lists: one entry per call, from one source (pure).

Agents send a call as an event, a metric point and a span; a report lists each call once,
from the source the stats choose for it (choose.py). Codex's ``codex.api_request`` event
carries no tokens: they come in the ``codex.sse_event`` ``response.completed`` that follows
each request, stored as per-call token records, and are put back on their request here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daemon.agents.store.choose import PREFERENCE

_TOKEN_FIELDS = {"input": "input_tokens", "output": "output_tokens",
                 "cache_read": "cache_read_tokens", "cache_creation": "cache_creation_tokens",
                 "reasoning": "reasoning_tokens"}


def one_source(by_source: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The entries of one source only, chosen as the stats choose (most calls counted, ties
    to events). Spans only time calls others count, so they are never listed.

    >>> one_source({"metric": [{"count": 2}], "event": [{"count": 1}, {"count": 1}]})
    [{'count': 1}, {'count': 1}]
    """
    candidates = {source: entries for source, entries in by_source.items() if source != "span"}
    if not candidates:
        return []
    best = max(candidates, key=lambda source: (
        sum(int(entry.get("count") or 0) for entry in candidates[source]),
        -PREFERENCE.get(source, 9)))
    return candidates[best]


def with_call_tokens(requests: list[dict[str, Any]],
                     call_tokens: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests without tokens of their own get those of the first per-call token record of
    their model that follows them (``call_tokens``: stored ``tokens`` records of one call,
    in time order, each with ``ts``). Requests that have tokens are left as they are.

    >>> reqs = [{"ts": 1.0, "model": "m", "input_tokens": None},
    ...         {"ts": 3.0, "model": "m", "input_tokens": None}]
    >>> toks = [{"ts": 2.0, "model": "m", "token_type": "input", "tokens": 700},
    ...         {"ts": 2.0, "model": "m", "token_type": "output", "tokens": 15},
    ...         {"ts": 4.0, "model": "m", "token_type": "input", "tokens": 800}]
    >>> [(r["input_tokens"], r.get("output_tokens")) for r in with_call_tokens(reqs, toks)]
    [(700, 15), (800, None)]
    """
    calls: list[tuple[float, str, dict[str, int]]] = []
    for record in call_tokens:
        key = (float(record["ts"]), str(record.get("model", "")))
        if not calls or (calls[-1][0], calls[-1][1]) != key:
            calls.append((key[0], key[1], {}))
        calls[-1][2][str(record["token_type"])] = int(record["tokens"])
    if not calls or all(r.get("input_tokens") is not None for r in requests):
        return requests
    out = []
    used = 0
    for request in requests:
        if request.get("input_tokens") is not None or request.get("error_class"):
            out.append(request)
            continue
        while used < len(calls) and (calls[used][0] < request["ts"]
                                     or calls[used][1] != request.get("model")):
            used += 1
        if used == len(calls):
            out.append(request)
            continue
        tokens = calls[used][2]
        used += 1
        out.append({**request, **{field: tokens[token_type]
                                  for token_type, field in _TOKEN_FIELDS.items()
                                  if token_type in tokens}})
    return out
