"""How a config key is declared: one dataclass field carrying its ``Key`` in its metadata.

``schema.py`` declares every key with one of the helpers below (``count``, ``size``,
``duration``...): the field's name and type, its default, its range or choices and a
line of documentation, together. A helper cannot be called without a range (or choices),
so a key cannot exist without one. The parser (``reader.py``), ``check-config``
(``render.py``) and the reference (``reference.py``, docs/configuration.md) all read the
declarations through ``keys_of``; nothing else lists keys. Pure, no imports of the daemon.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Example:
...     tries: int = count(3, range=(1, 10), doc="How often.")
>>> [(name, key.toml, key.range) for name, key in keys_of(Example)]
[('tries', 'tries', (1, 10))]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

_MISSING: Any = dataclasses.MISSING
DAY = 86400.0
TIB = 1 << 40
TEXT_CHARS = (1, 4096)  # the range of a free-form string, in characters


class Kind(Enum):
    """How a key is spelled in the file, read and shown; the value names it in the docs."""

    COUNT = "integer"
    NUMBER = "number"
    SIZE = "size"  # bytes, "512MiB", or (where ``ram_default`` is set) "25%" of RAM
    DURATION = "duration"  # seconds, "90s", "5m", "24h", "7d"
    FLAG = "boolean"
    CHOICE = "choice"  # one of ``choices``
    TEXT = "string"
    PATH = "path"  # a string, "~" expanded
    SECRET = "secret"  # noqa: S105 (a kind: a string shown without its key)
    NAMES = "name or array of names"
    SELECTOR = "pattern or array of patterns"  # RE2-safe regular expressions
    ACTIONS = "array of actions"
    LISTEN = '"host:port"'  # fills the fields ``host`` and ``port``


@dataclass(frozen=True)
class ShareOfRam:
    """A size given as a share of the machine's RAM; the parser turns it into bytes once.

    Its text is how the file spells it, and what ``parse_size`` reads:

    >>> str(ShareOfRam(15.0))
    '15%'
    """

    percent: float

    def __str__(self) -> str:
        return f"{self.percent:g}%"


@dataclass(frozen=True)
class Key:
    """One key: its TOML name, kind, bounds (inclusive; seconds, bytes, characters or
    items by kind) or choices, and the line the reference shows."""

    kind: Kind
    doc: str
    toml: str = ""  # filled by ``keys_of`` with the field name when not given
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    ram_default: ShareOfRam | None = None  # the default, when it is a share of RAM
    default_from: str | None = None  # the default is this other field's value
    default_text: str | None = None  # the default as the docs say it, when computed
    minimum_int: int = 1  # a count below it: "expected an integer >= N"


@dataclass(frozen=True)
class Flatten:
    """A field holding a dataclass whose keys sit directly in the parent's table; only
    ``keys`` (TOML names) are read from the file, the others stay at the default."""

    keys: tuple[str, ...]


def _field(default: Any, key: Key) -> Any:
    return dataclasses.field(default=default, metadata={"key": key})


def count(default: int | None = _MISSING, *, range: tuple[int, int], doc: str, toml: str = "",
          default_from: str | None = None, minimum: int = 1) -> Any:
    """An integer key."""
    return _field(default, Key(Kind.COUNT, doc, toml, range, default_from=default_from,
                               minimum_int=minimum))


def number(default: float | None = _MISSING, *, range: tuple[float, float], doc: str,
           toml: str = "") -> Any:
    """A positive number key (a float)."""
    return _field(default, Key(Kind.NUMBER, doc, toml, range))


def size(default: int | None = _MISSING, *, range: tuple[int, int], doc: str, toml: str = "",
         ram: ShareOfRam | None = None) -> Any:
    """A size in bytes; with ``ram`` a share of RAM is allowed and is the default."""
    return _field(default, Key(Kind.SIZE, doc, toml, range, ram_default=ram))


def duration(default: float = _MISSING, *, range: tuple[float, float], doc: str,
             toml: str = "") -> Any:
    """A duration, held in seconds."""
    return _field(default, Key(Kind.DURATION, doc, toml, range))


def flag(default: bool = _MISSING, *, doc: str, toml: str = "") -> Any:
    """A boolean key (its choices are true and false)."""
    return _field(default, Key(Kind.FLAG, doc, toml, choices=("true", "false")))


def choice(default: str, *, choices: tuple[str, ...], doc: str, toml: str = "") -> Any:
    """A string that is one of ``choices``."""
    return _field(default, Key(Kind.CHOICE, doc, toml, choices=choices))


def text(default: str | None = _MISSING, *, doc: str, kind: Kind = Kind.TEXT, toml: str = "",
         range: tuple[int, int] = TEXT_CHARS, default_text: str | None = None) -> Any:
    """A string key (``kind`` TEXT, PATH or SECRET), bounded in characters."""
    return _field(default, Key(kind, doc, toml, range, default_text=default_text))


def listed(default: Any = _MISSING, *, kind: Kind, range: tuple[int, int], doc: str,
           toml: str = "") -> Any:
    """A key with a reader of its own (NAMES, SELECTOR, ACTIONS, LISTEN); ``range`` bounds
    its items, pattern characters or port."""
    return _field(default, Key(kind, doc, toml, range))


def flatten(default: Any, *, keys: tuple[str, ...]) -> Any:
    """A nested dataclass (e.g. ``WireLimits``) whose ``keys`` sit in the parent's table."""
    return dataclasses.field(default=default, metadata={"flatten": Flatten(keys)})


def part_of(default: Any = _MISSING) -> Any:
    """A field filled by another key's reader (``port``, read with ``listen``)."""
    return dataclasses.field(default=default, metadata={"part_of": True})


def keys_of(cls: type) -> tuple[tuple[str, Key], ...]:
    """The declared keys of a settings class, as (field name, Key), in field order;
    flattened dataclasses are not expanded (see ``flattened``)."""
    found = _KEYS.get(cls)
    if found is None:
        found = _KEYS[cls] = tuple(
            (field.name, dataclasses.replace(key, toml=key.toml or field.name))
            for field in dataclasses.fields(cls)
            if (key := field.metadata.get("key")) is not None)
    return found


_KEYS: dict[type, tuple[tuple[str, Key], ...]] = {}


def flattened(cls: type) -> Iterator[tuple[str, type, Flatten]]:
    """The fields of ``cls`` whose dataclass's keys sit in ``cls``'s table."""
    for field in dataclasses.fields(cls):
        spread = field.metadata.get("flatten")
        if spread is not None:
            yield field.name, type(field.default), spread


def undeclared(cls: type) -> list[str]:
    """Fields of a settings class that are neither a key, a part of one nor flattened."""
    return [f.name for f in dataclasses.fields(cls)
            if not {"key", "flatten", "part_of"} & set(f.metadata)]


def field_default(cls: type, name: str) -> Any:
    """A field's default (``dataclasses.MISSING`` when it has none)."""
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = _DEFAULTS[cls] = {f.name: f.default for f in dataclasses.fields(cls)}
    return defaults[name]


_DEFAULTS: dict[type, dict[str, Any]] = {}


@dataclass(frozen=True)
class Section:
    """A field of ``Config`` that is a table of the file (``[name]``, or ``[[name]]`` when
    ``array``) read into ``settings``."""

    toml: str
    settings: type
    array: bool
    doc: str


def section(default: Any = _MISSING, *, toml: str, settings: type, doc: str,
            array: bool = False) -> Any:
    """A table of the file, held by a field of ``Config``."""
    return dataclasses.field(default=default,
                             metadata={"section": Section(toml, settings, array, doc)})


def sections(cls: type) -> Iterator[tuple[str, Section]]:
    """The tables of the file, as (field name of ``Config``, Section), in file order."""
    for field in dataclasses.fields(cls):
        found = field.metadata.get("section")
        if found is not None:
            yield field.name, found
