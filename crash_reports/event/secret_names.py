"""Which names announce a secret: flags, ``KEY=`` names, headers, query and JSON keys (pure).

A name announces a secret when it holds a secret word (``key``, ``token``, ``passw``,
``secret``, ``auth``, ``webhook``, ...), unless it only describes one: its last word says
it is an identifier, a location or a setting (``--session-id``, ``SharedAccessKeyName``,
``--token-url``, ``--password-store``, ``apiKeyHelper``), or it is a boolean switch
(``--no-session``).  A webhook's URL is its credential, so ``SLACK_WEBHOOK_URL`` stays secret.
Counting names (``--max-tokens``, ``--token-limit``) keep a plain number as their value.

Every pattern here is linear: the name is searched once, then split into words in code.
"""

from __future__ import annotations

import re

_SECRET_WORD = (
    r"key|token|secret|passw|passphrase|pwd|auth|credential|cookie|session|bearer|dsn"  # noqa: S105
    r"|signature|private|webhook|passin|passout|storepass|keypass|bindpw"
    r"|(?<![a-z])pass(?![a-z])|(?<![a-z])pw(?![a-z])|(?<![a-z])jwt(?![a-z])"
    r"|(?<![a-z])t?otp(?![a-z])|(?<![a-z])mfa(?![a-z])|(?<![a-z])sig(?![a-z])"
)
SECRET_NAME = re.compile(_SECRET_WORD, re.I)
# Words of a name: ``X_API_KEY`` -> x, api, key; ``apiKeyHelper`` -> api, key, helper.
# Only the first and last words matter, each read from at most ``_END_CHARS`` characters
# (the pattern backtracks within a run of capitals, so a long name is not given it whole).
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_END_CHARS = 64
# A last word that makes the name describe a secret rather than hold one.
_DESCRIBES = frozenset({
    "id", "ids", "name", "names", "url", "uri", "endpoint", "host", "helper", "type", "mode",
    "method", "scheme", "format", "prompt", "store", "env", "var", "command", "cmd", "ttl",
    "timeout", "expiry", "expires", "duration", "lifetime", "algorithm", "version", "policy",
    "provider", "region", "profile",
})
_SWITCH_FIRST = frozenset({"no", "without", "disable", "skip"})
_COUNT_FIRST = frozenset({"max", "min", "num"})
_COUNT_LAST = frozenset({"tokens", "limit", "count", "budget", "size", "length"})
_NUMBER = re.compile(r"[0-9]{1,12}")


def _ends(name: str) -> tuple[str, str] | None:
    """The first and last words of ``name``, lower case (None when it has no word)."""
    first = _WORDS.search(name[:_END_CHARS])
    last = _WORDS.findall(name[-_END_CHARS:])
    if first is None or not last:
        return None
    return first.group().lower(), last[-1].lower()


def names_secret(name: str) -> bool:
    """Whether a flag, key or header called ``name`` carries a secret as its value.

    >>> [names_secret(n) for n in ("--api-key", "GH_TOKEN", "_authToken", "X-Auth-Token")]
    [True, True, True, True]
    >>> [names_secret(n) for n in ("--session-id", "--no-session", "--token-url", "--model")]
    [False, False, False, False]
    >>> names_secret("SLACK_WEBHOOK_URL"), names_secret("SharedAccessKeyName")
    (True, False)
    """
    if SECRET_NAME.search(name) is None:
        return False
    ends = _ends(name)
    if ends is None:
        return True
    first, last = ends
    if first in _SWITCH_FIRST:
        return False
    return not (last in _DESCRIBES and not (
        last in ("url", "uri", "endpoint") and "webhook" in name.lower()))


def counts(name: str) -> bool:
    """Whether ``name`` counts something (``--max-tokens``), so a plain number is kept.

    >>> counts("--max-thinking-tokens"), counts("TOKEN_LIMIT"), counts("--token")
    (True, True, False)
    """
    ends = _ends(name)
    return ends is not None and (ends[0] in _COUNT_FIRST or ends[1] in _COUNT_LAST)


def keeps_value(name: str, value: str) -> bool:
    """Whether the value of a secret-named ``name`` may stay: a number after a counting name.

    >>> keeps_value("--max-tokens", "4096"), keeps_value("--max-tokens", "sk-1"), keeps_value(
    ...     "--otp", "123456")
    (True, False, False)
    """
    return counts(name) and _NUMBER.fullmatch(value) is not None
