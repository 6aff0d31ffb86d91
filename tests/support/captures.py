"""Requests captured from real agent CLIs (``shared/fixtures/otlp-captures``), replayed over
loopback with their recorded headers."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CAPTURES = Path("shared") / "fixtures" / "otlp-captures"
# Hop-by-hop or size headers are the transport's business, not the capture's.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def captures_dir() -> Path:
    """The captures folder beside the checkout (found by walking up from the repository)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / CAPTURES
        if candidate.is_dir():
            return candidate
    raise AssertionError(
        f"no {CAPTURES} found in any folder above {here.parent}: the OTLP captures must sit "
        "beside the checkout (copy shared/ next to the repository)"
    )


@dataclass(frozen=True)
class CapturedRequest:
    """One recorded request: where it went, its headers and body, whether it was chunked."""

    path: str
    headers: dict[str, str]
    body: bytes
    chunked: bool


def requests(folder: str) -> list[CapturedRequest]:
    """A capture folder's requests in the order the agent sent them."""
    root = captures_dir() / folder
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


def replay(port: int, folder: str, only: str | None = None) -> list[int]:
    """POST every request of a capture (or only those to path ``only``) to 127.0.0.1:port;
    the HTTP status of each."""
    statuses = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for request in requests(folder):
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
