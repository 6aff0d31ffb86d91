"""The configuration reference, generated from the declarations in ``schema.py`` (the
prose around the tables is ``prose.py``'s).

``python -m daemon.config.reference > docs/configuration.md`` writes it; a test fails when
the checked-in file differs from ``reference()``, so the docs cannot drift from the keys.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from daemon.config.keys import Key, Kind, ShareOfRam, flattened, keys_of, sections
from daemon.config.reference.prose import INTRO, OUTRO
from daemon.config.schema import Config

_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))
_SPANS = (("d", 86400.0), ("h", 3600.0), ("m", 60.0))


def bytes_text(value: float) -> str:
    """A byte count in the largest binary unit that divides it.

    >>> bytes_text(64 * 1024**2), bytes_text(1000), bytes_text(1 << 50)
    ('64MiB', '1000B', '1024TiB')
    """
    for unit, scale in _UNITS:
        if value >= scale and value % scale == 0:
            return f"{int(value // scale)}{unit}"
    return f"{int(value)}B"


def seconds_text(value: float) -> str:
    """Seconds in the largest unit that divides them.

    >>> seconds_text(600.0), seconds_text(0.001), seconds_text(365 * 86400.0)
    ('10m', '0.001s', '365d')
    """
    for unit, scale in _SPANS:
        if value >= scale and value % scale == 0:
            return f"{value / scale:g}{unit}"
    return f"{value:g}s"


def _value(kind: Kind, value: Any) -> str:
    if kind is Kind.SIZE:
        return bytes_text(value)
    if kind is Kind.DURATION:
        return seconds_text(value)
    if kind is Kind.FLAG:
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return f'"{value}"'


def _default(key: Key, value: Any) -> str:
    if key.default_text is not None:
        return key.default_text
    if key.default_from is not None:
        return f"`{key.default_from}`"
    if key.ram_default is not None:
        return f"{ShareOfRam(key.ram_default.percent)} of RAM"
    if value is dataclasses.MISSING:
        return "*required*"
    if value is None or value == ():
        return "none"
    if key.kind is Kind.LISTEN:
        return str(value)
    return f"`{_value(key.kind, value)}`"


def _range(key: Key) -> str:
    if key.choices is not None:
        return ", ".join(f"`{choice}`" if key.kind is Kind.FLAG else f'`"{choice}"`'
                         for choice in key.choices)
    assert key.range is not None, key
    low, high = key.range
    items = {Kind.TEXT: "characters", Kind.PATH: "characters", Kind.SECRET: "characters",
             Kind.NAMES: "names", Kind.SELECTOR: "characters", Kind.ACTIONS: "actions"}
    if key.kind in items:
        return f"up to {high:,.0f} {items[key.kind]}"
    if key.kind is Kind.LISTEN:
        return f"port {low:g} to {high:g}"
    return f"{_value(key.kind, low)} to {_value(key.kind, high)}"


def _rows(cls: type, default: Any, only: tuple[str, ...] | None = None) -> list[str]:
    keys = dict(keys_of(cls))
    spread = {name: (inner, how) for name, inner, how in flattened(cls)}
    rows: list[str] = []
    for field in dataclasses.fields(cls):
        value = getattr(default, field.name) if default is not None else field.default
        if field.name in spread:
            inner, how = spread[field.name]
            rows += _rows(inner, value, how.keys)
            continue
        key = keys.get(field.name)
        if key is None or (only is not None and key.toml not in only):
            continue
        if key.kind is Kind.LISTEN and default is not None:
            value = f"`\"{default.host}:{default.port}\"`"
        rows.append(f"| `{key.toml}` | {key.kind.value} | {_default(key, value)} | "
                    f"{_range(key)} | {key.doc} |")
    return rows


def reference() -> str:
    """The whole reference, as Markdown."""
    parts = [INTRO]
    for name, table in sections(Config):
        heading = f"[[{table.toml}]]" if table.array else f"[{table.toml}]"
        default = next(f.default for f in dataclasses.fields(Config) if f.name == name)
        instance = None if table.array or default is dataclasses.MISSING else default
        parts.append(f"### `{heading}`\n\n{table.doc}\n")
        parts.append("| Key | Kind | Default | Range | What it does |\n|---|---|---|---|---|")
        parts.append("\n".join(_rows(table.settings, instance)) + "\n")
    parts.append(OUTRO)
    return "\n".join(parts)

