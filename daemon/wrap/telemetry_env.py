"""The environment ``telemetryd wrap`` gives its child: the agent's telemetry on, pointed at us.

Pure: the parent's environment, the receiver's endpoint (None when the daemon's receiver is
down) and the child's identity in, the child's environment out. A value the user set is never
replaced; ``OTEL_RESOURCE_ATTRIBUTES`` only gains the keys it does not have.

The child's token (``daemon.agents.trust.sender_token``) goes into ``OTEL_EXPORTER_OTLP_HEADERS``
as ``x-telemetryd-token``, only when the child's exporters point at our receiver: a user who
sends the agent's telemetry elsewhere never has the token sent there.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from daemon.agents.trust.sender_token import TOKEN_HEADER
from daemon.runtime.reports.node_options import heap_flags

WRAP_ID_ATTRIBUTE = "telemetryd.wrap_id"


def telemetry_defaults(endpoint: str) -> dict[str, str]:
    """What switches on each known agent's OTLP export to ``endpoint`` (http://host:port).

    Claude Code and any OpenTelemetry SDK read the ``OTEL_*`` variables; Gemini CLI its own.
    Codex CLI reads its exporter from ``~/.codex/config.toml`` only (nothing to set here).
    """
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "GEMINI_TELEMETRY_ENABLED": "true",
        "GEMINI_TELEMETRY_TARGET": "local",
        "GEMINI_TELEMETRY_OTLP_ENDPOINT": endpoint,
        "GEMINI_TELEMETRY_OTLP_PROTOCOL": "http",
    }


def add_resource_attributes(existing: str | None, extra: Mapping[str, str]) -> str:
    """``OTEL_RESOURCE_ATTRIBUTES`` with ``extra`` appended where the key is not there yet.

    >>> add_resource_attributes("team=a,process.pid=7", {"process.pid": "9", "w": "x y"})
    'team=a,process.pid=7,w=x%20y'
    >>> add_resource_attributes(None, {"k": "v"})
    'k=v'
    """
    items = [item for item in (existing or "").split(",") if item.strip()]
    present = {item.split("=", 1)[0].strip() for item in items}
    items += [f"{key}={quote(value, safe='')}" for key, value in extra.items()
              if key not in present]
    return ",".join(items)


def add_header(existing: str | None, name: str, value: str) -> str:
    """``OTEL_EXPORTER_OTLP_HEADERS`` with one header appended unless already there.

    >>> add_header("authorization=Bearer%20x", "x-telemetryd-token", "ab.cd")
    'authorization=Bearer%20x,x-telemetryd-token=ab.cd'
    >>> add_header("X-Telemetryd-Token=old", "x-telemetryd-token", "ab.cd")
    'X-Telemetryd-Token=old'
    """
    items = [item for item in (existing or "").split(",") if item.strip()]
    if any(item.split("=", 1)[0].strip().lower() == name for item in items):
        return ",".join(items)
    return ",".join([*items, f"{name}={quote(value, safe='.')}"])


def node_heap_options(existing: str | None, heap_dir: str) -> str:
    """``NODE_OPTIONS`` with the heap-snapshot signal and folder appended (never replaced;
    last, so ours win over the same flags earlier in the user's value).

    >>> node_heap_options("--max-old-space-size=512", "/s/heap")
    '--max-old-space-size=512 --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/s/heap'
    """
    extra = heap_flags(heap_dir)
    return f"{existing} {extra}" if existing and existing.strip() else extra


def child_environment(
    parent: Mapping[str, str], endpoint: str | None, pid: int, wrap_id: str,
    heap_dir: str | None = None, token: str | None = None,
) -> dict[str, str]:
    """The child's environment.

    >>> env = child_environment({"OTEL_LOGS_EXPORTER": "none"}, "http://127.0.0.1:1", 5, "w1")
    >>> env["OTEL_LOGS_EXPORTER"], env["OTEL_METRICS_EXPORTER"], env["OTEL_RESOURCE_ATTRIBUTES"]
    ('none', 'otlp', 'process.pid=5,telemetryd.wrap_id=w1')
    >>> "OTEL_METRICS_EXPORTER" in child_environment({}, None, 5, "w1")
    False
    >>> mine = child_environment({}, "http://127.0.0.1:1", 5, "w1", token="w1.ab")
    >>> mine["OTEL_EXPORTER_OTLP_HEADERS"]
    'x-telemetryd-token=w1.ab'
    >>> theirs = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example"}
    >>> "OTEL_EXPORTER_OTLP_HEADERS" in child_environment(theirs, "http://127.0.0.1:1", 5,
    ...                                                   "w1", token="w1.ab")
    False
    """
    env = dict(parent)
    if endpoint is not None:
        for key, value in telemetry_defaults(endpoint).items():
            env.setdefault(key, value)
        # The headers variable is read by every OpenTelemetry exporter of the child
        # (Gemini CLI's too): only when the OTLP endpoint itself is ours.
        if token is not None and env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == endpoint:
            env["OTEL_EXPORTER_OTLP_HEADERS"] = add_header(
                parent.get("OTEL_EXPORTER_OTLP_HEADERS"), TOKEN_HEADER, token)
    env["OTEL_RESOURCE_ATTRIBUTES"] = add_resource_attributes(
        parent.get("OTEL_RESOURCE_ATTRIBUTES"),
        {"process.pid": str(pid), WRAP_ID_ATTRIBUTE: wrap_id},
    )
    env["TELEMETRYD_WRAP_ID"] = wrap_id
    if heap_dir is not None:
        env["NODE_OPTIONS"] = node_heap_options(parent.get("NODE_OPTIONS"), heap_dir)
    return env
