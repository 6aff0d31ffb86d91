"""Read the agent event store: stats by agent/model/tool, spend, replay, crash-report context."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from crash_reports.storage import sqlite
from daemon.agents import spend
from daemon.agents.costs import CostGroup, combine
from daemon.agents.records import TOKEN_TYPES
from daemon.agents.totals import BUSY_TIMEOUT_SECONDS

StatsBy = Literal["agent", "model", "tool"]
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

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return asdict(self)


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

    def stats(self, since: float, until: float, by: StatsBy) -> list[StatsRow]:
        """Totals per agent, model or tool from the hourly buckets that overlap [since, until]."""
        if not self.exists():
            return []
        hours = (int(since // 3600), int(until // 3600))
        rows: dict[str, StatsRow] = {}
        cost_groups: dict[str, dict[tuple[int, str, str], list[float | None]]] = defaultdict(dict)
        with self._connect() as db:
            found = db.execute(
                "SELECT hour, agent, model, tool, measure, dim, value, count FROM hourly "
                "WHERE hour BETWEEN ? AND ?",
                hours,
            ).fetchall()
        for hour, agent, model, tool, measure, dim, value, count in found:
            if by == "tool":
                if measure != "tool_calls":
                    continue
                key = tool
            elif by == "model":
                if measure in ("tool_calls", "sessions", "series", "events"):
                    continue
                key = model
            else:
                key = agent
            row = rows.setdefault(key, StatsRow(key))
            _add(row, measure, dim, value, count)
            if measure in ("cost_reported", "cost_computed", "tokens_unpriced"):
                slot = cost_groups[key].setdefault((hour, agent, model), [None, 0.0, 0.0])
                index = {"cost_reported": 0, "cost_computed": 1, "tokens_unpriced": 2}[measure]
                slot[index] = (slot[index] or 0.0) + value
        for key, groups in cost_groups.items():
            rows[key].cost_usd, rows[key].cost_status = combine(
                CostGroup(reported, computed or 0.0, unpriced or 0.0)
                for reported, computed, unpriced in groups.values()
            )
        return sorted(rows.values(), key=lambda r: (-(r.cost_usd or 0.0), r.key))

    def spend_usd(self, agent: str | None, since: float, until: float) -> float:
        """Cost of one agent (``None`` or ``"*"``: all agents) over the hours in [since, until]."""
        if not self.exists():
            return 0.0
        with self._connect() as db:
            return spend.period_spend(db, agent, since, until)

    def session_spend(self, session_id: str) -> dict[str, float]:
        """Cost of one agent session per agent name (see ``daemon.agents.spend``)."""
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
                f"SELECT ts, kind, agent, stream, data FROM events "  # noqa: S608 - fixed columns
                f"WHERE ts >= ? AND ts <= ? AND ({where}) ORDER BY ts",
                (now - window_seconds, now + 60.0, *(value for _, value in matches)),
            ).fetchall()
        if not found:
            return None
        return _context(found, window_seconds, [column for column, _ in matches])


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


def _context(found: list[Any], window_seconds: float, matched_by: list[str]) -> dict[str, Any]:
    tokens = dict.fromkeys(TOKEN_TYPES, 0)
    reported: float | None = None
    computed, unpriced = 0.0, 0.0
    requests = 0
    errors: dict[str, int] = defaultdict(int)
    tools = {"ok": 0, "error": 0}
    last_requests: list[dict[str, Any]] = []
    last_tools: list[dict[str, Any]] = []
    agents: set[str] = set()
    streams: set[str] = set()
    for ts, kind, agent, stream, raw in found:
        agents.add(agent)
        streams.add(stream)
        data = json.loads(raw)
        if kind == "tokens":
            tokens[data["token_type"]] += data["tokens"]
            if data["cost_status"] == "computed":
                computed += data["cost_usd"]
            elif data["cost_status"] == "unknown":
                unpriced += data["tokens"]
        elif kind == "cost":
            reported = (reported or 0.0) + data["usd"]
        elif kind == "request":
            requests += data["count"]
            if data["error_class"] is not None:
                errors[data["error_class"]] += data["count"]
            last_requests.append({"ts": ts, **data})
        elif kind == "tool_call":
            tools["ok" if data["success"] else "error"] += data["count"]
            last_tools.append({"ts": ts, **data})
    if reported is None and not any(tokens.values()):
        cost, status = None, "none"
    else:
        cost, status = combine([CostGroup(reported, computed, unpriced)])
    return {
        "agents": sorted(agents),
        "streams": sorted(streams),
        "matched_by": matched_by,
        "window_seconds": window_seconds,
        "tokens": tokens,
        "cost_usd": cost,
        "cost_status": status,
        "requests": requests,
        "errors": dict(errors),
        "tool_calls": tools,
        "last_requests": last_requests[-LAST_ITEMS:],
        "last_tool_calls": last_tools[-LAST_ITEMS:],
    }
