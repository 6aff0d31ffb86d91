"""Gemini CLI 0.61.0 traffic for failed requests, in the shape it sends them.

No capture holds a failed Gemini request, so these bodies are built on the resource of the
captured ``gemini-fakeapi-http`` run (same process, session and scope) with the failure
shapes seen from that version: each failed request counted in two series of
``gemini_cli.api.request.count`` (one ``status_code`` "error" with ``error_type``, one
without ``error_type``), its latency in ``gemini_cli.api.request.latency``, and one
``gemini_cli.api_error`` event per failure carrying the message.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.captures import requests

SESSION = "267cd09f-e231-45c4-8f75-3583a20c1a3f"
START_NS = 1796065565016000000
MODEL = "gemini-3.8-flash"


def _value(value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": value}
    return {"stringValue": str(value)}


def _attrs(**values: object) -> list[dict[str, object]]:
    common: dict[str, object] = {"session.id": SESSION, "installation.id":
                                 "e57e6dac-cb3f-40b8-821a-e67a1b58a268",
                                 "interactive": False, "auth_type": "gemini-api-key"}
    return [{"key": k.replace("__", "."), "value": _value(v)}
            for k, v in {**common, **values}.items()]


def _resource() -> dict[str, Any]:
    logs = next(r for r in requests("gemini-fakeapi-http") if r.path == "/v1/logs")
    resource: dict[str, Any] = json.loads(logs.body)["resourceLogs"][0]["resource"]
    return resource


def failed_requests(count: int, message: str, status: int | str, error_type: str,
                    duration_ms: int = 40) -> tuple[bytes, bytes]:
    """(metrics body, logs body) of ``count`` failed requests to gemini-3.8-flash."""
    end = START_NS + count * duration_ms * 1_000_000
    series = [
        {"attributes": _attrs(model=MODEL, status_code=status, error_type=error_type),
         "startTimeUnixNano": str(START_NS), "timeUnixNano": str(end), "asInt": count},
        {"attributes": _attrs(model=MODEL, status_code="ok"),
         "startTimeUnixNano": str(START_NS), "timeUnixNano": str(end), "asInt": count},
    ]
    latency = [
        {"attributes": _attrs(model=MODEL, status_code=status, error_type=error_type),
         "count": count, "sum": count * duration_ms, "startTimeUnixNano": str(START_NS),
         "timeUnixNano": str(end), "bucketCounts": [0, 0, 0, 0, count], "explicitBounds":
         [0, 5, 10, 25]},
        {"attributes": _attrs(model=MODEL),
         "count": count, "sum": count * duration_ms, "startTimeUnixNano": str(START_NS),
         "timeUnixNano": str(end), "bucketCounts": [0, 0, 0, 0, count], "explicitBounds":
         [0, 5, 10, 25]},
    ]
    metrics = {"resourceMetrics": [{"resource": _resource(), "scopeMetrics": [{
        "scope": {"name": "gemini-cli", "version": ""},
        "metrics": [
            {"name": "gemini_cli.api.request.count", "unit": "",
             "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": series}},
            {"name": "gemini_cli.api.request.latency", "unit": "ms",
             "histogram": {"aggregationTemporality": 2, "dataPoints": latency}},
        ]}]}]}
    records = []
    for n in range(count):
        ts = START_NS + (n + 1) * duration_ms * 1_000_000
        records.append({
            "timeUnixNano": str(ts), "observedTimeUnixNano": str(ts),
            "body": {"stringValue": f"API error for {MODEL}. Error: {message}"},
            "attributes": _attrs(**{
                "event.name": "gemini_cli.api_error", "model": MODEL, "prompt_id": SESSION,
                "error": message, "error_type": error_type, "status_code": status,
                "duration_ms": duration_ms}),
        })
    logs = {"resourceLogs": [{"resource": _resource(), "scopeLogs": [{
        "scope": {"name": "gemini-cli", "version": ""}, "logRecords": records}]}]}
    return json.dumps(metrics).encode(), json.dumps(logs).encode()
