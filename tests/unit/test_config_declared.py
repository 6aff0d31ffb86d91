"""Each config key is declared once (daemon/config/schema.py): parsing, ranges, check-config
and docs/configuration.md all come from that declaration and cannot disagree."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config.errors import ConfigError
from daemon.config.keys import Key, Kind, flattened, keys_of, sections, undeclared
from daemon.config.parse import parse_config, parse_config_text
from daemon.config.reference import reference
from daemon.config.render import as_toml, describe
from daemon.config.schema import Config

MEMORY = 8 * 1024**3
DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
# The least a table needs to be valid; every key is tried on top of it.
BASE: dict[str, Any] = {
    "daemon": {"state_dir": "/tmp/telemetryd-declared"},
    "watch": [{"name": "w", "pid": 1}],
    "budget": [{"agent": "a", "daily_usd": 5.0}],
}


def settings_classes(cls: type) -> Iterator[type]:
    """A settings class and the classes flattened into its table."""
    yield cls
    for _, inner, _ in flattened(cls):
        yield from settings_classes(inner)


def table_keys() -> Iterator[tuple[str, bool, Key]]:
    """(table, is an array of tables, key) for every key of every table, as the file reads it."""
    for _, table in sections(Config):
        for cls in settings_classes(table.settings):
            wanted = None
            for _, inner, how in flattened(table.settings):
                if inner is cls:
                    wanted = how.keys
            for _, key in keys_of(cls):
                if wanted is None or key.toml in wanted:
                    yield table.toml, table.array, key


KEYS = sorted({(table, array, key.toml): key for table, array, key in table_keys()}.items())


def parse_data(data: dict[str, Any]) -> Config:
    """Parse decoded TOML as the daemon would (no environment)."""
    return parse_config(data, "<test>", {}, MEMORY)


def with_key(table: str, array: bool, key: str, value: Any) -> dict[str, Any]:
    """BASE with one key of one table set."""
    data = copy.deepcopy(BASE)
    target = data[table][0] if array else data.setdefault(table, {})
    target[key] = value
    return data


def shown(config: Config, table: str, array: bool, key: str) -> Any:
    """What check-config shows for a key."""
    described = describe(config)[table]
    return (described[0] if array else described).get(key)


def samples(key: Key, default: Any) -> list[Any]:
    """Values to try for a key, in the file's spelling; one of them differs from the default
    and satisfies the rules between keys."""
    if key.kind is Kind.FLAG:
        return [not default]
    if key.kind is Kind.CHOICE:
        return [choice for choice in key.choices or () if choice != default]
    if key.kind in (Kind.TEXT, Kind.PATH):
        return ["/tmp/sample-value"]
    if key.kind is Kind.NAMES:
        return [["one", "two"]]
    if key.kind is Kind.SELECTOR:
        return ["^sample$"]
    if key.kind is Kind.ACTIONS:
        return [[{"notify": True}, {"signal": "SIGTERM", "grace": 30.0}]]
    if key.kind is Kind.LISTEN:
        return ["127.0.0.1:1234"]
    assert key.range is not None
    low, high = key.range
    integral = key.kind in (Kind.COUNT, Kind.SIZE)
    candidates = [] if default is None else [default + 1 if integral else default * 1.5]
    candidates += [low, high, (low + high) // 2 if integral else (low + high) / 2]
    return [int(value) if integral else float(value) for value in candidates]


def test_every_key_of_every_table_has_a_range_or_choices() -> None:
    """No field of a settings class goes undeclared, and no key lacks a range or choices."""
    for _, table in sections(Config):
        for cls in settings_classes(table.settings):
            assert undeclared(cls) == [], cls
            for name, key in keys_of(cls):
                assert (key.range is None) != (key.choices is None), (cls, name)
                assert key.doc, (cls, name)
    assert len(KEYS) > 70  # all of them, not an empty walk


# The DSN is shown without its key on purpose (test_config.py covers it).
SHOWN = [(where, key) for where, key in KEYS if key.kind is not Kind.SECRET]


@pytest.mark.parametrize(("where", "key"), SHOWN,
                         ids=[f"{table}.{name}" for (table, _, name), _ in SHOWN])
def test_every_key_is_read_shown_and_read_back(where: tuple[str, bool, str], key: Key) -> None:
    """Set alone to a value other than its default, a key is parsed, shown by check-config
    and the shown TOML parses back to the same config."""
    table, array, name = where
    default = shown(parse_data(copy.deepcopy(BASE)), table, array, name)
    for value in samples(key, default):
        try:
            config = parse_data(with_key(table, array, name, value))
        except ConfigError:
            continue  # a rule between keys (warning below critical): try the next value
        if shown(config, table, array, name) == default:
            continue
        again = parse_config_text(as_toml(describe(config)), "<test>", {}, MEMORY)
        assert again == config
        return
    pytest.fail(f"no sample of {table}.{name} changed it: {samples(key, default)}")


NUMBERS = [(where, key) for where, key in KEYS
           if key.kind in (Kind.COUNT, Kind.NUMBER, Kind.SIZE, Kind.DURATION)]


@pytest.mark.parametrize(("where", "key"), NUMBERS,
                         ids=[f"{table}.{name}" for (table, _, name), _ in NUMBERS])
def test_every_number_past_its_range_is_refused_with_its_key_path(
        where: tuple[str, bool, str], key: Key) -> None:
    """Just past the top of its declared range, each number is a ConfigError naming it."""
    table, array, name = where
    assert key.range is not None
    high = key.range[1]
    too_big = int(high) + 1 if key.kind in (Kind.COUNT, Kind.SIZE) else high * 2
    with pytest.raises(ConfigError) as caught:
        parse_data(with_key(table, array, name, too_big))
    assert caught.value.key == (f"{table}[0].{name}" if array else f"{table}.{name}")
    assert "must be between" in caught.value.message


@pytest.mark.parametrize("key", ["cooldown", "reap_grace"])
def test_a_hundred_million_days_is_refused_for_every_duration_of_a_watch(key: str) -> None:
    """``reap_grace = "100000000d"`` is refused like ``cooldown`` (it used to be accepted)."""
    with pytest.raises(ConfigError) as caught:
        parse_data(with_key("watch", True, key, "100000000d"))
    assert caught.value.key == f"watch[0].{key}"
    assert "must be between" in caught.value.message


def test_the_checked_in_reference_is_the_generated_one() -> None:
    """docs/configuration.md is what ``python -m daemon.config.reference`` prints: regenerate
    it after changing a declaration."""
    assert DOCS.read_text(encoding="utf-8") == reference()


def test_the_reference_lists_every_key_of_every_table() -> None:
    """Each key appears in its table's section of the reference."""
    text = reference()
    for (table, array, name), _ in KEYS:
        heading = f"### `[[{table}]]`" if array else f"### `[{table}]`"
        section = text.split(heading, 1)[1].split("\n#", 1)[0]
        assert f"| `{name}` |" in section, (table, name)
