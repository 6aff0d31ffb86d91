"""The receiver's smaller wire holes, closed: framing, head size, gzip members, CSRF, Host."""

from __future__ import annotations

import gzip
import socket
import time

import pytest

from daemon.agents.decoding.counters import OtlpCounter
from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.integration.agents.conftest import post
from tests.integration.agents.test_bad_input import good_metrics, refused
from tests.support.waiting import wait_for


def read_until_closed(sock: socket.socket, seconds: float = 10.0) -> tuple[bytes, bool]:
    """Everything the server sends within ``seconds``, and whether it closed the connection."""
    sock.settimeout(0.2)
    answer = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return answer, True
        if not chunk:
            return answer, True
        answer += chunk
    return answer, False


def test_content_length_with_transfer_encoding_is_refused_and_closed(
        agents: AgentTelemetry) -> None:
    """Both framings at once (a smuggling attempt, RFC 9112 6.3): 400, connection closed."""
    body = good_metrics()
    request = (b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/x-protobuf\r\nContent-Length: 3\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    with socket.create_connection(("127.0.0.1", agents.receiver.port), timeout=10) as sock:
        sock.sendall(request)
        answer, closed = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:60]
    assert closed, "the connection was kept after a request with both framings"
    assert refused(agents) == {("400", "length_and_chunked"): 1}
    assert agents.stats().get(OtlpCounter.REQUESTS_RECEIVED, ("metrics",)) == 0


def test_a_whole_head_over_the_cap_is_refused(make_agents: object) -> None:
    """A 64 KiB head sent in one write (h11 bounds only incomplete heads): 431, closed."""
    agents = make_agents(max_header_bytes=16 * 1024)  # type: ignore[operator]
    body = good_metrics()
    padding = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1024) for i in range(64))
    request = (b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/x-protobuf\r\n" + padding +
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert len(request) > 64 * 1024
    with socket.create_connection(("127.0.0.1", agents.receiver.port), timeout=10) as sock:
        sock.sendall(request)
        answer, closed = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:60]
    assert closed
    # A head just under the cap is still served.
    small = {f"X-Pad-{i}": "a" * 1000 for i in range(12)}
    assert post(agents.receiver.port, "/v1/metrics", body, headers=small).status == 200


def test_a_two_member_gzip_body_is_accepted_whole(agents: AgentTelemetry) -> None:
    """gzip members one after another (RFC 1952 2.2) inflate to the whole payload."""
    body = good_metrics()
    half = len(body) // 2
    two = gzip.compress(body[:half]) + gzip.compress(body[half:])
    reply = post(agents.receiver.port, "/v1/metrics", two, headers={"Content-Encoding": "gzip"})
    assert reply.status == 200
    assert agents.ingestor.flush(10.0)
    wait_for(lambda: agents.stats().get(OtlpCounter.POINTS, ("metrics", "accepted")) > 0,
             message="the export's points accepted")


@pytest.mark.parametrize("tail", [b"garbage", b"\0" * 8, b"\x1f\x8b"],
                         ids=["garbage", "zero-padding", "truncated-member"])
def test_gzip_with_trailing_bytes_is_refused(agents: AgentTelemetry, tail: bytes) -> None:
    """Bytes after the last gzip member that are not a whole member: 400, nothing taken."""
    body = gzip.compress(good_metrics()) + tail
    reply = post(agents.receiver.port, "/v1/metrics", body, headers={"Content-Encoding": "gzip"})
    assert reply.status == 400
    assert refused(agents) == {("400", "bad_compression"): 1}


def test_a_storm_of_empty_gzip_members_is_refused(agents: AgentTelemetry) -> None:
    """More than MAX_GZIP_MEMBERS members (each costs an inflater on the event loop): 400."""
    from daemon.web.http.wire import MAX_GZIP_MEMBERS

    body = gzip.compress(b"") * (MAX_GZIP_MEMBERS + 1)
    reply = post(agents.receiver.port, "/v1/metrics", body, headers={"Content-Encoding": "gzip"})
    assert reply.status == 400
    assert refused(agents) == {("400", "too_many_gzip_members"): 1}


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
])
def test_a_form_a_page_can_post_without_preflight_is_415(
        agents: AgentTelemetry, content_type: str) -> None:
    """Plain CSRF: the content types a page may POST cross-site without a preflight are 415."""
    reply = post(agents.receiver.port, "/v1/metrics", good_metrics(), content_type)
    assert reply.status == 415


def test_options_gets_no_cors_headers(agents: AgentTelemetry) -> None:
    """A preflight gets no Access-Control-* header, so a browser never sends the real POST."""
    reply = post(agents.receiver.port, "/v1/metrics", b"", method="OPTIONS",
                 headers={"Origin": "http://evil.example",
                          "Access-Control-Request-Method": "POST"})
    assert reply.status in (403, 405)
    assert not [k for k in reply.headers if k.lower().startswith("access-control-")]


@pytest.mark.parametrize("host", [
    "rebind.attacker.example", "rebind.attacker.example:4318", "localhost.attacker.example",
    "127.0.0.1.attacker.example", "10.1.2.3", "",
])
def test_a_post_to_another_host_name_is_421_and_not_taken(
        agents: AgentTelemetry, host: str) -> None:
    """DNS rebinding: an export whose Host is not loopback is refused and counts nothing."""
    reply = post(agents.receiver.port, "/v1/metrics", good_metrics(), headers={"Host": host})
    assert reply.status == 421
    assert refused(agents) == {("421", "misdirected_host"): 1}
    assert agents.stats().get(OtlpCounter.REQUESTS_RECEIVED, ("metrics",)) == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:4318", "localhost", "LOCALHOST:1",
                                  "[::1]", "[::1]:4318", "localhost."])
def test_loopback_host_names_are_served(agents: AgentTelemetry, host: str) -> None:
    """localhost, 127.0.0.1 and [::1], with or without a port, are served."""
    reply = post(agents.receiver.port, "/v1/metrics", good_metrics(), headers={"Host": host})
    assert reply.status == 200


def test_a_cross_origin_post_is_403(agents: AgentTelemetry) -> None:
    """An Origin that is not the listener's own (even a loopback one on another port): 403."""
    port = agents.receiver.port
    for origin in ("http://evil.example", "http://localhost:8080", "null",
                   f"https://127.0.0.1:{port}"):
        reply = post(port, "/v1/metrics", good_metrics(), headers={"Origin": origin})
        assert reply.status == 403, origin
    own = post(port, "/v1/metrics", good_metrics(), headers={"Origin": f"http://127.0.0.1:{port}"})
    assert own.status == 200
    assert refused(agents) == {("403", "cross_origin"): 4}
