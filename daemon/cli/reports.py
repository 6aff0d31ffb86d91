"""``telemetryd reports list|show|flush|requeue|purge``: reads and drives the spool."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

from crash_reports.common.humanize import format_bytes
from crash_reports.spool.records import SpoolEntry
from crash_reports.spool.store import Spool
from daemon.cli.output import err, out, table
from daemon.config.files.load import load_config_here
from daemon.config.schema import Config
from daemon.exit_codes import ExitCode

if TYPE_CHECKING:
    from crash_reports.delivery.flusher import FlushResult
    from crash_reports.spool.store import Spool


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``reports`` and its actions."""
    parser = subparsers.add_parser("reports", help="crash reports in the spool")
    actions = parser.add_subparsers(dest="reports_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="pending, quarantined and recently delivered "
                                 "crash reports")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--all", action="store_true",
                         help="also hourly stats summaries and the daemon's own errors")
    show = actions.add_parser("show", help="one report, decoded")
    show.add_argument("id", help="report id (event id) or a unique prefix of it")
    show.add_argument("--raw", action="store_true", help="print the envelope bytes as stored")
    actions.add_parser("flush", help="send pending reports now; exit 1 if any remain")
    requeue = actions.add_parser("requeue", help="move quarantined reports back to pending "
                                 "(e.g. after fixing a wrong DSN key)")
    requeue.add_argument("ids", nargs="*", metavar="ID",
                         help="report ids or unique prefixes (default: every quarantined one)")
    purge = actions.add_parser("purge", help="delete reports")
    group = purge.add_mutually_exclusive_group()
    group.add_argument("--quarantined", action="store_true",
                       help="delete quarantined reports (default)")
    group.add_argument("--all", action="store_true", help="delete every report, pending too")
    return parser


def run(args: argparse.Namespace) -> ExitCode:
    """Dispatch a reports action."""
    from daemon.runtime.reports.delivery import open_spool

    config = load_config_here(args.config)
    if not config.daemon.state_dir.exists():
        if getattr(args, "json", False):
            out("[]")
        else:
            out(f"no reports: state dir {config.daemon.state_dir} does not exist yet "
                "(the daemon creates it)")
        if args.reports_command in ("list", "purge", "flush"):
            return ExitCode.OK
        return ExitCode.NO_INPUT
    try:
        spool = open_spool(config)
    except OSError as exc:
        err(f"telemetryd: cannot open the spool in {config.daemon.state_dir}: {exc}")
        return ExitCode.FAILURE
    action = args.reports_command
    if action == "list":
        return list_reports(spool, args.json, args.all)
    if action == "show":
        return show_report(spool, args.id, args.raw)
    if action == "flush":
        return flush_reports(config, spool)
    if action == "requeue":
        return requeue_reports(spool, args.ids)
    if action == "purge":
        removed = spool.purge("all" if args.all else "quarantined")
        out(f"purged {removed} {'report(s)' if args.all else 'quarantined report(s)'}")
        return ExitCode.OK
    raise AssertionError(action)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def list_reports(spool: Spool, as_json: bool, everything: bool = False) -> ExitCode:
    """Print the crash reports the spool knows (``everything``: every envelope), newest last;
    what else waits for delivery is said apart, never counted as a report."""
    known = spool.list_all()
    entries = known if everything else [entry for entry in known if entry.is_crash_report]
    if as_json:
        out(json.dumps([entry.to_json() for entry in entries], indent=2))
        return ExitCode.OK
    waiting = spool.waiting()
    others = [f"stats waiting: {waiting.stats}"] if waiting.stats else []
    others += [f"other waiting: {waiting.other}"] if waiting.other else []
    where = "listed" if everything else "see --all"
    note = (f"also waiting for delivery, not crash reports ({where}): {', '.join(others)}"
            if others else "")
    if not entries:
        out(f"no reports in {spool.root}" + (f"; {note}" if note else ""))
        return ExitCode.OK
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
    if note:
        out(note)
    return ExitCode.OK


def find_entry(spool: Spool, wanted: str) -> SpoolEntry | str | None:
    """The entry with this id or unique id prefix; a string explains an ambiguous prefix."""
    exact = spool.get(wanted)
    if exact is not None:
        return exact
    matches = [entry for entry in spool.list_all() if entry.id.startswith(wanted)]
    if len(matches) > 1:
        return f"{len(matches)} reports start with {wanted!r}; give more of the id"
    return matches[0] if matches else None


def show_report(spool: Spool, wanted: str, raw: bool) -> ExitCode:
    """Print one report: its listing fields, the event, and its attachments."""
    found = find_entry(spool, wanted)
    if isinstance(found, str):
        err(f"telemetryd: {found}")
        return ExitCode.FAILURE
    if found is None:
        err(f"telemetryd: no report {wanted!r} in {spool.root} (see `telemetryd reports list`)")
        return ExitCode.NO_INPUT
    if found.state == "delivered":
        out(json.dumps(found.to_json(), indent=2))
        out("(delivered: the envelope itself is no longer kept)")
        return ExitCode.OK
    data = spool.read(found.id)
    if raw:
        sys.stdout.buffer.write(data)
        return ExitCode.OK
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
    return ExitCode.OK


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


def requeue_reports(spool: Spool, wanted: list[str]) -> ExitCode:
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
                return ExitCode.FAILURE
            ids.append(found.id)
    moved = sum(1 for report_id in ids if spool.requeue(report_id))
    out(f"requeued {moved} report(s); they go out with the next flush")
    return ExitCode.OK


def flush_reports(config: Config, spool: Spool) -> ExitCode:
    """Send pending reports now; exit 1 while anything is still pending."""
    from daemon.runtime.reports.delivery import make_flusher

    if not config.sentry.dsn:
        waiting = spool.waiting()
        out(f"no Sentry DSN configured: {waiting.reports} crash report(s) stay local in "
            f"{spool.root}" + (f" (and {waiting.stats + waiting.other} other envelope(s))"
                               if waiting.total > waiting.reports else ""))
        return ExitCode.OK if spool.pending_count() == 0 else ExitCode.FAILURE
    flusher = make_flusher(config, spool)
    result = flusher.flush(force=True, lock_timeout_seconds=config.sentry.timeout_seconds + 5)
    _count_in_stats(config, spool, result)
    out(f"flush: {result.status}: delivered {result.delivered}, quarantined "
         f"{result.quarantined}, still pending {result.still_pending}"
         + (f" (last error: {result.last_error})" if result.last_error else ""))
    done = result.still_pending == 0 and result.status != "busy"
    return ExitCode.OK if done else ExitCode.FAILURE
