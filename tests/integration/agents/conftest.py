"""Fixtures: a real receiver on loopback with a real SQLite store behind it."""

from __future__ import annotations

import dataclasses
import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.runtime.agent_telemetry import AgentTelemetry
from tests.support.agents import loopback_otlp

BASE_SETTINGS = loopback_otlp(read_timeout_seconds=2.0)


@dataclasses.dataclass
class Reply:
    """An HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def post(
    port: int,
    path: str,
    body: bytes,
    content_type: str = "application/x-protobuf",
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> Reply:
    """One request on a fresh connection to the receiver."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            method, path, body=body, headers={"Content-Type": content_type, **(headers or {})}
        )
        response = conn.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


@pytest.fixture
def make_agents(tmp_path: Path) -> Iterator[object]:
    """Start AgentTelemetry with settings overrides; everything is stopped at teardown."""
    started: list[AgentTelemetry] = []

    def make(host: str = "127.0.0.1", **overrides: object) -> AgentTelemetry:
        settings = loopback_otlp(host, **{"read_timeout_seconds": 2.0, **overrides})
        telemetry = AgentTelemetry(settings, tmp_path / f"agents-{len(started)}.sqlite3")
        telemetry.start()
        started.append(telemetry)
        return telemetry

    yield make
    for telemetry in started:
        telemetry.stop()


@pytest.fixture
def agents(make_agents: object) -> AgentTelemetry:
    """AgentTelemetry with default settings on an ephemeral loopback port."""
    return make_agents()  # type: ignore[operator, no-any-return]
