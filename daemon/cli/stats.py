"""``telemetryd stats``: the persisted per-watch stats and the agents' telemetry, read-only."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from crash_reports.common.humanize import format_bytes, format_duration
from daemon.cli.output import err, out, table
from daemon.config.files.load import load_config_here
from daemon.config.quantities import parse_duration
from daemon.exit_codes import ExitCode
from daemon.runtime.paths import StatePaths


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Declare ``stats [--json] [--since D] [--by agent|model|tool]``."""
    parser = subparsers.add_parser("stats", help="persisted stats and agent telemetry")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--since", default="24h", help="how far back (e.g. 90m, 24h, 7d)")
    parser.add_argument("--by", choices=("agent", "model", "tool", "session"), default="agent",
                        help="how to group agent telemetry")
    return parser


def run(args: argparse.Namespace) -> ExitCode:
    """Print stats since ``--since``; watches and the daemon first, then agent telemetry."""
    from daemon.stats.store import StatsStore, StatsUnavailableError

    config = load_config_here(args.config)
    try:
        since_seconds = parse_duration(args.since)
        if since_seconds <= 0:
            raise ValueError(f"expected a positive duration like 90m or 24h, got {args.since!r}")
    except ValueError as exc:
        err(f"telemetryd: --since: {exc}")
        return ExitCode.USAGE
    now = time.time()
    paths = StatePaths(config.daemon.state_dir)
    result: dict[str, Any] = {"since_seconds": since_seconds}
    watch_error = None
    try:
        store = StatsStore.open(paths.stats_db, read_only=True)
        try:
            result["watchdog"] = store.summary(now, since_seconds).as_dict()
        finally:
            store.close()
    except StatsUnavailableError as exc:
        watch_error = str(exc)
        result["watchdog"] = {"error": watch_error}
    agents = agent_summary(paths, now, since_seconds, args.by)
    result["agents"] = agents
    if args.json:
        out(json.dumps(result, indent=2, default=str))
        return ExitCode.OK
    out(f"telemetryd stats for the last {format_duration(since_seconds)} "
         f"(state dir {paths.root})")
    if watch_error:
        out(f"  watch stats: none ({watch_error})")
    else:
        _print_watchdog(result["watchdog"])
    _print_agents(agents, args.by)
    return ExitCode.OK


def _print_watchdog(summary: dict[str, Any]) -> None:
    daemon = summary.get("daemon") or {}
    out("")
    out(f"daemon: {daemon.get('ticks') or 0} ticks, p50 "
         f"{_ms(daemon.get('tick_p50_seconds'))}, p99 {_ms(daemon.get('tick_p99_seconds'))}, "
         f"own RSS max {_bytes(daemon.get('own_rss_max_bytes'))}, own CPU mean "
         f"{_pct(daemon.get('own_cpu_mean_percent'))}, starts {daemon.get('starts') or 0} "
         f"(unclean {daemon.get('unclean_starts') or 0})")
    rows = [("WATCH", "SAMPLES", "RSS MAX", "RSS MEAN", "CPU MAX", "CPU MEAN", "WARN", "CRIT",
             "REPORTS", "DELIVERED", "QUARANTINED", "DROPPED", "SEEN", "EXITED")]
    for watch, figures in (summary.get("watches") or {}).items():
        rows.append((
            watch or "(daemon)", str(figures.get("samples") or 0),
            _bytes(figures.get("rss_max_bytes")), _bytes(figures.get("rss_mean_bytes")),
            _pct(figures.get("cpu_max_percent")), _pct(figures.get("cpu_mean_percent")),
            str(figures.get("warnings") or 0), str(figures.get("criticals") or 0),
            str(figures.get("reports_written") or 0), str(figures.get("reports_delivered") or 0),
            str(figures.get("reports_quarantined") or 0), str(figures.get("reports_dropped") or 0),
            str(figures.get("processes_seen") or 0), str(figures.get("processes_exited") or 0),
        ))
    table(rows)


def agent_summary(paths: StatePaths, now: float, since_seconds: float, by: str) -> dict[str, Any]:
    """Agent telemetry grouped by agent, model or tool (empty when nothing was received)."""
    import sqlite3

    from daemon.agents.store.queries import StoreReader

    reader = StoreReader(paths.events_db)
    try:
        rows = reader.stats(now - since_seconds, now, by)  # type: ignore[arg-type]
    except sqlite3.DatabaseError as exc:
        return {"note": f"agent event store {paths.events_db} is unreadable ({exc}); the "
                        "daemon moves a corrupt store aside at its next start", "rows": []}
    if not rows:
        return {"note": "no agent telemetry in this period (point OTLP exporters at "
                        "[otlp] listen)", "rows": []}
    return {"rows": [row.as_dict() for row in rows]}


def _print_agents(agents: dict[str, Any], by: str) -> None:
    out("")
    if not agents.get("rows"):
        out(f"agents: {agents.get('note') or 'none'}")
        return
    if by == "tool":
        _print_tools(agents["rows"])
        return
    header = (by.upper(), "INPUT", "OUTPUT", "REASON", "CACHE R", "CACHE W", "COST USD",
              "REQUESTS", "ERRORS", "TOOL CALLS", "TOOL FAILS", "CONTEXT MAX", "WORK")
    rows = [header]
    for row in agents["rows"]:
        cost = row.get("cost_usd")
        cost_text = "unknown" if cost is None else f"{cost:.4f}"
        if row.get("cost_status") in ("partial", "mixed") and cost is not None:
            cost_text += "+?"
        tokens = row.get("tokens") or {}
        errors = row.get("errors") or {}
        error_text = str(sum(errors.values()))
        if errors:
            error_text += " (" + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) + ")"
        context = row.get("context_max_tokens")
        window = row.get("context_window_tokens")
        context_text = "-" if not context else str(context)
        if context and window:
            context_text += f" ({100.0 * context / window:.0f}% of {window})"
        work = ", ".join(f"{k} {v:g}" for k, v in sorted((row.get("work") or {}).items()))
        rows.append((
            str(row.get("key")), str(tokens.get("input", 0)), str(tokens.get("output", 0)),
            str(tokens.get("reasoning", 0)), str(tokens.get("cache_read", 0)),
            str(tokens.get("cache_creation", 0)), cost_text, str(row.get("requests", 0)),
            error_text, str(row.get("tool_calls", 0)), str(row.get("tool_failures", 0)),
            context_text, work or "-",
        ))
    table(rows)


def _print_tools(found: list[dict[str, Any]]) -> None:
    """Tools per agent: calls, failures and time. No cost column: an agent's spend is per
    request, and no telemetry we receive says which tool call a request's tokens served."""
    rows = [("TOOL", "AGENT", "CALLS", "FAILED", "TOTAL TIME", "MEAN TIME")]
    for row in found:
        calls = int(row.get("tool_calls") or 0)
        total = float(row.get("tool_duration_ms_total") or 0.0)
        rows.append((str(row.get("key")), str(row.get("agent") or "-"), str(calls),
                     str(row.get("tool_failures") or 0), f"{total:.0f} ms",
                     f"{total / calls:.0f} ms" if calls else "-"))
    table(rows)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 1000:.1f} ms"


def _bytes(value: Any) -> str:
    return "-" if value is None else format_bytes(float(value))


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}%"
