"""The one redaction function: credentials never leave in a report."""

from __future__ import annotations

import re
from collections.abc import Sequence

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"key|token|secret|passw|pwd|auth|credential|cookie|session", re.I)
_FLAG = re.compile(r"^(--?[A-Za-z0-9][A-Za-z0-9_.-]*)(=(.*))?$", re.S)
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$", re.S)
_TOKEN_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),  # OpenAI / Anthropic style keys
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{16,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),  # JWTs
]
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]+", re.I)
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.\-]*://[^/\s:@]*):[^@\s/]+@", re.I)
_WHITESPACE = re.compile(r"(\s+)")


def redact_text(text: str) -> str:
    """Replace token-shaped substrings, bearer credentials and URL passwords.

    >>> redact_text("-H 'Authorization: Bearer abc.def' https://u:pw@host/x sk-ant-api03-XYZ1")
    "-H 'Authorization: Bearer [redacted]' https://u:[redacted]@host/x [redacted]"
    """
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact_args(args: Sequence[str]) -> list[str]:
    """Redact a command line, argument by argument.

    Values of flags whose name looks secret (``--api-key X``, ``--token=X``), values of
    ``NAME=value`` where NAME looks secret, and token-shaped strings anywhere.

    >>> redact_args(["agent", "--api-key", "abc", "--token=xyz", "--model", "opus"])
    ['agent', '--api-key', '[redacted]', '--token=[redacted]', '--model', 'opus']
    >>> redact_args(["env", "OPENAI_API_KEY=abc", "PATH=/bin", "run"])
    ['env', 'OPENAI_API_KEY=[redacted]', 'PATH=/bin', 'run']
    """
    result: list[str] = []
    redact_next = False
    for arg in args:
        if redact_next and not arg.startswith("-"):
            result.append(REDACTED)
            redact_next = False
            continue
        redact_next = False
        flag = _FLAG.match(arg)
        if flag and _SECRET_NAME.search(flag.group(1)):
            if flag.group(2) is not None:
                result.append(f"{flag.group(1)}={REDACTED}")
            else:
                result.append(arg)
                redact_next = True
            continue
        assignment = _ASSIGNMENT.match(arg)
        if assignment and _SECRET_NAME.search(assignment.group(1)):
            result.append(f"{assignment.group(1)}={REDACTED}")
            continue
        result.append(_redact_words(arg) if _WHITESPACE.search(arg) else redact_text(arg))
    return result


def _redact_words(text: str) -> str:
    """A whole command in one argument (``sh -c '... --api-key X'``): redact it word by word."""
    parts = _WHITESPACE.split(redact_text(text))
    # Even indexes are words, odd ones the whitespace between them, kept as it was.
    parts[::2] = redact_args(parts[::2])
    return "".join(parts)
