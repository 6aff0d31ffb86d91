"""The flusher against a real loopback server that misbehaves on purpose."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from crash_reports.delivery.flusher import Flusher
from crash_reports.delivery.retry import RetryPolicy
from crash_reports.delivery.upload import Retry, Uploader
from crash_reports.spool.store import Spool
from tests.support.fault_server import (
    GARBAGE,
    HANG,
    OK,
    OK_EMPTY,
    RESET,
    FaultServer,
    make_envelope,
    status,
)


class Clock:
    """A settable clock for backoff and rate-limit decisions (wall, or monotonic)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


def flusher_for(
    spool: Spool, dsn: str, clock: Clock | None = None, timeout: float = 5.0,
    monotonic: Clock | None = None,
) -> Flusher:
    return Flusher(
        spool,
        Uploader(dsn, "9.9.9", timeout_seconds=timeout),
        RetryPolicy(base_seconds=10, cap_seconds=3600),
        clock=clock or time.time,
        monotonic=monotonic or clock or time.monotonic,
    )


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_2xx_removes_the_report_and_the_upload_is_well_formed(
    spool: Spool, server: FaultServer
) -> None:
    """One POST with auth, content type, user agent; sent_at is the send time; dsn dropped."""
    event_id = uuid.uuid4().hex
    original = make_envelope(event_id)
    header = json.loads(original.split(b"\n", 1)[0])
    header["dsn"] = "https://otherkey@elsewhere.example/5"
    spool.put(json.dumps(header).encode() + original[original.index(b"\n") :])
    before = datetime.now(UTC)
    result = flusher_for(spool, server.dsn(key="pubkey42", project=7)).flush()
    assert (result.status, result.delivered, result.still_pending) == ("ok", 1, 0)
    assert spool.pending() == []
    assert [e.id for e in spool.delivered()] == [event_id]
    [request] = server.received
    assert (request.method, request.path) == ("POST", "/api/7/envelope/")
    assert request.headers["content-type"] == "application/x-sentry-envelope"
    assert request.headers["user-agent"] == "telemetryd/9.9.9"
    assert "sentry_key=pubkey42" in request.headers["x-sentry-auth"]
    sent = request.envelope_header
    assert sent["event_id"] == event_id
    assert "dsn" not in sent
    sent_at = datetime.strptime(str(sent["sent_at"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((sent_at - before).total_seconds()) < 30
    assert request.body.split(b"\n", 1)[1] == original.split(b"\n", 1)[1]


def test_200_with_empty_body_counts_as_delivered(spool: Spool, server: FaultServer) -> None:
    """A 2xx without a body still confirms delivery."""
    server.script(OK_EMPTY)
    spool.put(make_envelope())
    assert flusher_for(spool, server.dsn()).flush().delivered == 1
    assert spool.pending() == []


def test_reports_go_oldest_first_and_each_once(spool: Spool, server: FaultServer) -> None:
    """The server receives the reports in spool order, none twice."""
    ids = [spool.put(make_envelope()) for _ in range(6)]
    result = flusher_for(spool, server.dsn()).flush()
    assert result.delivered_ids == tuple(ids)
    assert server.accepted_ids() == ids


def test_500_keeps_the_report_backs_off_and_stops_the_flush(
    spool: Spool, server: FaultServer
) -> None:
    """A 5xx keeps every report, counts the attempt, stops at once and backs off."""
    clock = Clock()
    ids = [spool.put(make_envelope()) for _ in range(3)]
    server.script(status(500, b"oops"))
    flusher = flusher_for(spool, server.dsn(), clock)
    result = flusher.flush()
    assert (result.status, result.retrying, result.still_pending) == ("retrying", 1, 3)
    assert len(server.received) == 1
    first = spool.pending()[0]
    assert (first.id, first.attempts, first.last_error) == (ids[0], 1, "server error (HTTP 500)")
    assert result.next_attempt_at is not None
    assert clock.now + 5 <= result.next_attempt_at <= clock.now + 10
    waiting = flusher.flush()
    assert waiting.status == "waiting"
    assert len(server.received) == 1  # the backoff was respected: nothing sent
    clock.now = result.next_attempt_at + 1
    assert flusher.flush().delivered == 3
    assert server.accepted_ids() == ids


def test_a_wall_clock_step_back_does_not_extend_the_backoff(
    spool: Spool, server: FaultServer
) -> None:
    """The wall clock steps back an hour during a backoff: the retry still comes on time."""
    wall, monotonic = Clock(), Clock(1000.0)
    spool.put(make_envelope())
    server.script(status(500, b"oops"))
    flusher = flusher_for(spool, server.dsn(), wall, monotonic=monotonic)
    result = flusher.flush()
    assert result.status == "retrying" and result.next_attempt_at is not None
    delay = result.next_attempt_at - result.finished_at
    wall.now -= 3600.0
    assert flusher.flush().status == "waiting"
    wall.now += delay + 1
    monotonic.now += delay + 1
    assert flusher.flush().delivered == 1


def test_429_honours_retry_after_and_per_category_rate_limits(
    spool: Spool, server: FaultServer
) -> None:
    """After a 429 for 'error', error reports wait out the limit; then they go."""
    clock = Clock()
    ids = [spool.put(make_envelope()) for _ in range(2)]
    server.script(status(429, Retry_After="30", X_Sentry_Rate_Limits="120:error:key"))
    flusher = flusher_for(spool, server.dsn(), clock)
    with capture_logs() as logs:
        result = flusher.flush()
    assert (result.status, result.still_pending) == ("rate_limited", 2)
    assert result.next_attempt_at == pytest.approx(clock.now + 120)
    assert flusher.state().rate_limits == {"error": pytest.approx(clock.now + 120)}
    assert [e["event"] for e in logs if e["event"].startswith("flush.")] == ["flush.rate_limited"]
    clock.now += 60
    forced = flusher.flush(force=True)  # even a forced flush honours the server's limit
    assert (forced.status, forced.deferred) == ("rate_limited", 2)
    # So does a new flusher (a restarted daemon, `telemetryd reports flush`) for that server.
    restarted = flusher_for(spool, server.dsn(), clock)
    assert restarted.flush(force=True).status == "rate_limited"
    assert len(server.received) == 1
    clock.now += 61
    assert flusher.flush().delivered_ids == tuple(ids)


def test_rate_limits_of_an_old_dsn_do_not_hold_a_new_one(
    spool: Spool, server: FaultServer
) -> None:
    """Limits saved for one server are not applied when the DSN points elsewhere."""
    server.script(status(429, X_Sentry_Rate_Limits="600::key"))
    report = spool.put(make_envelope())
    assert flusher_for(spool, server.dsn()).flush().status == "rate_limited"
    other = flusher_for(spool, server.dsn(project=2))
    assert other.flush().delivered_ids == (report,)


def test_rate_limit_on_another_category_does_not_hold_error_reports(
    spool: Spool, server: FaultServer
) -> None:
    """A limit on transactions leaves error reports free to go."""
    server.script(status(429, X_Sentry_Rate_Limits="600:transaction:key"))
    spool.put(make_envelope(attachment=None))
    report = spool.put(make_envelope(attachment=None))
    flusher = flusher_for(spool, server.dsn())
    first = flusher.flush()
    assert first.delivered_ids == (report,)  # the one after the 429 went through
    assert flusher.flush().delivered == 1


@pytest.mark.parametrize("code", [413, 400])
def test_other_4xx_quarantines_with_status_and_reason(
    spool: Spool, server: FaultServer, code: int
) -> None:
    """A 413 or 400 moves the report to quarantine with the status and reason; others go."""
    refused = spool.put(make_envelope())
    fine = spool.put(make_envelope())
    server.script(status(code, b'{"detail":"envelope exceeded size limits"}'))
    with capture_logs() as logs:
        result = flusher_for(spool, server.dsn()).flush()
    assert (result.quarantined_ids, result.delivered_ids) == ((refused,), (fine,))
    [entry] = spool.quarantined()
    assert (entry.id, entry.http_status) == (refused, code)
    assert entry.reason == f"HTTP {code}: envelope exceeded size limits"
    assert "flush.rejected" in [e["event"] for e in logs]
    assert spool.read(refused)  # kept, never deleted silently


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [(GARBAGE, "bad HTTP response"), (RESET, "connection reset")],
)
def test_garbage_and_reset_keep_the_report(
    spool: Spool, server: FaultServer, behaviour: object, reason: str
) -> None:
    """A non-HTTP answer or a reset connection is a retry with a clear reason."""
    server.script(behaviour)  # type: ignore[arg-type]
    report = spool.put(make_envelope())
    result = flusher_for(spool, server.dsn()).flush()
    assert result.status == "retrying"
    assert result.last_error is not None
    assert result.last_error.startswith(reason)
    assert [e.id for e in spool.pending()] == [report]


def test_hanging_server_times_out_and_keeps_the_report(spool: Spool, server: FaultServer) -> None:
    """A server that never answers costs one timeout, not a stuck flusher."""
    server.script(HANG)
    report = spool.put(make_envelope())
    started = time.monotonic()
    result = flusher_for(spool, server.dsn(), timeout=0.5).flush()
    assert time.monotonic() - started < 10
    assert (result.status, result.last_error) == ("retrying", "timed out")
    assert [e.id for e in spool.pending()] == [report]


def test_refused_port_logs_one_outage_then_one_recovery(tmp_path: Path) -> None:
    """Many failing flushes log flush.outage once; the first success logs flush.recovered."""
    spool = Spool(tmp_path / "spool")
    port = free_port()
    dsn = f"http://s3cr3tk3y@127.0.0.1:{port}/1"
    ids = [spool.put(make_envelope()) for _ in range(3)]
    flusher = flusher_for(spool, dsn)
    with capture_logs() as logs:
        for _ in range(4):
            result = flusher.flush(force=True)
            assert (result.status, result.last_error) == ("retrying", "connection refused")
    assert [e["event"] for e in logs if e["event"] in ("flush.outage", "flush.recovered")] == [
        "flush.outage"
    ]
    assert flusher.state().consecutive_failures == 4
    assert "s3cr3tk3y" not in repr(logs) + repr(flusher.state())
    assert spool.pending()[0].attempts == 4
    with FaultServer(port=port), capture_logs() as logs:
        assert flusher.flush(force=True).delivered_ids == tuple(ids)
    assert [e["event"] for e in logs if e["event"].startswith("flush.")] == [
        "flush.recovered",
        "flush.done",
    ]


def test_outage_then_recovery_with_the_same_flusher(spool: Spool, server: FaultServer) -> None:
    """The same flusher sees an outage (5xx) and then the recovery, logged once each."""
    clock = Clock()
    spool.put(make_envelope())
    server.script(status(503), status(502), status(500))
    flusher = flusher_for(spool, server.dsn(), clock)
    with capture_logs() as logs:
        for _ in range(4):
            flusher.flush(force=True)
    events = [e["event"] for e in logs if e["event"] in ("flush.outage", "flush.recovered")]
    assert events == ["flush.outage", "flush.recovered"]
    assert spool.pending() == []
    assert flusher.state().backoff_until is None


def test_no_dsn_sends_nothing(spool: Spool, server: FaultServer) -> None:
    """Without a DSN the flusher is disabled: reports stay, nothing is sent anywhere."""
    spool.put(make_envelope())
    flusher = Flusher(spool, None)
    result = flusher.flush(force=True)
    assert (result.status, result.still_pending) == ("disabled", 1)
    assert flusher.state().enabled is False
    assert server.received == []


def test_flush_is_busy_while_another_holder_has_the_lock(spool: Spool, server: FaultServer) -> None:
    """With the spool's flush lock held elsewhere, a flush sends nothing and says busy."""
    spool.put(make_envelope())
    fd = os.open(spool.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = flusher_for(spool, server.dsn()).flush()
        assert (result.status, result.still_pending) == ("busy", 1)
        assert server.received == []
    finally:
        os.close(fd)
    assert flusher_for(spool, server.dsn()).flush().delivered == 1


def test_corrupt_file_in_the_spool_is_skipped_and_the_rest_delivered(
    spool: Spool, server: FaultServer
) -> None:
    """A garbage file never reaches the server; the real reports still do."""
    good = spool.put(make_envelope())
    (spool.pending_dir / f"{time.time_ns():020d}-{uuid.uuid4().hex}.env").write_bytes(
        b'{"event_id"'
    )
    with capture_logs() as logs:
        result = flusher_for(spool, server.dsn()).flush()
    assert result.delivered_ids == (good,)
    assert server.accepted_ids() == [good]
    assert "spool.corrupt" in [e["event"] for e in logs]


def test_flush_state_never_contains_the_key(spool: Spool, server: FaultServer) -> None:
    """Status data names the server by host and project only."""
    flusher = flusher_for(spool, server.dsn(key="topsecretkey"))
    spool.put(make_envelope())
    flusher.flush()
    state = json.dumps(flusher.state().to_json())
    assert "topsecretkey" not in state
    assert f"127.0.0.1:{server.port}/1" in state


def test_upload_returns_retry_for_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unresolvable host is a retry, not a crash (the resolver's failure is injected, so
    no query leaves the machine)."""
    import socket

    def no_such_host(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    outcome = Uploader("http://k@does-not-exist.invalid/1", "1", timeout_seconds=2).send(
        make_envelope()
    )
    assert isinstance(outcome, Retry)
    assert outcome.reason.startswith(("DNS lookup failed", "network error", "timed out"))


def test_quarantined_reports_can_be_requeued_and_then_delivered(tmp_path: Path) -> None:
    """After a 401 (wrong key) quarantines a report, `reports requeue` sends it again."""
    server = FaultServer(default=status(401, b'{"detail":"bad key"}'))
    spool = Spool(tmp_path / "spool")
    report_id = spool.put(make_envelope())
    try:
        flusher = Flusher(spool, Uploader(server.dsn(), "test", timeout_seconds=5))
        flusher.flush()
        assert [e.id for e in spool.quarantined()] == [report_id]
        assert spool.quarantined_count() == 1 and spool.pending_count() == 0
        assert spool.requeue(report_id)
        assert not spool.requeue(report_id)  # no longer quarantined
        server.default = OK
        result = flusher.flush(force=True)
    finally:
        server.stop()
    assert result.delivered_ids == (report_id,)
    assert spool.quarantined_count() == 0 and spool.pending_count() == 0
