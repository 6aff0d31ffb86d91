"""Strings cut to a number of UTF-8 bytes, marked with a digest of the whole (pure).

Every string telemetryd keeps from a client (attribute keys and values, series keys, names a
record stores) has a cap in bytes. A plain cut would let two values that share a beginning
become one, so a hostile ``model`` or series could merge its figures into a real one; the
cut keeps a digest of the whole value instead. A value within its cap is never changed, and
a cut value ends with ``...#`` and 16 hex digits, a shape no value within its cap is turned
into, so a cut value only meets another cut value with the same 64-bit digest.
"""

from __future__ import annotations

import hashlib

MARK = "...#"  # ASCII, so a cut ASCII value stays 1 byte a character in memory
DIGEST_HEX = 16
# The smallest cap that leaves room for the mark and the digest.
MIN_BYTES = len(MARK) + DIGEST_HEX


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (no copy for ASCII text).

    >>> utf8_size("abc"), utf8_size("é")
    (3, 2)
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def bounded(text: str, max_bytes: int) -> str:
    """``text`` itself when it fits ``max_bytes``, else its beginning, the mark and a digest
    of all of it, ``max_bytes`` at most (``max_bytes`` >= ``MIN_BYTES``).

    >>> bounded("claude-opus-4-8", 32)
    'claude-opus-4-8'
    >>> cut = bounded("x" * 40 + "A", 32); cut, len(cut.encode())
    ('xxxxxxxxxxxx...#8b6b89f28ed5b31e', 32)
    >>> bounded("x" * 40 + "B", 32) == cut
    False
    """
    if text.isascii():
        if len(text) <= max_bytes:
            return text
        data = text.encode("ascii")
    else:
        if len(text) * 4 <= max_bytes:
            return text
        data = text.encode("utf-8", "surrogatepass")
        if len(data) <= max_bytes:
            return text
    digest = hashlib.blake2b(data, digest_size=DIGEST_HEX // 2).hexdigest()
    head = data[: max(0, max_bytes - MIN_BYTES)].decode("utf-8", "ignore")
    return f"{head}{MARK}{digest}"
