"""The durable spool, the spool transport and DSN parsing, on real files."""

from __future__ import annotations

import errno
import json
import os
import stat
import uuid
from pathlib import Path

import pytest
import sentry_sdk
from structlog.testing import capture_logs

from crash_reports.delivery.dsn import parse_dsn, redacted
from crash_reports.spool.envelope import parse_envelope
from crash_reports.spool.store import Dropped, Spool, SpoolLimits, StoredReport
from crash_reports.spool.transport import SpoolTransport
from tests.support.fault_server import make_envelope

DAY = 86400.0


class Clock:
    """A settable wall clock for the spool's timestamps."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_spool(tmp_path: Path, clock: Clock | None = None, **limits: int | float) -> Spool:
    return Spool(tmp_path / "state" / "spool", SpoolLimits(**limits), clock=clock or Clock())  # type: ignore[arg-type]


def test_put_then_pending_shows_the_report_with_its_fields(tmp_path: Path) -> None:
    """A stored envelope is listed with id, watch, kind, title, size and zero attempts."""
    spool = make_spool(tmp_path)
    event_id = uuid.uuid4().hex
    data = make_envelope(event_id, watch="aider", kind="cpu_critical", title="aider spins")
    assert spool.put(data) == event_id
    [entry] = spool.pending()
    assert (entry.id, entry.state, entry.watch, entry.kind, entry.title) == (
        event_id,
        "pending",
        "aider",
        "cpu_critical",
        "aider spins",
    )
    assert entry.size_bytes == len(data)
    assert entry.attempts == 0
    assert set(entry.categories) == {"error", "attachment"}
    assert spool.read(event_id) == data


def test_spool_folder_is_private_and_files_are_0600(tmp_path: Path) -> None:
    """The spool dir and its folders are 0700, report files 0600."""
    spool = make_spool(tmp_path)
    spool.put(make_envelope())
    for folder in (spool.root, spool.pending_dir, spool.quarantine_dir, spool.delivered_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    [file] = list(spool.pending_dir.iterdir())
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_pending_is_oldest_first(tmp_path: Path) -> None:
    """Reports come back in the order they were written, whatever their ids."""
    clock = Clock()
    spool = make_spool(tmp_path, clock)
    ids = []
    for _ in range(5):
        ids.append(spool.put(make_envelope()))
        clock.advance(1)
    assert [e.id for e in spool.pending()] == ids
    assert [e.created_at for e in spool.pending()] == sorted(e.created_at for e in spool.pending())


def test_same_event_id_is_stored_once(tmp_path: Path) -> None:
    """Putting an envelope whose event_id is already pending does not duplicate it."""
    spool = make_spool(tmp_path)
    data = make_envelope()
    spool.put(data)
    with capture_logs() as logs:
        spool.put(data)
    assert len(spool.pending()) == 1
    assert [e["event"] for e in logs] == ["spool.duplicate"]


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not json\n", b"[1,2]\n{}\n", b'{"event_id":"abc"}\n{"type":"event"}\n{}\n', b"{}\n"],
)
def test_put_refuses_what_is_not_an_envelope(tmp_path: Path, garbage: bytes) -> None:
    """Bytes that are not a whole envelope raise ValueError and leave nothing behind."""
    spool = make_spool(tmp_path)
    with pytest.raises(ValueError):
        spool.put(garbage)
    assert list(spool.pending_dir.iterdir()) == []


def test_truncated_file_is_never_listed_and_is_moved_aside(tmp_path: Path) -> None:
    """A report cut short on disk is moved to corrupt/ with a log line, the others stay."""
    spool = make_spool(tmp_path)
    good = spool.put(make_envelope())
    bad = spool.put(make_envelope())
    [bad_file] = [p for p in spool.pending_dir.iterdir() if bad in p.name]
    bad_file.write_bytes(bad_file.read_bytes()[:-5])
    with capture_logs() as logs:
        listed = spool.pending()
    assert [e.id for e in listed] == [good]
    corrupt = [e for e in logs if e["event"] == "spool.corrupt"]
    assert len(corrupt) == 1
    assert "truncated" in corrupt[0]["reason"]
    assert [p.name.endswith(bad_file.name) for p in spool.corrupt_dir.iterdir()] == [True]
    with pytest.raises(KeyError):
        spool.read(bad)


def test_garbage_and_foreign_files_are_moved_aside(tmp_path: Path) -> None:
    """A well-named file of garbage and a stray file are both moved aside, not listed."""
    spool = make_spool(tmp_path)
    (spool.pending_dir / f"{1:020d}-{uuid.uuid4().hex}.env").write_bytes(b"\x00\xff garbage")
    (spool.pending_dir / "notes.txt").write_text("hello")
    with capture_logs() as logs:
        assert spool.pending() == []
        assert spool.list_all() == []
    assert len([e for e in logs if e["event"] == "spool.corrupt"]) == 2
    assert len(list(spool.corrupt_dir.iterdir())) == 2


def test_read_of_a_file_damaged_after_listing_moves_it_aside(tmp_path: Path) -> None:
    """``read`` validates too: a file damaged after listing is never handed to the sender."""
    spool = make_spool(tmp_path)
    report = spool.put(make_envelope())
    spool.pending()
    [path] = list(spool.pending_dir.iterdir())
    path.write_bytes(b'{"event_id":"' + report.encode() + b'"}\n{"type":"event","length":99}\n{')
    with pytest.raises(KeyError):
        spool.read(report)
    assert spool.pending() == []


def test_count_bound_drops_oldest_first_with_a_log_line(tmp_path: Path) -> None:
    """Beyond max_reports the oldest go first; each drop is logged and reported."""
    clock = Clock()
    drops: list[Dropped] = []
    spool = Spool(tmp_path / "spool", SpoolLimits(max_reports=3), clock=clock, on_drop=drops.append)
    ids = []
    with capture_logs() as logs:
        for _ in range(5):
            ids.append(spool.put(make_envelope()))
            clock.advance(1)
    assert [e.id for e in spool.pending()] == ids[2:]
    assert [(d.id, d.reason) for d in drops] == [(ids[0], "max_reports"), (ids[1], "max_reports")]
    dropped_logs = [e for e in logs if e["event"] == "spool.dropped"]
    assert [e["id"] for e in dropped_logs] == ids[:2]


def test_byte_bound_drops_oldest_first(tmp_path: Path) -> None:
    """Beyond max_bytes the oldest reports are dropped until the rest fits."""
    one = len(make_envelope(uuid.uuid4().hex))
    clock = Clock()
    spool = make_spool(tmp_path, clock, max_bytes=one * 2 + 10)
    ids = []
    for _ in range(4):
        ids.append(spool.put(make_envelope()))
        clock.advance(1)
    assert [e.id for e in spool.pending()] == ids[2:]


def test_age_bound_drops_reports_older_than_max_age(tmp_path: Path) -> None:
    """A report older than max_age is dropped at the next enforcement, a young one stays."""
    clock = Clock()
    spool = make_spool(tmp_path, clock, max_age_seconds=30 * DAY)
    old = spool.put(make_envelope())
    clock.advance(20 * DAY)
    young = spool.put(make_envelope())
    clock.advance(11 * DAY)
    dropped = spool.enforce_limits()
    assert [(d.id, d.reason) for d in dropped] == [(old, "max_age")]
    assert [e.id for e in spool.pending()] == [young]


def test_attempts_are_counted_in_a_sidecar(tmp_path: Path) -> None:
    """record_attempt counts attempts and keeps the last error across Spool instances."""
    spool = make_spool(tmp_path)
    report = spool.put(make_envelope())
    spool.record_attempt(report, "connection refused", at=10.0)
    spool.record_attempt(report, "timed out", at=20.0)
    [entry] = Spool(spool.root).pending()
    assert (entry.attempts, entry.last_error, entry.last_attempt_at) == (2, "timed out", 20.0)


def test_damaged_sidecar_counts_as_no_attempts(tmp_path: Path) -> None:
    """A sidecar that is not JSON is moved aside; the report itself is still listed."""
    spool = make_spool(tmp_path)
    report = spool.put(make_envelope())
    spool.record_attempt(report, "x")
    [sidecar] = list(spool.pending_dir.glob("*.meta.json"))
    sidecar.write_bytes(b"{trunc")
    [entry] = spool.pending()
    assert (entry.id, entry.attempts) == (report, 0)
    assert len(list(spool.corrupt_dir.iterdir())) == 1


def test_delivered_reports_leave_pending_and_are_remembered_bounded(tmp_path: Path) -> None:
    """mark_delivered removes the envelope and keeps a small, bounded delivered record."""
    clock = Clock()
    spool = make_spool(tmp_path, clock, max_delivered_records=2)
    ids = [spool.put(make_envelope(watch=f"w{i}")) for i in range(3)]
    for report in ids:
        clock.advance(1)
        spool.mark_delivered(report, status=202)
    assert spool.pending() == []
    delivered = spool.delivered()
    assert [e.id for e in delivered] == ids[1:]
    assert [(e.state, e.http_status, e.watch) for e in delivered] == [
        ("delivered", 202, "w1"),
        ("delivered", 202, "w2"),
    ]
    assert list(spool.pending_dir.iterdir()) == []


def test_delivery_interrupted_before_removal_is_finished_not_resent(tmp_path: Path) -> None:
    """A crash after the delivered record but before the unlink: next listing completes it."""
    spool = make_spool(tmp_path)
    report = spool.put(make_envelope())
    [envelope_file] = list(spool.pending_dir.iterdir())
    saved = envelope_file.read_bytes()
    spool.mark_delivered(report)
    envelope_file.write_bytes(saved)  # as if kill -9 struck between record and unlink
    assert spool.pending() == []
    assert not envelope_file.exists()
    assert [e.id for e in spool.delivered()] == [report]


def test_quarantine_keeps_status_and_reason_and_lists_it(tmp_path: Path) -> None:
    """A refused report moves to quarantine with its status, reason and attempts."""
    spool = make_spool(tmp_path)
    report = spool.put(make_envelope())
    keep = spool.put(make_envelope())
    spool.record_attempt(report, "timed out")
    spool.quarantine(report, 413, "HTTP 413: envelope too large", at=5.0)
    assert [e.id for e in spool.pending()] == [keep]
    [entry] = spool.quarantined()
    assert (entry.id, entry.state, entry.http_status, entry.reason, entry.attempts) == (
        report,
        "quarantined",
        413,
        "HTTP 413: envelope too large",
        1,
    )
    assert entry.quarantined_at == 5.0
    assert {e.state for e in spool.list_all()} == {"pending", "quarantined"}
    assert spool.read(report)  # still readable for `reports show`
    assert list(spool.pending_dir.glob("*.meta.json")) == []


def test_orphan_sidecar_from_an_interrupted_move_is_cleaned(tmp_path: Path) -> None:
    """A quarantine sidecar whose envelope never arrived is removed, not shown."""
    spool = make_spool(tmp_path)
    (spool.quarantine_dir / f"{1:020d}-{uuid.uuid4().hex}.meta.json").write_text("{}")
    assert spool.quarantined() == []
    assert list(spool.quarantine_dir.iterdir()) == []


def test_purge_quarantined_then_all(tmp_path: Path) -> None:
    """purge removes quarantined reports only, or with 'all' everything."""
    spool = make_spool(tmp_path)
    refused = spool.put(make_envelope())
    spool.put(make_envelope())
    delivered = spool.put(make_envelope())
    spool.quarantine(refused, 400, "bad")
    spool.mark_delivered(delivered)
    assert spool.purge("quarantined") == 1
    assert [e.state for e in spool.list_all()] == ["pending", "delivered"]
    assert spool.purge("all") == 2
    assert spool.list_all() == []


def test_stale_temp_files_are_cleaned_but_never_listed(tmp_path: Path) -> None:
    """A temp file left by a killed writer is ignored, then removed once it is stale."""
    clock = Clock()
    spool = make_spool(tmp_path, clock)
    temp = spool.pending_dir / ".x.env.123.tmp"
    temp.write_bytes(b"half")
    assert spool.pending() == []
    spool.enforce_limits(now=temp.stat().st_mtime + 10)
    assert temp.exists()
    spool.enforce_limits(now=temp.stat().st_mtime + 3600)
    assert not temp.exists()


def test_parse_envelope_takes_title_from_an_exception() -> None:
    """An exception event without a message is titled 'Type: value'."""
    body = json.dumps({"exception": {"values": [{"type": "KeyError", "value": "'x'"}]}})
    data = b'{"event_id":"' + b"b" * 32 + b'"}\n{"type":"event"}\n' + body.encode() + b"\n"
    assert parse_envelope(data).title == "KeyError: 'x'"


# --- the sentry-sdk transport ---------------------------------------------------


class FullDisk(Spool):
    """Fault injection: the first ``failures`` writes fail like a full disk."""

    failures = 0

    def store(self, envelope: bytes) -> StoredReport:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().store(envelope)


def test_sentry_sdk_events_land_in_the_spool(tmp_path: Path) -> None:
    """capture_event through a real sentry-sdk client writes one envelope with its event_id."""
    spool = make_spool(tmp_path)
    seen: list[str] = []
    client = sentry_sdk.Client(transport=SpoolTransport(spool, on_put=seen.append))
    event_id = uuid.uuid4().hex
    with sentry_sdk.new_scope() as scope:
        scope.set_client(client)
        scope.set_tag("watch", "codex")
        scope.capture_event({"event_id": event_id, "message": "codex leaked", "level": "fatal"})
    client.close()
    [entry] = spool.pending()
    assert (entry.id, entry.watch, entry.title) == (event_id, "codex", "codex leaked")
    assert seen == [event_id]


def test_full_disk_write_is_held_and_retried(tmp_path: Path) -> None:
    """A put that fails with ENOSPC is logged, held in memory and written on retry."""
    spool = FullDisk(tmp_path / "spool", SpoolLimits())
    spool.failures = 2
    transport = SpoolTransport(spool)
    envelope = sentry_sdk.envelope.Envelope.deserialize(make_envelope())
    with capture_logs() as logs:
        transport.capture_envelope(envelope)  # must not raise
    assert [e["event"] for e in logs] == ["spool.write_failed"]
    assert spool.pending() == []
    assert transport.retry_failed_writes() == 1  # second failure: still held
    assert transport.retry_failed_writes() == 0
    assert [e.id for e in spool.pending()] == [envelope.headers["event_id"]]


def test_transport_never_raises_and_skips_sdk_bookkeeping(tmp_path: Path) -> None:
    """Client reports are not reports; a broken on_put callback does not break capture."""
    spool = make_spool(tmp_path)

    def broken(_: str) -> None:
        raise RuntimeError("callback bug")

    transport = SpoolTransport(spool, on_put=broken)
    bookkeeping = sentry_sdk.envelope.Envelope()
    bookkeeping.add_item(
        sentry_sdk.envelope.Item(
            payload=sentry_sdk.envelope.PayloadRef(json={}), type="client_report"
        )
    )
    transport.capture_envelope(bookkeeping)
    assert spool.pending() == []
    with capture_logs() as logs:
        transport.capture_envelope(sentry_sdk.envelope.Envelope.deserialize(make_envelope()))
    assert len(spool.pending()) == 1
    assert "spool.on_put_failed" in [e["event"] for e in logs]


# --- DSN -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("just words", "unsupported scheme"),
        ("ftp://secretkey@host/1", "unsupported scheme 'ftp'"),
        ("https://host/1", "missing public key"),
        ("https://secretkey@host/project", "numeric project id"),
        ("https://secretkey@host:99999/1", "malformed URL"),
    ],
)
def test_bad_dsn_is_a_clear_error_without_the_key(text: str, expected: str) -> None:
    """Each kind of malformed DSN names what is wrong and never echoes the key."""
    with pytest.raises(ValueError, match=expected) as info:
        parse_dsn(text)
    assert "secretkey" not in str(info.value)


def test_redacted_dsn_has_host_and_project_but_no_key() -> None:
    """The redacted form is safe to log: host and project only."""
    shown = redacted("https://secretkey:secretpart@sentry.example.org:8443/prefix/12")
    assert shown == "https://sentry.example.org:8443/prefix/12"
    assert "secret" not in shown


def test_spool_files_are_written_durably(tmp_path: Path) -> None:
    """No temp file is left next to a stored report (the write was renamed into place)."""
    spool = make_spool(tmp_path)
    spool.put(make_envelope())
    assert [n for n in os.listdir(spool.pending_dir) if n.startswith(".")] == []
