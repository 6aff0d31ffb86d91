"""Every kind of bad input gets the right HTTP answer and a counter, and nothing leaks to logs."""

from __future__ import annotations

import gzip
import math
import socket
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from structlog.testing import capture_logs

from daemon.agents.decoding.counters import OtlpCounter
from daemon.agents.store.event_store import EventStore
from daemon.agents.store.ingest import Ingestor
from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.web.otlp_receiver import OtlpReceiver
from tests.integration.agents.conftest import BASE_SETTINGS, post
from tests.unit.agents.payloads import (
    CUMULATIVE,
    claude_code_events,
    claude_code_metrics,
    claude_resource,
    metrics_request,
    sum_metric,
)

SECRET = "sk-ant-api03-DO-NOT-LOG-ME"
HOUR = 3600.0


def good_metrics() -> bytes:
    """A small valid Claude Code metrics request."""
    request = claude_code_metrics(
        claude_resource(), "s", "claude-haiku-4-5", {"input": 7}, 0.01, time.time_ns()
    )
    return bytes(request.SerializeToString())


def refused(agents: AgentTelemetry) -> dict[tuple[str, ...], int]:
    """The requests refused, by (status, reason)."""
    return agents.stats().by_labels(OtlpCounter.REQUESTS_REFUSED)


def test_truncated_protobuf_is_400(agents: AgentTelemetry) -> None:
    """A protobuf body cut short is a 400 with a Status body, counted; nothing is stored."""
    body = good_metrics()
    reply = post(agents.receiver.port, "/v1/metrics", body[: len(body) - 7])
    assert reply.status == 400
    assert b"bad_protobuf" in reply.body
    assert refused(agents) == {("400", "bad_protobuf"): 1}
    assert agents.ingestor.flush(5.0)
    assert agents.reader.streams() == {}


def test_garbage_json_is_400(agents: AgentTelemetry) -> None:
    """Malformed JSON, a JSON array and a bad hex trace id are 400s."""
    port = agents.receiver.port
    assert post(port, "/v1/logs", b"{not json", "application/json").status == 400
    assert post(port, "/v1/logs", b"[1, 2]", "application/json").status == 400
    bad_id = b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}'
    assert post(port, "/v1/logs", bad_id, "application/json").status == 400
    assert refused(agents) == {("400", "bad_json"): 3}


def test_wrong_content_type_and_encoding_are_415(agents: AgentTelemetry) -> None:
    """text/plain and an unknown Content-Encoding are 415."""
    port = agents.receiver.port
    assert post(port, "/v1/metrics", good_metrics(), "text/plain").status == 415
    reply = post(port, "/v1/metrics", good_metrics(), headers={"Content-Encoding": "br"})
    assert reply.status == 415
    assert refused(agents) == {
        ("415", "unsupported_content_type"): 1,
        ("415", "unsupported_content_encoding"): 1,
    }


def test_unknown_path_is_404_and_wrong_method_405(agents: AgentTelemetry) -> None:
    """An unknown path is 404 (/v1/traces is served); GET on a signal path is 405."""
    port = agents.receiver.port
    assert post(port, "/v1/profiles", b"", method="POST").status == 404
    assert post(port, "/v1/traces", b"", method="POST").status == 200
    reply = post(port, "/v1/metrics", b"", method="GET")
    assert reply.status == 405 and reply.headers["Allow"] == "POST"


def test_gzip_bomb_is_413(make_agents: object) -> None:
    """A small gzip body that inflates past the cap is refused with 413, never fully inflated."""
    agents = make_agents(max_decompressed_bytes=1 << 20)  # type: ignore[operator]
    bomb = gzip.compress(b"\0" * (64 << 20))
    assert len(bomb) < 200_000
    reply = post(agents.receiver.port, "/v1/metrics", bomb, headers={"Content-Encoding": "gzip"})
    assert reply.status == 413
    assert refused(agents) == {("413", "decompressed_too_large"): 1}
    # The receiver goes on answering.
    assert post(agents.receiver.port, "/v1/metrics", good_metrics()).status == 200


def test_huge_body_is_413_without_reading_it(make_agents: object) -> None:
    """A Content-Length over the limit is refused at once; the connection is closed."""
    agents = make_agents(max_body_bytes=1024)  # type: ignore[operator]
    with socket.create_connection(("127.0.0.1", agents.receiver.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-protobuf\r\nContent-Length: 1000000000\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in answer
    assert refused(agents) == {("413", "body_too_large"): 1}


def test_nan_and_negative_counters_get_partial_success(agents: AgentTelemetry) -> None:
    """NaN and negative counter points are refused in a 200 partial success and counted."""
    points = [
        ({"type": "input", "model": "m"}, math.nan, 0, time.time_ns()),
        ({"type": "output", "model": "m"}, -3.0, 0, time.time_ns()),
        ({"type": "output", "model": "m2"}, 8, 0, time.time_ns()),
    ]
    request = metrics_request(claude_resource(), [sum_metric("claude_code.token.usage", points)])
    reply = post(agents.receiver.port, "/v1/metrics", request.SerializeToString())
    assert reply.status == 200
    partial = ExportMetricsServiceResponse.FromString(reply.body).partial_success
    assert partial.rejected_data_points == 2
    assert partial.error_message == "refused 2: negative=1, not_finite=1"
    stats = agents.stats()
    assert stats.get(OtlpCounter.POINTS, ("metrics", "not_finite")) == 1
    assert stats.get(OtlpCounter.POINTS, ("metrics", "negative")) == 1
    assert stats.get(OtlpCounter.POINTS, ("metrics", "accepted")) == 1
    assert agents.ingestor.flush(5.0)
    now = time.time()
    (row,) = agents.reader.stats(now - HOUR, now, "agent")
    assert row.tokens == {"output": 8}


def test_cardinality_flood_is_capped_and_counted(make_agents: object) -> None:
    """A flood of distinct series stops at the cap; the rest are refused in partial success."""
    agents = make_agents(max_series_per_metric=50)  # type: ignore[operator]
    points = [({"type": "input", "model": f"model-{i}"}, 1, 0, time.time_ns()) for i in range(500)]
    request = metrics_request(claude_resource(), [sum_metric("claude_code.token.usage", points)])
    reply = post(agents.receiver.port, "/v1/metrics", request.SerializeToString())
    partial = ExportMetricsServiceResponse.FromString(reply.body).partial_success
    assert (reply.status, partial.rejected_data_points) == (200, 450)
    assert agents.stats().get(OtlpCounter.POINTS, ("metrics", "cardinality")) == 450
    events = claude_code_events(
        claude_resource(),
        [("tool_result", {"tool_name": f"t{i}"}, time.time_ns()) for i in range(80)],
    )
    reply = post(agents.receiver.port, "/v1/logs", events.SerializeToString())
    assert (
        ExportLogsServiceResponse.FromString(reply.body).partial_success.rejected_log_records == 30
    )
    assert agents.ingestor.flush(5.0)
    now = time.time()
    assert len(agents.reader.stats(now - HOUR, now, "model")) == 50
    assert len(agents.reader.stats(now - HOUR, now, "tool")) == 50


def test_flood_gets_429_and_the_retry_is_counted_once(tmp_path: Path) -> None:
    """With the writer stalled the queue fills: 429 + Retry-After, counted; a retry counts fully."""
    store = EventStore(tmp_path / "a.sqlite3", 30.0, 1 << 30)
    ingestor = Ingestor(store, queue_size=3)
    receiver = OtlpReceiver(BASE_SETTINGS, ingestor)
    receiver.start()
    try:

        def cumulative(value: int) -> bytes:
            metric = sum_metric(
                "claude_code.token.usage",
                [({"type": "input", "model": "m"}, value, 1, time.time_ns())],
                temporality=CUMULATIVE,
            )
            return bytes(metrics_request({"service.name": "py"}, [metric]).SerializeToString())

        statuses = [post(receiver.port, "/v1/metrics", good_metrics()).status for _ in range(3)]
        flood = [post(receiver.port, "/v1/metrics", good_metrics()) for _ in range(5)]
        refused_cumulative = post(receiver.port, "/v1/metrics", cumulative(100))
        assert statuses == [200, 200, 200]
        assert [r.status for r in flood] == [429] * 5
        assert all(r.headers["Retry-After"] == "2" for r in flood)
        assert refused_cumulative.status == 429
        stats = receiver.stats()
        assert stats.get(OtlpCounter.REQUESTS_REFUSED, ("429", "queue_full")) == 6
        assert stats.get(OtlpCounter.POINTS_DROPPED, ("queue_full",)) == 5 * 2 + 1
        assert stats.queue_depth == 3

        ingestor.start()
        assert ingestor.flush(10.0)
        assert post(receiver.port, "/v1/metrics", cumulative(100)).status == 200
        assert ingestor.flush(10.0)
    finally:
        receiver.stop()
        ingestor.stop()
        store.close()
    from daemon.agents.store.queries import StoreReader

    now = time.time()
    rows = {r.key: r for r in StoreReader(tmp_path / "a.sqlite3").stats(now - HOUR, now, "agent")}
    assert rows["py"].tokens == {"input": 100}
    assert rows["claude-code"].tokens == {"input": 21}


def test_slow_client_times_out_while_others_are_served(make_agents: object) -> None:
    """A client that stops sending mid-body is cut off; other clients are answered meanwhile."""
    agents = make_agents(read_timeout_seconds=0.5)  # type: ignore[operator]
    port = agents.receiver.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\nabc"
        )
        assert post(port, "/v1/metrics", good_metrics()).status == 200
        deadline = time.monotonic() + 10
        closed = False
        while time.monotonic() < deadline and not closed:
            closed = sock.recv(4096) == b""
    assert closed
    assert agents.stats().get(OtlpCounter.REQUESTS_TIMED_OUT) == 1


def test_nothing_received_reaches_the_logs(make_agents: object) -> None:
    """Attribute values (a secret here) never appear in any log event, good input or bad."""
    agents = make_agents(max_series_per_metric=1)  # type: ignore[operator]
    port = agents.receiver.port
    resource = claude_resource(**{"service.instance.id": SECRET})
    events = claude_code_events(
        resource,
        [
            ("user_prompt", {"prompt": SECRET}, time.time_ns()),
            ("api_error", {"error": SECRET, "model": SECRET}, 0),
        ],
    )
    points = [({"type": "input", "model": SECRET + str(i)}, 1, 0, 0) for i in range(3)]
    flood = metrics_request(resource, [sum_metric("claude_code.token.usage", points)])
    with capture_logs() as logs:
        post(port, "/v1/logs", events.SerializeToString())
        post(port, "/v1/metrics", flood.SerializeToString())
        post(port, "/v1/metrics", SECRET.encode(), "application/json")
        post(port, "/v1/metrics", flood.SerializeToString()[:-3])
        assert agents.ingestor.flush(5.0)
    assert logs, "refusals are logged"
    assert SECRET not in repr(logs)


@pytest.mark.parametrize("content_length", ["-5", "abc"])
def test_bad_content_length_is_400(agents: AgentTelemetry, content_length: str) -> None:
    """A negative or non-numeric Content-Length is a 400."""
    with socket.create_connection(("127.0.0.1", agents.receiver.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + content_length.encode() + b"\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes or a full small answer arrives."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_chunked_bodies_are_read_and_capped(make_agents: object) -> None:
    """A chunked body is accepted; one whose chunks add up past the limit is 413."""
    agents = make_agents(max_body_bytes=4096)  # type: ignore[operator]
    body = good_metrics()
    head = (
        b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]))
    assert raw_exchange(agents.receiver.port, head + chunks + b"0\r\n\r\n").startswith(
        b"HTTP/1.1 200"
    )
    big = b"%x\r\n%s\r\n" % (5000, b"\0" * 5000)
    assert raw_exchange(agents.receiver.port, head + big).startswith(b"HTTP/1.1 413")


def test_missing_length_is_411(agents: AgentTelemetry) -> None:
    """A POST with neither Content-Length nor chunking is 411."""
    request = (b"POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/x-protobuf\r\n\r\n")
    assert raw_exchange(agents.receiver.port, request).startswith(b"HTTP/1.1 411")


def test_a_decoder_bug_costs_one_request_not_the_receiver(
    agents: AgentTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If decoding raises on a well-formed export, it is still answered 200 (with a partial
    success saying it was not taken), counted and logged; the next one is served."""
    import dataclasses

    from daemon.web import otlp_receiver as receiver_module

    def broken(*_: object, **__: object) -> None:
        raise KeyError("boom")

    original = receiver_module._SIGNALS["/v1/metrics"]
    monkeypatch.setitem(
        receiver_module._SIGNALS, "/v1/metrics", dataclasses.replace(original, decode=broken)
    )
    with capture_logs() as logs:
        reply = post(agents.receiver.port, "/v1/metrics", good_metrics())
    assert reply.status == 200
    response = ExportMetricsServiceResponse.FromString(reply.body)
    assert response.partial_success.error_message == "not taken: internal error"
    assert {
        "component": "otlp",
        "event": "agents.receiver.decode_failed",
        "error": "KeyError",
        "log_level": "error",
    } in logs
    monkeypatch.setitem(receiver_module._SIGNALS, "/v1/metrics", original)
    assert post(agents.receiver.port, "/v1/metrics", good_metrics()).status == 200
    assert agents.stats().get(OtlpCounter.REQUESTS_NOT_TAKEN) == 1


def test_a_handler_bug_is_answered_500_and_counted(
    agents: AgentTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug past decoding costs one request (500), counted in handler_errors and /metrics."""
    from daemon.web.exposition.metrics import otlp_families

    def broken(*_: object, **__: object) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(agents.receiver.ingestor, "submit", broken)
    assert post(agents.receiver.port, "/v1/metrics", good_metrics()).status == 500
    monkeypatch.undo()
    assert post(agents.receiver.port, "/v1/metrics", good_metrics()).status == 200
    families = {f.name: f for f in otlp_families(agents.stats())}
    assert families["telemetryd_otlp_handler_errors"].samples[0].value == 1


def test_ipv6_loopback_is_served(make_agents: object) -> None:
    """listen on ::1 binds an IPv6 socket and answers on it."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        agents = make_agents(host="::1")  # type: ignore[operator]
    except OSError:
        pytest.skip("::1 cannot be bound here")
    with socket.create_connection(("::1", agents.receiver.port), timeout=10) as sock:
        body = good_metrics()
        sock.sendall(
            b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf"
            b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
