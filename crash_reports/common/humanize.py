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


# Control characters (C0 with newline and tab, DEL, C1 with 0x9b CSI), and the invisible
# format characters (Unicode category Cf: bidirectional overrides and marks, zero-width
# spaces and joiners, the BOM, soft hyphen, tags) and line/paragraph separators, which make
# text display other than it reads.  Zero-width joiners go too, so an emoji built from
# several (a family) shows as its parts.
_FORMAT = [0x00AD, *range(0x0600, 0x0606), 0x061C, 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2,
           0x180E, *range(0x200B, 0x2010), 0x2028, 0x2029, *range(0x202A, 0x202F),
           *range(0x2060, 0x2065), *range(0x2066, 0x2070), 0xFEFF, *range(0xFFF9, 0xFFFC),
           0x110BD, 0x110CD, *range(0x13430, 0x13440), *range(0x1BCA0, 0x1BCA4),
           *range(0x1D173, 0x1D17B), 0xE0001, *range(0xE0020, 0xE0080)]
_UNSAFE = [*range(0x00, 0x20), *range(0x7F, 0xA0), *_FORMAT]
_ESCAPES = {code: (f"\\x{code:02x}" if code < 0x100 else
                  f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}") for code in _UNSAFE}
_ESCAPES.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})
_STRAY = {code: text for code, text in _ESCAPES.items() if code not in (ord("\n"), ord("\t"))}


def printable(text: str) -> str:
    """``text`` safe to show on a terminal: every control character and bidi override
    escaped, so a process name or a command line from outside can neither move the
    cursor, recolour, retitle the terminal, nor break a table row.

    The one escaping helper for human-facing output (``status``, ``reports``, ``stats``,
    ``budget``, ``check-config``, ``top`` and the log lines); one ``str.translate`` pass,
    linear in the length.

    >>> printable("evil\\x1b[2J\\nname\\u202e")
    'evil\\\\x1b[2J\\\\nname\\\\u202e'
    >>> printable("claude 🤖"), printable("a\\u200bb\\x9b2J")
    ('claude 🤖', 'a\\\\u200bb\\\\x9b2J')
    """
    return text.translate(_ESCAPES)


def printable_lines(text: str) -> str:
    """Like ``printable`` but keeps newlines and tabs: for whole blocks of output."""
    return text.translate(_STRAY)


def is_unsafe_char(char: str) -> bool:
    """Whether ``printable`` would escape ``char``."""
    return ord(char) in _ESCAPES
