"""Codex terminal-UI-shaped log exports, built from the real ``codex-exec-json`` capture.

No capture holds the terminal UI (``codex_cli_rs``) itself; what differs from ``codex exec``
is its service name and originator, and the ``thread_title`` sub-thread it starts right
after the user's first prompt, in the same process, under a conversation id of its own
(captures README, "what else was seen"). So: the capture's log export with service.name
and originator rewritten and its conversation id replaced, and for the sub-thread the
capture's ``codex.conversation_starts``, first ``codex.api_request`` and first
``codex.sse_event`` ``response.completed`` with tokens, under a new conversation id.

Run as a program (``python -m tests.support.codex_tui PORT CONVERSATION [TITLE]``) it sends
those exports over loopback from its own process, as one terminal UI would, and exits.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import sys
import time
from typing import Any

from tests.support.captures import CAPTURES_DIR

CAPTURE = CAPTURES_DIR / "codex-exec-json" / "004-v1_logs.json"
SERVICE = "codex_cli_rs"
_SUB_THREAD_EVENTS = ("codex.conversation_starts", "codex.api_request", "codex.sse_event")


def _attrs(record: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in record["attributes"]}


def _rewritten(record: dict[str, Any], conversation: str, nanos: int) -> dict[str, Any]:
    record = copy.deepcopy(record)
    record["observedTimeUnixNano"] = str(nanos)
    for attribute in record["attributes"]:
        if attribute["key"] == "conversation.id":
            attribute["value"] = {"stringValue": conversation}
        elif attribute["key"] == "originator":
            attribute["value"] = {"stringValue": SERVICE}
    return record


def _export(records: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(CAPTURE.read_text())
    [resource_logs] = body["resourceLogs"]
    for attribute in resource_logs["resource"]["attributes"]:
        if attribute["key"] == "service.name":
            attribute["value"] = {"stringValue": SERVICE}
    events = resource_logs["scopeLogs"][-1]
    events["logRecords"] = records
    resource_logs["scopeLogs"] = [events]
    return body


def session_export(conversation: str, start: float) -> dict[str, Any]:
    """The capture's whole log export as one terminal-UI session (one record a millisecond
    from ``start``)."""
    records = json.loads(CAPTURE.read_text())["resourceLogs"][0]["scopeLogs"][-1]["logRecords"]
    base = int(start * 1e9)
    return _export([_rewritten(r, conversation, base + i * 1_000_000)
                    for i, r in enumerate(records)])


def sub_thread_export(conversation: str, start: float) -> dict[str, Any]:
    """The ``thread_title`` sub-thread: a conversation start, one request and its tokens."""
    records = json.loads(CAPTURE.read_text())["resourceLogs"][0]["scopeLogs"][-1]["logRecords"]
    picked: list[dict[str, Any]] = []
    for record in records:
        attrs = _attrs(record)
        name = attrs.get("event.name")
        if name not in _SUB_THREAD_EVENTS or any(_attrs(p).get("event.name") == name
                                                 for p in picked):
            continue
        if name == "codex.sse_event" and "input_token_count" not in attrs:
            continue
        picked.append(record)
    base = int(start * 1e9)
    return _export([_rewritten(r, conversation, base + i * 1_000_000)
                    for i, r in enumerate(picked)])


def send(port: int, export: dict[str, Any], deadline_seconds: float = 60.0) -> int:
    """POST one log export as Codex's exporter does (otlp-http json), again after the
    Retry-After of a 503 or 429 as OTLP exporters do, until the deadline; the last status."""
    deadline = time.monotonic() + deadline_seconds
    body = json.dumps(export).encode()
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", "/v1/logs", body,
                               {"content-type": "application/json",
                                "user-agent": "OTel-OTLP-Exporter-Rust/0.31.0"})
            response = connection.getresponse()
            response.read()
            wait = float(response.getheader("Retry-After") or 1)
        finally:
            connection.close()
        if response.status not in (429, 503) or time.monotonic() + wait > deadline:
            return response.status
        time.sleep(wait)  # the server's own Retry-After, not a guess at a duration


def main(argv: list[str]) -> int:
    """Send one session (and its sub-thread two seconds of agent time after the prompt);
    print this process's pid."""
    print(os.getpid(), flush=True)
    port, conversation = int(argv[0]), argv[1]
    now = time.time()
    exports = [session_export(conversation, now - 3.0)]
    if len(argv) > 2:
        exports.append(sub_thread_export(argv[2], now - 1.0))
    for export in exports:
        status = send(port, export)
        if status != 200:
            print(f"answered {status}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
