"""OTLP attribute lists to plain values, bounded in bytes, and agent identity from a resource."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import Any

from daemon.agents.decoding.bounded import bounded
from daemon.agents.decoding.identity import agent_name
from daemon.agents.decoding.records import Agent
from daemon.config.schema import OtlpSettings

Scalar = str | int | float | bool
PID_MAX = 1 << 22  # Linux's PID_MAX_LIMIT
UNKNOWN_SERVICE = "unknown_service"
# Cut counts by kind (``OtlpCounter.TRUNCATED``, by kind): attribute_keys, attribute_values, and
# attributes (dropped past the per-list cap).
Tally = Counter[str]


@dataclass(frozen=True, slots=True)
class AttributeLimits:
    """What one attribute list may cost: at most ``count`` attributes, keys and string
    values cut (with a digest, ``bounded.py``) to ``key_bytes`` and ``value_bytes``.

    >>> AttributeLimits.of(OtlpSettings(max_attributes=3)).count
    3
    """

    count: int = OtlpSettings.max_attributes
    key_bytes: int = OtlpSettings.max_attribute_key_bytes
    value_bytes: int = OtlpSettings.max_attribute_value_bytes

    @classmethod
    def of(cls, settings: OtlpSettings) -> AttributeLimits:
        """The limits configured in [otlp]."""
        return cls(settings.max_attributes, settings.max_attribute_key_bytes,
                   settings.max_attribute_value_bytes)


DEFAULT_LIMITS = AttributeLimits()


def scalar(value: Any) -> Scalar | None:
    """The plain value of an ``AnyValue`` (strings whole); arrays, maps and bytes are not
    needed here."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return bool(value.bool_value)
    if kind == "int_value":
        return int(value.int_value)
    if kind == "double_value":
        return float(value.double_value)
    return None


def to_dict(key_values: Iterable[Any], limits: AttributeLimits = DEFAULT_LIMITS,
            tally: Tally | None = None) -> dict[str, Scalar]:
    """Attributes as a dict of scalars: at most ``limits.count`` of them (the rest are never
    read: a million empty attributes cost no more than ``count``), keys and string values
    within their byte caps; each cut or dropped attribute is counted in ``tally``."""
    out: dict[str, Scalar] = {}
    cut_keys = cut_values = 0
    # A string of at most a quarter of its cap in characters fits it whatever they are.
    sure_key, sure_value = limits.key_bytes // 4, limits.value_bytes // 4
    for kv in itertools.islice(key_values, limits.count):
        found = scalar(kv.value)
        if found is None:
            continue
        if isinstance(found, str) and len(found) > sure_value:
            value = bounded(found, limits.value_bytes)
            cut_values += value is not found
            found = value
        key = str(kv.key)
        if len(key) > sure_key:
            raw_key, key = key, bounded(key, limits.key_bytes)
            cut_keys += key is not raw_key
        out[key] = found
    if tally is not None:
        if cut_keys:
            tally["attribute_keys"] += cut_keys
        if cut_values:
            tally["attribute_values"] += cut_values
        dropped = len(key_values) - limits.count if isinstance(key_values, Sized) else 0
        if dropped > 0:
            tally["attributes"] += dropped
    return out


def text(attrs: dict[str, Scalar], *keys: str) -> str | None:
    """The first of ``keys`` present, as text.

    >>> text({"a": 1, "b": "x"}, "z", "a")
    '1'
    """
    for key in keys:
        if key in attrs:
            return str(attrs[key])
    return None


def number(attrs: dict[str, Scalar], key: str) -> float | None:
    """A numeric attribute, also when sent as a string (Claude Code sends event fields as text).

    >>> number({"d": "12.5"}, "d"), number({"d": "n/a"}, "d"), number({}, "d")
    (12.5, None, None)
    """
    value = attrs.get(key)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except ValueError:
        return None


def flag(attrs: dict[str, Scalar], key: str) -> bool | None:
    """A boolean attribute, also when sent as ``"true"``/``"false"``.

    >>> flag({"s": "false"}, "s"), flag({"s": True}, "s"), flag({}, "s")
    (False, True, None)
    """
    value = attrs.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def agent_of(resource_attrs: dict[str, Scalar], sender_pid: int | None = None) -> Agent:
    """Agent identity from the resource: agent name, instance id, session id, pid, host.

    ``sender_pid``: the sending process when the receiver found it from the loopback socket
    (``[otlp] trust = "watched"``); the pid of a resource naming no ``process.pid`` (Claude
    Code and Codex send none), so reports match by pid and two processes of one agent stay
    apart (``daemon/agents/linking/sub_threads.py``). A ``process.pid`` sent is kept.

    >>> agent_of({"service.name": "codex_exec", "process.pid": "42", "service.version": "0.1"})
    Agent(name='codex', instance_id=None, session_id=None, pid=42, service='codex_exec', \
host=None, version='0.1')
    >>> agent_of({"process.pid": 1e300}).pid is None
    True
    >>> agent_of({"service.name": "codex_cli_rs"}, 4242).pid, agent_of({"process.pid": 7}, 9).pid
    (4242, 7)
    """
    pid_value = number(resource_attrs, "process.pid")
    pid = (
        int(pid_value)
        if pid_value is not None and 0 < pid_value <= PID_MAX and pid_value.is_integer()
        else sender_pid
    )
    service = text(resource_attrs, "service.name") or UNKNOWN_SERVICE
    version = text(resource_attrs, "service.version")
    runtime = text(resource_attrs, "process.runtime.version")
    if version and runtime and version.lstrip("v") == runtime.lstrip("v"):
        version = None  # Gemini CLI sends the Node.js version as its service.version
    return Agent(
        name=agent_name(service),
        instance_id=text(resource_attrs, "service.instance.id"),
        session_id=text(resource_attrs, "session.id"),
        pid=pid,
        service=service,
        host=text(resource_attrs, "host.name"),
        version=version[:64] if version else None,
    )
