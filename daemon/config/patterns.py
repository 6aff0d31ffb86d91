"""Command-line patterns matched in linear time (RE2), so no watch can stall a tick.

Python's ``re`` backtracks: ``(a+)+$`` against 34 ``a``s and a ``!`` takes longer than the
age of the universe, on the tick thread.  RE2 (google-re2, a well-kept binding of Google's
engine) guarantees time linear in the text and refuses the constructs that need
backtracking (backreferences, lookarounds), so such a pattern is a config error instead.
"""

from __future__ import annotations

from typing import Any

import re2  # type: ignore[import-untyped]

MAX_PATTERN_CHARS = 4096
_MAX_PROGRAM_BYTES = 8 << 20


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # errors become config errors, not lines on stderr
    options.max_mem = _MAX_PROGRAM_BYTES
    return options


class LinearPattern:
    """A compiled RE2 pattern with the one method selection needs.

    >>> LinearPattern(r"(^|/)claude( |$)").search("/usr/bin/claude --resume")
    True
    >>> LinearPattern("(a+)+$").search("a" * 34 + "!")
    False
    """

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        """Compile ``pattern``; ValueError with a reason if RE2 cannot take it."""
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ValueError(f"longer than {MAX_PATTERN_CHARS} characters")
        try:
            self._compiled = re2.compile(pattern, _options())
        except re2.error as exc:
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            raise ValueError(f"{reason} (patterns use RE2 syntax: no backreferences or "
                             "lookarounds, so matching time stays linear)") from None
        self.pattern = pattern

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in ``text`` (linear in its length)."""
        return self._compiled.search(text) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinearPattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"LinearPattern({self.pattern!r})"
