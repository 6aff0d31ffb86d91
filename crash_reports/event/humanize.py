"""Sizes and durations formatted for people (pure)."""

from __future__ import annotations


def format_bytes(size: float) -> str:
    """Format bytes in binary units.

    >>> format_bytes(3435973837)
    '3.2 GiB'
    >>> format_bytes(512)
    '512 B'
    """
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value = float(size)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """Format a duration compactly.

    >>> format_duration(3725)
    '1h02m'
    >>> format_duration(42)
    '42s'
    """
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
