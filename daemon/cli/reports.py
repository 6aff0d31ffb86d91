"""``telemetryd reports list|show|flush|purge``: reads and drives the spool, never samples."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from crash_reports.delivery.flusher import FlushResult
from crash_reports.event.humanize import format_bytes
from crash_reports.spool.records import SpoolEntry
from crash_reports.spool.store import Spool
from daemon.cli.output import err, out, table
from daemon.config.schema import Config
from daemon.runtime.delivery import make_flusher, open_spool

EXIT_OK, EXIT_FAILURE, EXIT_NOT_FOUND = 0, 1, 66



def run(args: argparse.Namespace, config: Config) -> int:
    """Dispatch a reports subcommand."""
    if not config.daemon.state_dir.exists():
        if getattr(args, "json", False):
            out("[]")
        else:
            out(f"no reports: state dir {config.daemon.state_dir} does not exist yet "
                "(the daemon creates it)")
        return EXIT_OK if args.reports_command in ("list", "purge", "flush") else EXIT_NOT_FOUND
    try:
        spool = open_spool(config)
    except OSError as exc:
        err(f"telemetryd: cannot open the spool in {config.daemon.state_dir}: {exc}")
        return EXIT_FAILURE
    action = args.reports_command
    if action == "list":
        return list_reports(spool, args.json)
    if action == "show":
        return show_report(spool, args.id, args.raw)
    if action == "flush":
        return flush_reports(config, spool)
    if action == "requeue":
        return requeue_reports(spool, args.ids)
    if action == "purge":
        removed = spool.purge("all" if args.all else "quarantined")
        out(f"purged {removed} {'report(s)' if args.all else 'quarantined report(s)'}")
        return EXIT_OK
    raise AssertionError(action)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def list_reports(spool: Spool, as_json: bool) -> int:
    """Print every report the spool knows, newest last."""
    entries = spool.list_all()
    if as_json:
        out(json.dumps([entry.to_json() for entry in entries], indent=2))
        return EXIT_OK
    if not entries:
        out(f"no reports in {spool.root}")
        return EXIT_OK
    rows = [("ID", "TIME (UTC)", "STATE", "WATCH", "KIND", "ATTEMPTS", "TITLE / LAST ERROR")]
    for entry in entries:
        detail = entry.title
        if entry.state == "quarantined":
            reason = entry.reason or ""
            prefix = "" if reason.startswith("HTTP") else f"HTTP {entry.http_status}: "
            detail += f"  [{prefix}{reason}]"
        elif entry.state == "pending" and entry.last_error:
            detail += f"  [last error: {entry.last_error}]"
        rows.append((entry.id[:12], _when(entry.created_at), entry.state, entry.watch or "-",
                     entry.kind or "-", str(entry.attempts), detail))
    table(rows, last_column_free=True)
    return EXIT_OK


def find_entry(spool: Spool, wanted: str) -> SpoolEntry | str | None:
    """The entry with this id or unique id prefix; a string explains an ambiguous prefix."""
    exact = spool.get(wanted)
    if exact is not None:
        return exact
    matches = [entry for entry in spool.list_all() if entry.id.startswith(wanted)]
    if len(matches) > 1:
        return f"{len(matches)} reports start with {wanted!r}; give more of the id"
    return matches[0] if matches else None


def show_report(spool: Spool, wanted: str, raw: bool) -> int:
    """Print one report: its listing fields, the event, and its attachments."""
    found = find_entry(spool, wanted)
    if isinstance(found, str):
        err(f"telemetryd: {found}")
        return EXIT_FAILURE
    if found is None:
        err(f"telemetryd: no report {wanted!r} in {spool.root} (see `telemetryd reports list`)")
        return EXIT_NOT_FOUND
    if found.state == "delivered":
        out(json.dumps(found.to_json(), indent=2))
        out("(delivered: the envelope itself is no longer kept)")
        return EXIT_OK
    data = spool.read(found.id)
    if raw:
        sys.stdout.buffer.write(data)
        return EXIT_OK
    out(json.dumps(found.to_json(), indent=2))
    for header, payload in _items(data):
        kind = header.get("type")
        if kind == "event":
            event = json.loads(payload)
            out(f"\n== event {event.get('event_id')} ==")
            out(json.dumps(event, indent=2, sort_keys=True))
        else:
            out(f"\n== {kind} {header.get('filename', '')} ({format_bytes(len(payload))}) ==")
            if header.get("content_type") == "application/json":
                try:
                    out(json.dumps(json.loads(payload), indent=2))
                except ValueError:
                    out(payload.decode("utf-8", "replace"))
    return EXIT_OK


def _items(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    from sentry_sdk.envelope import Envelope

    envelope = Envelope.deserialize(data)
    result = []
    for item in envelope.items:
        payload = item.payload.get_bytes() if item.payload else b""
        result.append((dict(item.headers), payload))
    return result


def _count_in_stats(config: Config, spool: Spool, result: FlushResult) -> None:
    """Deliveries made from the command line count in the persisted stats too."""
    from daemon.runtime.paths import StatePaths
    from daemon.runtime.stats_recorder import StatsRecorder

    if not (result.delivered_ids or result.quarantined_ids):
        return
    recorder = StatsRecorder(StatePaths(config.daemon.state_dir).stats_db)
    try:
        recorder.flush_result(spool, result)
    finally:
        recorder.store.close()


def requeue_reports(spool: Spool, wanted: list[str]) -> int:
    """Move quarantined reports (all, or the given ids) back to pending."""
    if not wanted:
        ids = [entry.id for entry in spool.quarantined()]
    else:
        ids = []
        for item in wanted:
            found = find_entry(spool, item)
            if not isinstance(found, SpoolEntry) or found.state != "quarantined":
                err(f"telemetryd: {item!r} is not a quarantined report "
                     "(see `telemetryd reports list`)")
                return EXIT_FAILURE
            ids.append(found.id)
    moved = sum(1 for report_id in ids if spool.requeue(report_id))
    out(f"requeued {moved} report(s); they go out with the next flush")
    return EXIT_OK


def flush_reports(config: Config, spool: Spool) -> int:
    """Send pending reports now; exit 1 while anything is still pending."""
    if not config.sentry.dsn:
        pending = spool.pending_count()
        out(f"no Sentry DSN configured: {pending} report(s) stay local in {spool.root}")
        return EXIT_OK if pending == 0 else EXIT_FAILURE
    flusher = make_flusher(config, spool)
    result = flusher.flush(force=True, lock_timeout_seconds=config.sentry.timeout_seconds + 5)
    _count_in_stats(config, spool, result)
    out(f"flush: {result.status}: delivered {result.delivered}, quarantined "
         f"{result.quarantined}, still pending {result.still_pending}"
         + (f" (last error: {result.last_error})" if result.last_error else ""))
    return EXIT_OK if result.still_pending == 0 and result.status != "busy" else EXIT_FAILURE
