"""Requests captured from real agent CLIs, replayed over loopback with their recorded headers.

The captures the suite needs live in the repository (``tests/fixtures/otlp-captures``, see its
README). A ``shared/fixtures/otlp-captures`` folder beside the checkout is optional: when it is
there, ``shared_captures_dir`` finds it so its captures are tested too.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
CAPTURES_DIR = REPOSITORY / "tests" / "fixtures" / "otlp-captures"
SHARED_CAPTURES = Path("shared") / "fixtures" / "otlp-captures"
# Hop-by-hop or size headers are the transport's business, not the capture's.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def captures_dir() -> Path:
    """The repository's captures folder (always there: the suite never needs ``shared/``)."""
    return CAPTURES_DIR


def shared_captures_dir() -> Path | None:
    """The optional captures folder beside the checkout (``../shared/...``, or in any folder
    above the repository), or None when there is none."""
    for parent in REPOSITORY.parents:
        candidate = parent / SHARED_CAPTURES
        if candidate.is_dir():
            return candidate
    return None


def capture_folders(root: Path) -> list[str]:
    """The names of the capture folders under ``root`` (those holding recorded requests)."""
    return sorted(p.parent.name for p in root.glob("*/001-*.meta.json"))


@dataclass(frozen=True)
class CapturedRequest:
    """One recorded request: where it went, its headers and body, whether it was chunked."""

    path: str
    headers: dict[str, str]
    body: bytes
    chunked: bool


def requests(folder: str, captures: Path = CAPTURES_DIR) -> list[CapturedRequest]:
    """A capture folder's requests in the order the agent sent them (from the repository's
    copy unless ``captures`` names another captures folder)."""
    root = captures / folder
    found = []
    for meta_file in sorted(root.glob("*.meta.json")):
        meta = json.loads(meta_file.read_text())
        headers = {k: v for k, v in meta["headers"].items()
                   if k.lower() not in _TRANSPORT_HEADERS}
        body = (root / meta["body_file"]).read_bytes()
        found.append(CapturedRequest(meta["path"], headers, body, bool(meta.get("chunked"))))
    assert found, f"no requests in {root}"
    return found


def _chunks(body: bytes, size: int = 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def replay(
    port: int, folder: str, only: str | None = None, captures: Path = CAPTURES_DIR
) -> list[int]:
    """POST every request of a capture (or only those to path ``only``) to 127.0.0.1:port;
    the HTTP status of each."""
    statuses = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for request in requests(folder, captures):
            if only is not None and request.path != only:
                continue
            if request.chunked:
                conn.request("POST", request.path, body=_chunks(request.body),
                             headers=request.headers, encode_chunked=True)
            else:
                conn.request("POST", request.path, body=request.body, headers=request.headers)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        conn.close()
    return statuses
