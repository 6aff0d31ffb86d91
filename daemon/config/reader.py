"""Reading one TOML table by its declared keys (``keys.py``): each value checked against
its kind and range, every error a ``ConfigError`` naming the key path. Pure.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.config.actions import parse_actions
from daemon.config.errors import ConfigError
from daemon.config.keys import Key, Kind, ShareOfRam, field_default, flattened, keys_of
from daemon.config.patterns import SelectorPattern, compile_bounded
from daemon.config.quantities import parse_duration, parse_size


class TableReader:
    """A TOML table being read, that knows where it is and which keys were used."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source
        self.used: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def in_range(self, key: str, value: float, bounds: tuple[float, float] | None,
                 shown: object = None) -> None:
        """ConfigError naming the key path if ``value`` is outside ``bounds``."""
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            low, high = (f"{bound:g}" for bound in bounds)
            raise self.error(key, f"must be between {low} and {high}, got "
                             f"{value if shown is None else shown!r}")

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(self.source, self.key_path(key) if key else self.path or None, message)

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def get_str(self, key: str) -> str | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"expected a string, got {type_name(value)}")
        if value is not None and not value.strip():
            raise self.error(key, "is an empty string: give a value, or remove the key "
                             "to use the default")
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {type_name(value)}")
        return value

    def get_number(self, key: str, bounds: tuple[float, float] | None) -> float | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {type_name(value)}")
        if not 0 < value < math.inf:  # also refuses nan and inf
            raise self.error(key, f"expected a positive number, got {value}")
        self.in_range(key, value, bounds)
        return float(value)

    def get_int(self, key: str, bounds: tuple[float, float] | None,
                minimum: int = 1) -> int | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {type_name(value)}")
        if value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value}")
        self.in_range(key, value, bounds)
        return value

    def get_size(self, key: str, default: object, bounds: tuple[float, float] | None,
                 total_memory_bytes: int) -> int | None:
        value = self.raw(key)
        if value is None:
            value = default
        if value is None:
            return None
        try:
            size = parse_size(str(value) if isinstance(value, ShareOfRam) else value,
                              total_memory_bytes)
        except (ValueError, OverflowError) as exc:
            raise self.error(key, str(exc)) from None
        self.in_range(key, size, bounds, value)
        return size

    def get_duration(self, key: str, bounds: tuple[float, float] | None) -> float | None:
        value = self.raw(key)
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except (ValueError, OverflowError) as exc:
            raise self.error(key, str(exc)) from None
        if not 0 < seconds < math.inf:
            raise self.error(key, f"expected a positive duration, got {value!r}")
        self.in_range(key, seconds, bounds, value)
        return seconds

    def reject_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise self.error(unknown[0], f"unknown key (known keys here: {known})")


def type_name(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def read_keys(table: TableReader, cls: type, total_memory_bytes: int,
              default: object = None) -> dict[str, Any]:
    """Every declared key of ``cls`` read from ``table``, by field name; a missing key
    takes ``default``'s value (an instance) or else the field's default (None if it has
    none). Flattened dataclasses are read from the same table."""

    def fallback(name: str) -> Any:
        value = getattr(default, name) if default is not None else field_default(cls, name)
        return None if value is dataclasses.MISSING else value

    values: dict[str, Any] = {}
    for name, key in keys_of(cls):
        if key.kind is Kind.LISTEN:
            values.update(_listen(table, key, fallback(name), fallback("port")))
            continue
        if key.default_from is not None:  # a missing key takes another key's value
            value = _read(table, key, values[key.default_from], total_memory_bytes)
        else:
            value = _read(table, key, fallback(name), total_memory_bytes)
        values[name] = value
    for name, inner, spread in flattened(cls):
        # Read through ``_Only``: a key the table does not take keeps ``inner_default``'s value.
        inner_default = fallback(name)
        inner_values = read_keys(_Only(table, spread.keys), inner, total_memory_bytes,
                                 inner_default)
        values[name] = dataclasses.replace(inner_default, **inner_values)
    return values


class _Only(TableReader):
    """``table`` seen through the keys a flattened dataclass takes from it."""

    def __init__(self, table: TableReader, keys: tuple[str, ...]) -> None:
        super().__init__(table.data, table.path, table.source)
        self.used = table.used  # the parent's: its unknown-key check sees these
        self._keys = keys

    def raw(self, key: str) -> Any:
        return super().raw(key) if key in self._keys else None


def _read(table: TableReader, key: Key, default: Any, total_memory_bytes: int) -> Any:
    name, bounds = key.toml, key.range
    value: Any
    if key.kind is Kind.COUNT:
        value = table.get_int(name, bounds, key.minimum_int)
    elif key.kind is Kind.NUMBER:
        value = table.get_number(name, bounds)
    elif key.kind is Kind.SIZE:
        ram = total_memory_bytes if key.ram_default is not None else 0
        return table.get_size(name, key.ram_default or default, bounds, ram)
    elif key.kind is Kind.DURATION:
        value = table.get_duration(name, bounds)
    elif key.kind is Kind.FLAG:
        return table.get_bool(name, default)
    elif key.kind is Kind.CHOICE:
        value = _choice(table, key)
    elif key.kind is Kind.NAMES:
        names = _names(table, name)
        if bounds is not None and len(names) > bounds[1]:
            raise table.error(name, f"at most {bounds[1]:g} names, got {len(names)}")
        return names
    elif key.kind is Kind.SELECTOR:
        return _pattern(table, name)
    elif key.kind is Kind.ACTIONS:
        return parse_actions(table.raw(name), table.key_path(name), table.source)
    else:  # TEXT, PATH, SECRET
        value = _text(table, key)
    return default if value is None else value


def _text(table: TableReader, key: Key) -> str | Path | None:
    text = table.get_str(key.toml)
    if text is None:
        return None
    if key.range is not None and len(text) > key.range[1]:
        raise table.error(key.toml, f"at most {key.range[1]:g} characters, got {len(text)}")
    if key.kind is not Kind.PATH:
        return text
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~name" of a user that does not exist
        raise table.error(key.toml, f"cannot expand {text!r}: no such user home "
                          "directory") from None


def _choice(table: TableReader, key: Key) -> str | None:
    text = table.get_str(key.toml)
    choices = key.choices or ()
    if text is None:
        return None
    for option in choices:
        if text.lower() == option:
            return option
    expected = ", ".join(f'"{option}"' for option in choices[:-1])
    raise table.error(key.toml, f'expected {expected} or "{choices[-1]}", got {text!r}')


def _listen(table: TableReader, key: Key, host: str, port: int) -> dict[str, Any]:
    text = table.get_str(key.toml)
    example = f"{host}:{port}"
    parsed = parse_listen_address(example if text is None else text)
    if parsed is None:
        raise table.error(key.toml, f'expected "host:port" like "{example}", got {text!r}')
    return {"host": parsed[0], "port": parsed[1]}


def _names(table: TableReader, key: str) -> tuple[str, ...]:
    """A name or an array of names."""
    value = table.raw(key)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
        raise table.error(key, f"expected a name or an array of names, got {type_name(value)}")
    return tuple(items)


def _pattern(table: TableReader, key: str) -> SelectorPattern | None:
    """A selector's regular expression (or an array of them: any may match), refused when
    it could take more than linear time."""
    value = table.raw(key)
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or \
            not all(isinstance(item, str) for item in items):
        raise table.error(key, f"expected a pattern or an array of patterns, "
                               f"got {type_name(value)}")
    text = items[0] if len(items) == 1 else "|".join(f"(?:{item})" for item in items)
    try:
        return compile_bounded(text)
    except ValueError as exc:
        raise table.error(key, str(exc)) from None


def parse_listen_address(text: str) -> tuple[str, int] | None:
    """Split "host:port" or "[::1]:port"; None when it is not one.

    >>> parse_listen_address("127.0.0.1:4318")
    ('127.0.0.1', 4318)
    >>> parse_listen_address("[::1]:9464")
    ('::1', 9464)
    >>> parse_listen_address("nope") is None
    True
    """
    match = re.fullmatch(r"\[([0-9a-fA-F:]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", text.strip())
    if not match:
        return None
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        return None
    return host, port


def is_loopback(host: str) -> bool:
    """Whether a listen host is reachable from this machine only.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
