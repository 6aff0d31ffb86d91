"""The effective config for people and scripts: what ``check-config`` prints (never a DSN key)."""

from __future__ import annotations

import signal
from typing import Any

from crash_reports.event.humanize import is_unsafe_char
from daemon.config.schema import Config, ExecAction, ListenSettings, SignalAction, WatchAction


def describe(config: Config) -> dict[str, Any]:
    """The effective config as plain data, under the TOML keys (sizes in bytes, no DSN key).

    ``check-config`` prints it as TOML that parses back to the same config.
    """
    from crash_reports.delivery.dsn import redacted

    daemon = config.daemon
    return {
        "source": config.source,
        "daemon": {
            "interval": daemon.interval_seconds,
            "state_dir": str(daemon.state_dir),
            "log_format": daemon.log_format,
            "log_level": daemon.log_level,
            "history_samples": daemon.history_samples,
            "trend_window": daemon.trend_window_seconds,
        },
        "watch": [
            {
                "name": w.name,
                "process_name": (w.process_names[0] if len(w.process_names) == 1
                                 else list(w.process_names) or None),
                "exe": w.exe.pattern if w.exe else None,
                "interpreter_cmdline": (w.interpreter_cmdline.pattern
                                        if w.interpreter_cmdline else None),
                "cmdline": w.cmdline.pattern if w.cmdline else None,
                "exclude_exe": w.exclude_exe.pattern if w.exclude_exe else None,
                "exclude_cmdline": w.exclude_cmdline.pattern if w.exclude_cmdline else None,
                "pid": w.pid,
                "pidfile": str(w.pidfile) if w.pidfile else None,
                "user": w.user,
                "include_children": w.include_children,
                "rss_warning": w.rss_warning_bytes,
                "rss_critical": w.rss_critical_bytes,
                "cpu_warning": w.cpu_warning_percent,
                "cpu_critical": w.cpu_critical_percent,
                "sustained": w.sustained,
                "cpu_sustained": w.cpu_sustained,
                "cooldown": w.cooldown_seconds,
                "orphans_warning": w.orphans_warning,
                "orphans_rss": w.orphans_rss_bytes,
                "reap_orphans": w.reap_orphans,
                "reap_grace": w.reap_grace_seconds,
                "evidence_node_heap": w.evidence_node_heap,
                **{key: [action_table(action) for action in getattr(w, key)] or None
                   for key in ("on_warning", "on_critical", "on_exit_under_pressure")},
            }
            for w in config.watches
        ],
        "sentry": {
            # Shown without its key, so it cannot be pasted back as is.
            "dsn_redacted": redacted(config.sentry.dsn) if config.sentry.dsn else None,
            "environment": config.sentry.environment,
            "flush_interval": config.sentry.flush_interval_seconds,
            "timeout": config.sentry.timeout_seconds,
        },
        "spool": {
            "max_reports": config.spool.max_reports,
            "max_bytes": config.spool.max_bytes,
            "max_age_days": config.spool.max_age_days,
        },
        "otlp": {
            "enabled": config.otlp.listen.enabled,
            "listen": listen_text(config.otlp.listen),
            "max_body_bytes": config.otlp.max_body_bytes,
            "queue_size": config.otlp.queue_size,
            "max_series_per_metric": config.otlp.max_series_per_metric,
            "retention_days": config.otlp.retention_days,
            "retention_bytes": config.otlp.retention_bytes,
            "store_content": config.otlp.store_content,
            "max_decompressed_bytes": config.otlp.max_decompressed_bytes,
            "max_inflight_bytes": config.otlp.max_inflight_bytes,
            "max_header_bytes": config.otlp.max_header_bytes,
            "max_items_per_request": config.otlp.max_items_per_request,
            "max_connections": config.otlp.max_connections,
            "read_timeout": config.otlp.read_timeout_seconds,
            "keepalive_timeout": config.otlp.keepalive_timeout_seconds,
            "decode_concurrency": config.otlp.decode_concurrency,
            "max_queued_records": config.otlp.max_queued_records,
            "max_metrics": config.otlp.max_metrics,
            "max_series": config.otlp.max_series,
            "max_agents": config.otlp.max_agents,
            "max_models": config.otlp.max_models,
            "max_tools": config.otlp.max_tools,
            "max_sessions": config.otlp.max_sessions,
            "series_idle": config.otlp.series_idle_seconds,
            "retention_check_interval": config.otlp.retention_check_seconds,
            "max_attributes": config.otlp.max_attributes,
            "max_attribute_key_bytes": config.otlp.max_attribute_key_bytes,
            "max_attribute_value_bytes": config.otlp.max_attribute_value_bytes,
            "max_stored_string_bytes": config.otlp.max_stored_string_bytes,
            "max_series_key_bytes": config.otlp.max_series_key_bytes,
            "max_series_bytes": config.otlp.max_series_bytes,
            "max_queued_bytes": config.otlp.max_queued_bytes,
            "max_messages_per_request": config.otlp.max_messages_per_request,
        },
        "metrics": {
            "enabled": config.metrics.enabled,
            "listen": listen_text(config.metrics),
            "max_connections": config.metrics.max_connections,
            "read_timeout": config.metrics.read_timeout_seconds,
            "keepalive_timeout": config.metrics.keepalive_timeout_seconds,
            "max_header_bytes": config.metrics.max_header_bytes,
        },
        "budget": [
            {"agent": b.agent, "daily_usd": b.daily_usd, "monthly_usd": b.monthly_usd,
             "session_usd": b.session_usd}
            for b in config.budgets
        ],
    }


def action_table(action: WatchAction) -> dict[str, Any]:
    """An action as the inline table that configures it.

    >>> action_table(SignalAction(15, 30.0)), action_table(ExecAction(("a",), 10.0))
    ({'signal': 'SIGTERM', 'grace': 30.0}, {'exec': ['a'], 'timeout': 10.0})
    """
    if isinstance(action, ExecAction):
        return {"exec": list(action.argv), "timeout": action.timeout_seconds}
    if isinstance(action, SignalAction):
        table: dict[str, Any] = {"signal": signal.Signals(action.signal).name}
        if action.grace_seconds is not None:
            table["grace"] = action.grace_seconds
        return table
    return {"notify": True}


def listen_text(listen: ListenSettings) -> str:
    """"host:port", with an IPv6 host in brackets.

    >>> listen_text(ListenSettings(True, "::1", 4318))
    '[::1]:4318'
    """
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    return f"{host}:{listen.port}"


def toml_string(text: str) -> str:
    """A TOML basic string for ``text``, any Unicode: quotes, backslashes and every control
    or bidi character escaped; everything else (an emoji too) as itself, never as the
    surrogate pairs ``json.dumps`` would write, which TOML refuses.

    >>> print(toml_string('a"b 🤖' + chr(27)))
    "a\\"b 🤖\\u001b"
    """
    pieces = ['"']
    for char in text:
        if char in '"\\':
            pieces.append("\\" + char)
        elif is_unsafe_char(char):
            pieces.append(f"\\u{ord(char):04x}")
        else:
            pieces.append(char)
    pieces.append('"')
    return "".join(pieces)


def as_toml(described: dict[str, Any]) -> str:
    """``describe``'s output as TOML people can paste from (the DSN as a comment, keyless)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return toml_string(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(item) for item in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(item)}" for k, item in v.items()) + " }"
        return str(v)

    for section, content in described.items():
        if section == "source":
            continue
        tables = content if isinstance(content, list) else [content]
        for table in tables:
            header = f"[[{section}]]" if isinstance(content, list) else f"[{section}]"
            lines.append(header)
            for key, item in table.items():
                if key == "dsn_redacted":
                    if item is not None:
                        lines.append(f"# dsn = {value(item)}  (key hidden)")
                elif item is not None:
                    lines.append(f"{key} = {value(item)}")
            lines.append("")
    return "\n".join(lines)
