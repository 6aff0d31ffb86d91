"""Per-agent OTLP tokens: ``telemetryd wrap`` gives one to its child, the receiver checks it.

A token is ``<wrap id>.<MAC>``: HMAC-SHA256 of the wrap id under a secret key kept in the
state dir (``StatePaths.otlp_key``, 0600, made by whichever of the daemon or ``wrap`` needs
it first), truncated to 128 bits. The receiver checks it without any state of its own, so a
child's first export is verified even before the daemon's tick has seen the child. The child
sends it as the header ``x-telemetryd-token`` (``OTEL_EXPORTER_OTLP_HEADERS``). Whoever can
read the state dir or the child's environment (the same user, root) can copy a token: it
keeps other users' processes, web pages and processes that were never given it out.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Literal

from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import read_regular

TOKEN_HEADER = "x-telemetryd-token"  # noqa: S105 (a header name)
TokenState = Literal["absent", "valid", "invalid"]
_KEY_HEX_CHARS = 64
_MAC_HEX_CHARS = 32
_WRAP_ID = re.compile(r"[0-9a-f]{1,64}")


class KeyFileError(OSError):
    """The key file exists but is not a key telemetryd wrote (wrong size or characters)."""


def token_for(key: bytes, wrap_id: str) -> str:
    """The token of one wrapped agent.

    >>> token_for(b"k" * 32, "0a1b")
    '0a1b.e4f0a289101f23bd562f6c28bededc87'
    """
    mac = hmac.new(key, wrap_id.encode(), hashlib.sha256).hexdigest()[:_MAC_HEX_CHARS]
    return f"{wrap_id}.{mac}"


def check_token(key: bytes | None, value: str | None) -> TokenState:
    """Whether a header value is a token made with ``key`` (``absent``: no header, or no
    key to check it with).

    >>> key = b"k" * 32
    >>> check_token(key, token_for(key, "0a1b")), check_token(key, "0a1b.00")
    ('valid', 'invalid')
    >>> check_token(key, None), check_token(None, token_for(key, "0a1b"))
    ('absent', 'absent')
    """
    if not value or key is None:
        return "absent"
    wrap_id, _, mac = value.strip().partition(".")
    if not _WRAP_ID.fullmatch(wrap_id) or len(mac) != _MAC_HEX_CHARS:
        return "invalid"
    expected = token_for(key, wrap_id)
    return "valid" if hmac.compare_digest(expected, f"{wrap_id}.{mac}") else "invalid"


def load_key(path: Path) -> bytes:
    """The key in ``path`` (a regular 0600 file, never a symlink); made first if missing.

    Two processes making it at once both end up with the one that was linked in first:
    the file appears whole (written aside, then hard-linked into place) or not at all.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    write_atomic(candidate, secrets.token_hex(_KEY_HEX_CHARS // 2).encode(), durable=True)
    try:
        os.link(candidate, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        with contextlib.suppress(OSError):
            candidate.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    text = read_regular(path, 4096).strip()
    if len(text) != _KEY_HEX_CHARS:
        raise KeyFileError(f"{path}: not a telemetryd key ({len(text)} characters)")
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{path}: not a telemetryd key (not hex)") from None
