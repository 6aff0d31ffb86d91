"""The effective config for people and scripts: what ``check-config`` prints (never a DSN key)."""

from __future__ import annotations

import dataclasses
import signal
from typing import Any

from crash_reports.common.humanize import is_unsafe_char
from daemon.config.keys import Kind, flattened, keys_of, sections
from daemon.config.schema import Config, ExecAction, ListenSettings, SignalAction, WatchAction


def describe(config: Config) -> dict[str, Any]:
    """The effective config as plain data, under the TOML keys (sizes in bytes, durations in
    seconds, no DSN key), table by table as ``schema.py`` declares them.

    ``check-config`` prints it as TOML that parses back to the same config.
    """
    described: dict[str, Any] = {"source": config.source}
    for name, table in sections(Config):
        value = getattr(config, name)
        described[table.toml] = ([describe_settings(item) for item in value] if table.array
                                 else describe_settings(value))
    return described


def describe_settings(settings: Any) -> dict[str, Any]:
    """One table's keys and values (None for a key without a value)."""
    shown: dict[str, Any] = {}
    cls = type(settings)
    keys = dict(keys_of(cls))
    spread = {name: how for name, _, how in flattened(cls)}
    for field in dataclasses.fields(cls):
        value = getattr(settings, field.name)
        key = keys.get(field.name)
        if field.name in spread:
            inner = describe_settings(value)
            shown.update((toml, item) for toml, item in inner.items()
                         if toml in spread[field.name].keys)
        elif key is None:
            continue
        elif key.kind is Kind.SECRET:
            from crash_reports.delivery.dsn import redacted

            # Shown without its key, so it cannot be pasted back as is.
            shown[f"{key.toml}_redacted"] = redacted(value) if value else None
        elif key.kind is Kind.LISTEN:
            shown[key.toml] = listen_text(settings)
        else:
            shown[key.toml] = _shown(key.kind, value)
    return shown


def _shown(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind is Kind.SELECTOR:
        return value.pattern
    if kind is Kind.NAMES:
        return value[0] if len(value) == 1 else list(value) or None
    if kind is Kind.ACTIONS:
        return [action_table(action) for action in value] or None
    if kind is Kind.PATH:
        return str(value)
    return value


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
                if key.endswith("_redacted"):
                    if item is not None:
                        lines.append(f"# {key.removesuffix('_redacted')} = {value(item)}"
                                     "  (key hidden)")
                elif item is not None:
                    lines.append(f"{key} = {value(item)}")
            lines.append("")
    return "\n".join(lines)
