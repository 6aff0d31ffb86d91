"""Sentry envelopes read without sentry-sdk: check one is whole and summarize it for a listing.

The spool calls ``parse_envelope`` on every file it stores or lists, so a truncated or
foreign file is caught before it is sent (and moved aside by the spool).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

_TITLE_MAX_CHARS = 200

# Item type -> the data category Sentry rate-limits it under.
_CATEGORY_OF_ITEM = {
    "event": "error",
    "transaction": "transaction",
    "attachment": "attachment",
    "session": "session",
    "sessions": "session",
    "client_report": "internal",
    "profile": "profile",
    "profile_chunk": "profile_chunk",
    "check_in": "monitor",
    "statsd": "metric_bucket",
    "log": "log_item",
    "span": "span",
}


# The tag the daemon's hourly stats events carry (daemon/stats/events.py sets it).
STATS_TAG = "stats_kind"


class Purpose(Enum):
    """What an envelope in the spool is for: only a crash report counts as a pending report."""

    REPORT = "report"  # a crash report about a watched process (it has a ``kind`` tag)
    STATS = "stats"  # an hourly stats summary for Sentry
    OTHER = "other"  # the daemon's own errors, budget events


@dataclass(frozen=True)
class EnvelopeHeader:
    """An envelope's first line, parsed once: its fields and its length in bytes (without
    the newline), so an upload rewrites it without parsing it again."""

    fields: Mapping[str, Any]
    length: int
    raw: bytes = b""

    def heads(self, data: bytes) -> bool:
        """Whether this is the header line of ``data`` (the same bytes, then a newline or
        the end): a header parsed from one file is never used for another's bytes.

        >>> header = parse_header(b'{"event_id":"ab"}\\n{}')
        >>> header.heads(b'{"event_id":"ab"}\\n{}'), header.heads(b'{"event_id":"cd"}\\n{}')
        (True, False)
        """
        return data.startswith(self.raw) and data[self.length:self.length + 1] in (b"\n", b"")


def parse_header(data: bytes) -> EnvelopeHeader:
    """The parsed header line of ``data``; ValueError if it is not a JSON object.

    >>> parse_header(b'{"event_id":"ab"}\\n{"type":"event"}\\n{}').length
    17
    """
    first_nl = data.find(b"\n")
    length = len(data) if first_nl < 0 else first_nl
    raw = data[:length]
    return EnvelopeHeader(_json_object(raw, "envelope header"), length, raw)


@dataclass(frozen=True)
class EnvelopeSummary:
    """What a listing needs from an envelope, read without sentry-sdk."""

    event_id: str | None
    categories: tuple[str, ...]
    watch: str | None
    kind: str | None
    title: str
    purpose: Purpose = Purpose.OTHER
    header: EnvelopeHeader | None = field(default=None, compare=False, repr=False)


def parse_envelope(data: bytes) -> EnvelopeSummary:
    """Check that ``data`` is a whole Sentry envelope and summarize it; ValueError if not.

    Stricter than ``Envelope.deserialize``: a declared item length must be fully present
    and event payloads must be JSON objects, so a truncated file is caught.

    >>> env = b'{"event_id":"' + b"a" * 32 + b'"}\\n{"type":"event","length":17}\\n'
    >>> parse_envelope(env + b'{"message":"hi"}\\n').title
    'hi'
    >>> parse_envelope(env + b'{"mess')
    Traceback (most recent call last):
    ...
    ValueError: item 1 truncated: 6 of 17 bytes
    """
    parsed_header = parse_header(data)
    first_nl = parsed_header.length if parsed_header.length < len(data) else -1
    event_id = _event_id(parsed_header.fields.get("event_id"))
    categories: list[str] = []
    event: dict[str, Any] | None = None
    pos = len(data) if first_nl < 0 else first_nl + 1
    while pos < len(data):
        nl = data.find(b"\n", pos)
        line_end = len(data) if nl < 0 else nl
        line = data[pos:line_end].strip()
        if not line:
            if data[pos:].strip():
                raise ValueError("blank line before the end of the envelope")
            break
        number = len(categories) + 1
        item_header = _json_object(line, f"item {number} header")
        item_type = item_header.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise ValueError(f"item {number} has no type")
        payload_start = line_end + 1
        length = item_header.get("length")
        if length is None:
            end = data.find(b"\n", payload_start)
            payload_end = len(data) if end < 0 else end
            payload = data[payload_start:payload_end]
            pos = payload_end + 1
        elif isinstance(length, int) and not isinstance(length, bool) and length >= 0:
            payload = data[payload_start : payload_start + length]
            if len(payload) < length:
                raise ValueError(f"item {number} truncated: {len(payload)} of {length} bytes")
            after = payload_start + length
            if after < len(data) and data[after : after + 1] != b"\n":
                raise ValueError(f"item {number} is not followed by a newline")
            pos = after + 1
        else:
            raise ValueError(f"item {number} has an invalid length")
        if item_type in ("event", "transaction"):
            parsed = _json_object(payload, f"item {number} payload")
            event = event if event is not None else parsed
        categories.append(_CATEGORY_OF_ITEM.get(item_type, item_type))
    if not categories:
        raise ValueError("envelope has no items")
    tags = _tags(event.get("tags")) if event else {}
    return EnvelopeSummary(
        event_id=event_id or (_event_id(event.get("event_id")) if event else None),
        categories=tuple(dict.fromkeys(categories)),
        watch=tags.get("watch"),
        kind=tags.get("kind"),
        title=_title(event) if event else f"({', '.join(dict.fromkeys(categories))})",
        purpose=(Purpose.REPORT if tags.get("kind") is not None
                 else Purpose.STATS if STATS_TAG in tags else Purpose.OTHER),
        header=parsed_header,
    )


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse ``raw`` as a JSON object or raise ValueError naming ``what``."""
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _event_id(value: Any) -> str | None:
    """A normalized 32-hex event id, None when absent; ValueError when malformed."""
    if value is None:
        return None
    if isinstance(value, str):
        hex_id = value.replace("-", "").lower()
        if re.fullmatch(r"[0-9a-f]{32}", hex_id):
            return hex_id
    raise ValueError("event_id is not a 32-digit hex id")


def _tags(raw: Any) -> dict[str, str]:
    """Sentry tags come as a dict or as a list of pairs."""
    pairs: Iterable[Any] = raw.items() if isinstance(raw, dict) else raw or []
    tags: dict[str, str] = {}
    for pair in pairs:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            tags[str(pair[0])] = str(pair[1])
    return tags


def _title(event: dict[str, Any]) -> str:
    """The line a person reads: message, log entry, exception, or transaction."""
    candidates: list[Any] = []
    for key in ("message", "logentry"):
        value = event.get(key)
        if isinstance(value, dict):
            candidates += [value.get("formatted"), value.get("message")]
        else:
            candidates.append(value)
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else exception
    if isinstance(values, list) and values and isinstance(values[-1], dict):
        last = values[-1]
        candidates.append(f"{last.get('type', 'Error')}: {last.get('value', '')}".rstrip(": "))
    candidates.append(event.get("transaction"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:_TITLE_MAX_CHARS]
    return "(untitled event)"
