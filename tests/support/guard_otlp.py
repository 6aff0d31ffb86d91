"""Real-shaped OTLP for the guard tests: captured agent log records, repeated to order."""

from __future__ import annotations

import copy
import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"
CLAUDE_SESSION = "f2041705-6884-4c65-bf3c-182b28a0222f"


def fixture(name: str) -> bytes:
    """A copied capture's body."""
    return (FIXTURES / name).read_bytes()


def _attr(record: LogRecord, key: str) -> str | None:
    for item in record.attributes:
        if item.key == key:
            return item.value.string_value
    return None


def repeat_protobuf(name: str, event: str, times: int, session: str | None = None,
                    where: Callable[[LogRecord], bool] = lambda r: True) -> bytes:
    """A logs request holding ``times`` copies of the first ``event`` record of a capture
    (optionally moved to another session id), under the capture's own resource."""
    request = ExportLogsServiceRequest()
    request.ParseFromString(fixture(name))
    resource_logs = request.resource_logs[0]
    scope_logs = resource_logs.scope_logs[0]
    found = next(r for sl in resource_logs.scope_logs for r in sl.log_records
                 if _attr(r, "event.name") == event and where(r))
    out = ExportLogsServiceRequest()
    target = out.resource_logs.add()
    target.resource.CopyFrom(resource_logs.resource)
    scope = target.scope_logs.add()
    scope.scope.CopyFrom(scope_logs.scope)
    for index in range(times):
        record = scope.log_records.add()
        record.CopyFrom(found)
        record.time_unix_nano = found.time_unix_nano + index * 1_000_000
        if session is not None:
            for item in record.attributes:
                if item.key == "session.id":
                    item.value.string_value = session
    return out.SerializeToString()


def with_session(name: str, session: str) -> bytes:
    """A whole protobuf logs capture moved to another session id."""
    request = ExportLogsServiceRequest()
    request.ParseFromString(fixture(name))
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                for item in record.attributes:
                    if item.key == "session.id":
                        item.value.string_value = session
    return request.SerializeToString()


def repeat_codex_json(event: str, times: int, where: Callable[[dict[str, Any]], bool]) -> bytes:
    """The Codex JSON logs capture with only ``times`` copies of one ``event`` record."""
    data = json.loads(fixture("codex-exec-logs.json"))
    for resource_logs in data["resourceLogs"]:
        for scope_logs in resource_logs["scopeLogs"]:
            for record in scope_logs["logRecords"]:
                attrs = {a["key"]: next(iter(a["value"].values()), None)
                         for a in record["attributes"]}
                if attrs.get("event.name") == event and where(attrs):
                    scope_logs["logRecords"] = [copy.deepcopy(record) for _ in range(times)]
                    resource_logs["scopeLogs"] = [scope_logs]
                    data["resourceLogs"] = [resource_logs]
                    return json.dumps(data).encode()
    raise AssertionError(f"no {event} in the Codex capture")


def post(port: int, path: str, body: bytes, content_type: str) -> int:
    """POST one OTLP body to the daemon's receiver on loopback; the HTTP status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


PROTOBUF = "application/x-protobuf"
JSON = "application/json"
