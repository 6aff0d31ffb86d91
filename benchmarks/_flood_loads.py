"""Load generators for bench_flood.py: each runs in a child process until its stop event is
set, against one listener port."""

from __future__ import annotations

import http.client
import itertools
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.floods import attribute_bomb_request, fat_series_request
from tests.unit.agents.payloads import (
    claude_code_events,
    claude_code_metrics,
    claude_resource,
    metrics_request,
    sum_metric,
)


def post(port: int, body: bytes, path: str = "/v1/metrics") -> int:
    """One OTLP request on a fresh connection; the status (0 when the connection failed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def ordinary_exports(port: int) -> bool:
    """What a real Claude Code session sends (tokens, cost, an api_request and a tool event):
    each daemon gets it once, so both have priced tokens (the price table is loaded) before
    anything is measured."""
    now = time.time_ns()
    resource = claude_resource(**{"service.instance.id": "bench"})
    metrics = claude_code_metrics(resource, "s-1", "claude-sonnet-4-5",
                                  {"input": 1200, "output": 300, "cacheRead": 5000}, 0.02, now)
    events = claude_code_events(resource, [
        ("api_request", {"model": "claude-sonnet-4-5", "input_tokens": 1200,
                         "output_tokens": 300, "cost_usd": 0.02, "duration_ms": 900}, now),
        ("tool_result", {"tool_name": "Bash", "success": "true", "duration_ms": 40}, now)])
    return (post(port, bytes(metrics.SerializeToString())) == 200
            and post(port, bytes(events.SerializeToString()), "/v1/logs") == 200)


def heavy_request(seed: int, points: int = 20_000) -> bytes:
    """Many generic points in one request: long to decode."""
    now = time.time_ns()
    metric = sum_metric("flood.metric", [({"k": f"{seed}-{i % 500}"}, 1, now - 10**9, now)
                                         for i in range(points)])
    return bytes(metrics_request({"service.name": f"flood-{seed}"}, [metric]).SerializeToString())


def cardinality_request(n: int) -> bytes:
    """A request that brings only new identities: agent, instance, session, models, series."""
    now = time.time_ns()
    resource = {"service.name": f"svc-{n}", "service.instance.id": f"inst-{n}",
                "session.id": f"sess-{n}"}
    tokens = [({"model": f"model-{n}-{m}", "type": "input", "session.id": f"sess-{n}-{m}"},
               100, now - 10**9, now) for m in range(5)]
    series = [({"route": f"/r/{n}/{s}", "user": f"u-{n}-{s}"}, 1, now - 10**9, now)
              for s in range(50)]
    metrics = [sum_metric("claude_code.token.usage", tokens),
               sum_metric(f"custom.metric.{n % 5000}", series)]
    return bytes(metrics_request(resource, metrics).SerializeToString())


def fat_series_load(port: int, stop: object, seed: int) -> None:
    """New series of 128 attributes of 200 characters each, 70 to a request (3.7 MB)."""
    for n in itertools.count(seed * 10_000_000):
        if stop.is_set():  # type: ignore[attr-defined]
            return
        post(port, fat_series_request(n))


def attribute_bomb_load(port: int, stop: object, seed: int) -> None:
    """4 MB requests of 2 million empty attributes, back to back."""
    body = attribute_bomb_request()
    while not stop.is_set():  # type: ignore[attr-defined]
        post(port, body)


def decode_load(port: int, stop: object, seed: int) -> None:
    """Post one heavy request after another."""
    body = heavy_request(seed)
    while not stop.is_set():  # type: ignore[attr-defined]
        post(port, body)


def cardinality_load(port: int, stop: object, seed: int) -> None:
    """Post requests with new identities, as fast as the receiver answers."""
    for n in itertools.count(seed * 10_000_000):
        if stop.is_set():  # type: ignore[attr-defined]
            return
        post(port, cardinality_request(n))


def slow_load(port: int, stop: object, seed: int) -> None:
    """Hold 16 connections, each trickling a request head one byte per second."""
    head = b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n"
    socks: list[tuple[socket.socket, int]] = []
    while not stop.is_set():  # type: ignore[attr-defined]
        while len(socks) < 16:
            try:
                socks.append((socket.create_connection(("127.0.0.1", port), timeout=5), 0))
            except OSError:
                break
        kept = []
        for sock, sent in socks:
            try:
                sock.send(head[sent % len(head):][:1])
                kept.append((sock, sent + 1))
            except OSError:
                sock.close()
        socks = kept
        time.sleep(1.0)
    for sock, _ in socks:
        sock.close()


def connection_load(port: int, stop: object, seed: int) -> None:
    """Open a connection, write half a request head, drop it; again and again."""
    while not stop.is_set():  # type: ignore[attr-defined]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            time.sleep(0.01)


def scrape_load(port: int, stop: object, seed: int) -> None:
    """GET /metrics back to back."""
    while not stop.is_set():  # type: ignore[attr-defined]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/metrics")
            conn.getresponse().read()
        except OSError:
            time.sleep(0.01)
        finally:
            conn.close()
