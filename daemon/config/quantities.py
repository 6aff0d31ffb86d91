"""Parsing sizes, percentages of RAM and durations from config (pure)."""

from __future__ import annotations

import re
from fractions import Fraction

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_MULTIPLIERS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_size(value: object, total_memory_bytes: int) -> int:
    """Turn an int of bytes, a size string or a percent of RAM into bytes.

    Raises ValueError with a message that says what was expected.

    >>> parse_size("1GiB", 0)
    1073741824
    >>> parse_size("1.5 MB", 0)
    1500000
    >>> parse_size(4096, 0)
    4096
    >>> parse_size("25%", 8 * 1024**3)
    2147483648
    >>> parse_size("lots", 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: expected bytes, a size like "512MiB" or "2GB", or a percent of RAM like "25%"; ...
    """
    expected = 'expected bytes, a size like "512MiB" or "2GB", or a percent of RAM like "25%"'
    if isinstance(value, bool):
        raise ValueError(f"{expected}; got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{expected}; got {value!r} (must be positive)")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{expected}; got {value!r}")
    percent = _PERCENT_RE.match(value)
    if percent:
        # Exact arithmetic: 41% of 1,205,800 bytes is 494,378, not 494,377.99...
        fraction = Fraction(percent.group(1)) / 100
        if not 0 < fraction <= 1:
            raise ValueError(f"a percent of RAM must be in (0, 100]; got {value!r}")
        size = int(total_memory_bytes * fraction)
        if size <= 0:
            # A size that is not about RAM (total 0) or too small a share of it.
            raise ValueError(f"{expected}; got {value!r} (a percent of RAM is not"
                             " allowed here or comes to 0 bytes)")
        return size
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"{expected}; got {value!r}")
    unit = (match.group(2) or "B").upper()
    size = int(float(match.group(1)) * _MULTIPLIERS[unit])
    if size <= 0:
        raise ValueError(f"{expected}; got {value!r} (must be positive)")
    return size


def parse_duration(value: object) -> float:
    """Turn seconds (int or float) or a string like "90s", "5m", "24h", "7d" into seconds.

    >>> parse_duration("24h")
    86400.0
    >>> parse_duration(2.5)
    2.5
    """
    if isinstance(value, bool):
        raise ValueError(f'expected seconds or a duration like "5m" or "24h"; got {value!r}')
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "s").lower()]
    raise ValueError(f'expected seconds or a duration like "5m" or "24h"; got {value!r}')
