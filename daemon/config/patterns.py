"""Regular expressions from the config file, matched in linear time.

Python's ``re`` backtracks: a quantifier inside a quantified group (``(a+)+``) or a
back-reference takes exponential time on a crafted command line, and even ``.*.*.*x``
takes 36 s on 1,024 characters. Selector patterns are therefore matched with RE2
(google-re2), whose automaton runs in time linear in the text whatever the pattern.
Patterns that only a backtracking engine could run (back-references, look-around) are
refused at load with the key that holds it, and so are the exponential shapes above,
which a selector never needs; the text is bounded too (``MAX_SUBJECT_CHARS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

try:  # Python 3.11+
    import re._parser as sre_parse  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef, unused-ignore]

MAX_PATTERN_CHARS = 1024
MAX_SUBJECT_CHARS = 4096

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}
if hasattr(sre_parse, "POSSESSIVE_REPEAT"):
    _REPEATS.add(sre_parse.POSSESSIVE_REPEAT)


def _has(items: Any, wanted: set[Any]) -> bool:
    """Whether a parsed pattern holds one of the ``wanted`` opcodes at any depth."""
    for op, av in items:
        if op in wanted:
            return True
        if op in _REPEATS and _has(av[2], wanted):
            return True
        if op == sre_parse.SUBPATTERN and _has(av[-1], wanted):
            return True
        if op == sre_parse.BRANCH and any(_has(branch, wanted) for branch in av[1]):
            return True
        if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT) and _has(av[1], wanted):
            return True
    return False


def _has_many(items: Any) -> bool:
    """Whether a parsed pattern holds a quantifier that matches more than once."""
    for op, av in items:
        if _repeats_many(op, av):
            return True
        if op in _REPEATS and _has_many(av[2]):
            return True
        if op == sre_parse.SUBPATTERN and _has_many(av[-1]):
            return True
        if op == sre_parse.BRANCH and any(_has_many(branch) for branch in av[1]):
            return True
    return False


def _repeats_many(op: Any, av: Any) -> bool:
    # "?" and "{0,1}" match at most once: nothing inside them can be retried.
    return op in _REPEATS and av[1] > 1


def _problem(items: Any) -> str | None:
    for op, av in items:
        if op in _REPEATS:
            if _repeats_many(op, av) and _has_many(av[2]):
                return "a quantifier inside a quantified group"
            if _repeats_many(op, av) and _has(av[2], {sre_parse.BRANCH}):
                return "an alternation inside a quantified group"
            inner = _problem(av[2])
            if inner:
                return inner
        elif op == sre_parse.SUBPATTERN:
            inner = _problem(av[-1])
            if inner:
                return inner
        elif op == sre_parse.BRANCH:
            for branch in av[1]:
                inner = _problem(branch)
                if inner:
                    return inner
        elif op in (sre_parse.GROUPREF, sre_parse.GROUPREF_EXISTS):
            return "a back-reference"
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            inner = _problem(av[1])
            if inner:
                return inner
    return None


@dataclass(frozen=True)
class SelectorPattern:
    """A compiled selector pattern: compared by its text, searched with RE2."""

    pattern: str
    compiled: Any = field(compare=False, repr=False)

    def search(self, text: str) -> Any:
        """The first match in ``text`` (None when there is none), in linear time."""
        return self.compiled.search(text)


def compile_bounded(text: str) -> SelectorPattern:
    """Compile a selector pattern, or raise ValueError saying why it is refused.

    >>> compile_bounded(r"/claude/versions/[^/]+$").pattern
    '/claude/versions/[^/]+$'
    >>> compile_bounded(r".*.*.*x").search("a" * 4096) is None
    True
    >>> compile_bounded(r"(a+)+$")
    Traceback (most recent call last):
    ...
    ValueError: refused: a quantifier inside a quantified group can take exponential time
    """
    if len(text) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern longer than {MAX_PATTERN_CHARS} characters")
    try:
        parsed = sre_parse.parse(text)
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    problem = _problem(parsed)
    if problem:
        raise ValueError(f"refused: {problem} can take exponential time")
    import re2  # imported here: commands that never match a selector skip it

    options = re2.Options()
    options.log_errors = False  # the error is ours to report, with its key
    try:
        compiled = re2.compile(text, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"not supported by the linear-time engine (RE2): {reason}") from None
    return SelectorPattern(text, compiled)
