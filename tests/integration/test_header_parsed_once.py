"""An envelope is parsed once between its write and its upload (issue 19, "an envelope's
header parsed once per life stage"): the write parses it and the spool keeps what it parsed,
so the listing, the flusher's read and the upload reuse it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import crash_reports.delivery.upload as upload
import crash_reports.spool.listing as listing
import crash_reports.spool.store as store
from crash_reports.delivery.flusher import Flusher
from crash_reports.delivery.upload import Uploader
from crash_reports.spool.store import Spool
from tests.support.fault_server import FaultServer, make_envelope


def counted(parses: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, counting its calls under ``name``."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        parses[name] += 1
        return function(*args, **kwargs)
    return wrapper


def test_write_list_and_upload_parse_an_envelope_once(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Write, list, flush to a real loopback server: one parse of the envelope in all, and
    the server gets it with sent_at set (before: four, at write, list, read and upload)."""
    parses: Counter[str] = Counter()
    monkeypatch.setattr(store, "parse_envelope",
                        counted(parses, "store", store.parse_envelope))
    monkeypatch.setattr(listing, "parse_envelope",
                        counted(parses, "listing", listing.parse_envelope))
    header_parser = getattr(upload, "parse_header", None)  # the upload's own parse
    if header_parser is not None:
        monkeypatch.setattr(upload, "parse_header", counted(parses, "upload", header_parser))
    # The upload module's own json (the old upload parsed the header with json.loads).
    monkeypatch.setattr(upload, "json", SimpleNamespace(
        loads=counted(parses, "upload", json.loads), dumps=json.dumps,
        JSONDecodeError=json.JSONDecodeError))
    with FaultServer() as server:
        spool = Spool(tmp_path / "spool")
        stored = spool.store(make_envelope(sent_at="2020-01-01T00:00:00.000000Z"))
        assert [entry.id for entry in spool.pending()] == [stored.id]
        result = Flusher(spool, Uploader(server.dsn(), "test")).flush()
        (received,) = server.wait_for(1)
    assert result.delivered_ids == (stored.id,)
    assert received.event_id == stored.id
    assert received.envelope_header["sent_at"] != "2020-01-01T00:00:00.000000Z"
    assert sum(parses.values()) == 1, dict(parses)
    assert parses["store"] == 1


def test_what_another_process_moves_leaves_the_daemons_caches(tmp_path: Path) -> None:
    """The daemon's spool caches what it parsed; a report another process delivers (the
    CLI's `reports flush`) or moves back from quarantine is forgotten or counted again, so
    the cache holds what the folder holds and the count stays true."""
    daemon_spool = Spool(tmp_path / "spool")
    kept = daemon_spool.store(make_envelope(kind="rss_critical"))
    gone = daemon_spool.store(make_envelope(kind="rss_critical"))
    assert daemon_spool.waiting().reports == 2
    cli_spool = Spool(tmp_path / "spool")  # another process: its own caches
    cli_spool.mark_delivered(gone.id)
    assert daemon_spool.waiting().reports == 1
    assert daemon_spool._listing.cached(gone.path.name) is None
    cli_spool.quarantine(kept.id, 400, "refused")
    assert daemon_spool.waiting().reports == 0
    assert cli_spool.requeue(kept.id)
    assert daemon_spool.waiting().reports == 1
