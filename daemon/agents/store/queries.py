"""Read the agent event store: stats by agent/model/tool, spend, replay, crash-report context."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from crash_reports.common import sqlite
from daemon.agents.budget import spend
from daemon.agents.budget.costs import gather, total_cost
from daemon.agents.decoding.records import TOKEN_TYPES
from daemon.agents.store.calls import one_source, with_call_tokens
from daemon.agents.store.choose import Row, choose
from daemon.agents.store.rows import event_rows
from daemon.agents.store.totals import BUSY_TIMEOUT_SECONDS
from daemon.agents.store.window import range_rows

StatsBy = Literal["agent", "model", "tool", "session"]
LAST_ITEMS = 10


@dataclass(slots=True)
class StatsRow:
    """Totals for one agent, model or tool over a time range."""

    key: str
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    cost_status: str = "none"
    requests: int = 0
    request_errors: int = 0
    request_duration_ms_total: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    tool_calls: int = 0
    tool_failures: int = 0
    tool_duration_ms_total: float = 0.0
    sessions: int = 0
    work: dict[str, float] = field(default_factory=dict)
    context_max_tokens: int | None = None
    context_window_tokens: int | None = None
    agent: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SessionSeen:
    """An agent session as the store knows it: where it ran and when it was active."""

    agent: str
    session_id: str
    host: str | None
    version: str | None
    pid: int | None
    first_ts: float
    last_ts: float


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One raw event as stored, for replay."""

    stream: str
    seq: int
    ts: float
    kind: str
    agent: str
    instance_id: str | None
    session_id: str | None
    pid: int | None
    data: dict[str, Any]


class StoreReader:
    """Queries over a store another thread or process writes; each call opens its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        """Whether the daemon has created the store yet (queries before that return nothing)."""
        return self.path.exists()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite.connect(self.path, busy_timeout_seconds=BUSY_TIMEOUT_SECONDS, read_only=True)
        try:
            yield db
        finally:
            db.close()

    def stats(self, since: float, until: float, by: StatsBy,
              agents: Collection[str] | None = None) -> list[StatsRow]:
        """Totals per agent, model, tool or session over [since, until] (to the event within
        the raw events' retention, see window.py; sessions active in it), one source per
        figure (choose.py); only of ``agents`` when given (not for sessions)."""
        if not self.exists():
            return []
        with self._connect() as db:
            if by == "session":
                found = db.execute(
                    "SELECT t.agent || '/' || t.session_id, t.agent, t.model, t.tool, t.measure, "
                    "t.dim, t.value, t.count FROM session_totals t JOIN session_seen s "
                    "ON s.agent = t.agent AND s.session_id = t.session_id "
                    "WHERE s.last_ts >= ? AND s.first_ts <= ?",
                    (since, until),
                ).fetchall()
            else:
                found = range_rows(db, since, until, agents)
        return summarize(found, by)

    def busiest_agents(self, since: float, until: float, limit: int) -> list[str]:
        """The ``limit`` agents with the most tokens over the hours in [since, until] (every
        source added up: a ranking, not a figure), counted in SQLite."""
        if not self.exists():
            return []
        with self._connect() as db:
            found = db.execute(
                "SELECT agent FROM hourly WHERE hour BETWEEN ? AND ? GROUP BY agent "
                "ORDER BY sum(CASE WHEN measure LIKE 'tokens%' THEN value ELSE 0 END) DESC, "
                "sum(count) DESC, agent LIMIT ?",
                (int(since // 3600), int(until // 3600), limit),
            ).fetchall()
        return [str(agent) for (agent,) in found]

    def spend_usd(self, agent: str | None, since: float, until: float) -> float:
        """Cost of one agent (``None`` or ``"*"``: all agents) over the hours in [since, until]."""
        one = None if agent in (None, "*") else [str(agent)]
        rows = self.stats(since, until, "agent", one)
        return sum(r.cost_usd or 0.0 for r in rows if agent in (None, "*", r.key))

    def session_spend(self, session_id: str) -> dict[str, float]:
        """Cost of one agent session per agent name (see ``daemon.agents.budget.spend``)."""
        if not self.exists():
            return {}
        with self._connect() as db:
            return spend.session_spend(db, session_id)

    def events(self, stream: str, after_seq: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Raw events of one stream after a sequence number, in order (replay)."""
        if not self.exists():
            return []
        with self._connect() as db:
            found = db.execute(
                "SELECT stream, seq, ts, kind, agent, instance_id, session_id, pid, data "
                "FROM events WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?",
                (stream, after_seq, limit),
            ).fetchall()
        return [
            StoredEvent(s, seq, ts, kind, agent, instance, session, pid, json.loads(data))
            for s, seq, ts, kind, agent, instance, session, pid, data in found
        ]

    def streams(self) -> dict[str, int]:
        """Every stream with its last sequence number."""
        if not self.exists():
            return {}
        with self._connect() as db:
            return dict(db.execute("SELECT stream, last_seq FROM streams").fetchall())

    def recent_session(
        self, agent: str, host: str | None, since: float, until: float, pids: tuple[int, ...]
    ) -> SessionSeen | None:
        """The session of ``agent`` with the most recent activity in [since, until], on this
        host (or sent without a host), not sent by a process outside ``pids``."""
        if not self.exists():
            return None
        marks = ", ".join("?" for _ in pids) or "NULL"
        with self._connect() as db:
            found = db.execute(
                "SELECT agent, session_id, host, version, pid, first_ts, last_ts "  # noqa: S608
                "FROM session_seen WHERE agent = ? AND last_ts >= ? AND first_ts <= ? "
                "AND (host IS NULL OR host = ?) "
                f"AND (pid IS NULL OR pid IN ({marks})) ORDER BY last_ts DESC LIMIT 1",
                (agent, since, until, host, *pids),
            ).fetchone()
        return None if found is None else SessionSeen(*found)

    def session_seen(self, agent: str, session_id: str) -> SessionSeen | None:
        """One session as the store knows it (its agent version, host, first and last use)."""
        if not self.exists():
            return None
        with self._connect() as db:
            found = db.execute(
                "SELECT agent, session_id, host, version, pid, first_ts, last_ts "
                "FROM session_seen WHERE agent = ? AND session_id = ?", (agent, session_id),
            ).fetchone()
        return None if found is None else SessionSeen(*found)

    def agent_context(
        self,
        pid: int | None,
        session_id: str | None,
        instance_id: str | None,
        now: float,
        window_seconds: float = 900.0,
    ) -> dict[str, Any] | None:
        """What the matching agent did in the last ``window_seconds``; None if it sent nothing."""
        keys = (("pid", pid), ("session_id", session_id), ("instance_id", instance_id))
        matches = [(column, value) for column, value in keys if value is not None]
        if not matches or not self.exists():
            return None
        where = " OR ".join(f"{column} = ?" for column, _ in matches)
        with self._connect() as db:
            found = db.execute(
                f"SELECT ts, kind, agent, stream, data, session_id FROM events "  # noqa: S608
                f"WHERE ts >= ? AND ts <= ? AND ({where}) ORDER BY ts",
                (now - window_seconds, now + 60.0, *(value for _, value in matches)),
            ).fetchall()
        if not found:
            return None
        context = _context(found, window_seconds, [column for column, _ in matches])
        if context["session_id"] is not None:
            seen = self.session_seen(context["agent"], context["session_id"])
            context["agent_version"] = seen.version if seen is not None else None
        return context


def summarize(found: list[Any], by: StatsBy) -> list[StatsRow]:
    """Rows (session, agent, model, tool, measure, dim, value, count) to stats rows: one
    source chosen per agent/session, model and tool, then grouped by ``by``; cost by the one
    cost rule (``daemon.agents.budget.costs``: the source that counted the most)."""
    chosen = choose(
        Row((session, agent, model, tool), measure, dim, value, count)
        for session, agent, model, tool, measure, dim, value, count in found
    )
    rows: dict[str, StatsRow] = {}
    for row in chosen:
        session, agent, model, tool = row.group
        if by == "tool":
            if row.measure != "tool_calls":
                continue
        elif by == "model" and row.measure in ("tool_calls", "sessions", "series", "events",
                                                "work"):
            continue
        stats = _row(rows, by, session, agent, model, tool)
        _add(stats, row.measure, row.dim, row.value, row.count)
    if by != "tool":
        costs: dict[str, list[Any]] = defaultdict(list)
        groups = gather(((session, agent, model), measure, value)
                        for session, agent, model, _tool, measure, _dim, value, _count in found)
        for (session, agent, model), sources in groups.items():
            costs[_row(rows, by, session, agent, model, "").key].append(sources)
        for key, found_groups in costs.items():
            rows[key].cost_usd, rows[key].cost_status = total_cost(found_groups)
    if by == "tool":
        return sorted(rows.values(), key=lambda r: (-r.tool_calls, r.key, r.agent or ""))
    return sorted(rows.values(), key=lambda r: (-(r.cost_usd or 0.0), r.key))


def _row(rows: dict[str, StatsRow], by: StatsBy, session: str, agent: str, model: str,
         tool: str) -> StatsRow:
    key = {"tool": tool, "model": model, "session": session}.get(by, agent)
    slot = f"{agent}\x1f{tool}" if by == "tool" else key  # a tool's row is per agent
    stats = rows.get(slot)
    if stats is None:
        stats = rows[slot] = StatsRow(key, agent=agent if by in ("session", "tool") else None)
    return stats


def _add(row: StatsRow, measure: str, dim: str, value: float, count: int) -> None:
    if measure == "tokens":
        row.tokens[dim] = row.tokens.get(dim, 0) + int(value)
    elif measure == "requests":
        row.requests += count
        row.request_duration_ms_total += value
        if dim == "error":
            row.request_errors += count
    elif measure == "errors":
        row.errors[dim] = row.errors.get(dim, 0) + count
    elif measure == "tool_calls":
        row.tool_calls += count
        row.tool_duration_ms_total += value
        if dim == "error":
            row.tool_failures += count
    elif measure == "sessions":
        row.sessions += count
    elif measure == "work":
        row.work[dim] = row.work.get(dim, 0.0) + value
    elif measure == "context_max":
        row.context_max_tokens = max(row.context_max_tokens or 0, int(value))
    elif measure == "context_window":
        row.context_window_tokens = max(row.context_window_tokens or 0, int(value))


def _context(found: list[Any], window_seconds: float, matched_by: list[str]) -> dict[str, Any]:
    rows: list[Row] = []
    requests_by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tools_by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    call_tokens: list[dict[str, Any]] = []
    agents: set[str] = set()
    streams: set[str] = set()
    sessions: set[str] = set()
    latest: tuple[str, str] | None = None
    for ts, kind, agent, stream, raw, session in found:
        agents.add(agent)
        streams.add(stream)
        if session:
            sessions.add(session)
            latest = (agent, session)
        data = json.loads(raw)
        rows.extend(event_rows(kind, agent, data))
        if kind == "tokens" and data.get("source") == "event" and data.get("requests") == 1:
            call_tokens.append({"ts": ts, **data})
        if kind == "request":
            requests_by_source[data.get("source") or "metric"].append({"ts": ts, **data})
        elif kind == "tool_call":
            tools_by_source[data.get("source") or "metric"].append({"ts": ts, **data})
    last_requests = with_call_tokens(one_source(requests_by_source), call_tokens)
    last_tools = one_source(tools_by_source)
    found_rows = [("", *r.group, r.measure, r.dim, r.value, r.count) for r in rows]
    summary = (summarize(found_rows, "session") or [StatsRow("")])[0]
    tokens: dict[str, int] = dict.fromkeys(TOKEN_TYPES, 0)
    for token_type, count in summary.tokens.items():
        tokens[token_type] = tokens.get(token_type, 0) + count
    if summary.cost_status == "none" and not any(tokens.values()):
        cost, status = None, "none"
    else:
        cost, status = summary.cost_usd, summary.cost_status
    return {
        "agents": sorted(agents),
        "streams": sorted(streams),
        "sessions": sorted(sessions)[:LAST_ITEMS],
        "matched_by": matched_by,
        "window_seconds": window_seconds,
        "tokens": tokens,
        "cost_usd": cost,
        "cost_status": status,
        "requests": summary.requests,
        "errors": dict(summary.errors),
        "tool_calls": {"ok": summary.tool_calls - summary.tool_failures,
                       "error": summary.tool_failures},
        "last_requests": last_requests[-LAST_ITEMS:],
        "last_tool_calls": last_tools[-LAST_ITEMS:],
        # The agent and session of the most recent activity, however the context was matched.
        "agent": latest[0] if latest else None,
        "session_id": latest[1] if latest else None,
    }
