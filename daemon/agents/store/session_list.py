"""Agent sessions as the views list them: one summary a session, and a session's last steps.

Read-only over the agent event store. A step is a request (model, duration, outcome) or a
tool call (tool name, duration, outcome): names and figures only, never prompt, tool input
or output.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crash_reports.common import sqlite
from daemon.agents.store.queries import StoreReader
from daemon.agents.store.totals import BUSY_TIMEOUT_SECONDS

MIN_BURN_SECONDS = 60.0
LAST_STEPS = 15
RECENT_SESSIONS = 50


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One agent session's figures."""

    agent: str
    session_id: str
    version: str | None
    models: tuple[str, ...]
    started_at: float
    last_active_at: float
    pid: int | None
    requests: int
    tokens: int
    cost_usd: float | None
    tool_calls: int
    tool_failures: int

    @property
    def key(self) -> str:
        """``agent/session`` (how ``stats --by session`` names it)."""
        return f"{self.agent}/{self.session_id}"

    @property
    def burn_usd_per_hour(self) -> float | None:
        """Cost over the session's active span (None before a minute or without a cost).

        >>> s = SessionSummary("a", "s", None, (), 0.0, 1800.0, None, 1, 1, 2.0, 0, 0)
        >>> s.burn_usd_per_hour
        4.0
        """
        span = self.last_active_at - self.started_at
        if self.cost_usd is None or span < MIN_BURN_SECONDS:
            return None
        return self.cost_usd * 3600.0 / span


@dataclass(frozen=True, slots=True)
class SessionStep:
    """One request or tool call of a session."""

    at: float
    kind: str  # "request" or "tool_call"
    name: str  # the model, or the tool
    ok: bool
    outcome: str  # "ok", or the error class / "failed"
    duration_ms: float


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite.connect(path, busy_timeout_seconds=BUSY_TIMEOUT_SECONDS, read_only=True)
    try:
        yield db
    finally:
        db.close()


def read_sessions(path: Path, until: float, limit: int = RECENT_SESSIONS) -> list[SessionSummary]:
    """The ``limit`` most recently active sessions up to ``until``, the latest first."""
    reader = StoreReader(path)
    if not reader.exists():
        return []
    with _connect(path) as db:
        seen = db.execute(
            "SELECT agent, session_id, version, pid, first_ts, last_ts FROM session_seen "
            "WHERE first_ts <= ? ORDER BY last_ts DESC LIMIT ?", (until, limit),
        ).fetchall()
        if not seen:
            return []
        since = min(float(row[5]) for row in seen)
        models: dict[tuple[str, str], list[str]] = {}
        for agent, session, model in db.execute(
                "SELECT DISTINCT t.agent, t.session_id, t.model FROM session_totals t "
                "JOIN session_seen s ON s.agent = t.agent AND s.session_id = t.session_id "
                "WHERE t.model != '' AND s.last_ts >= ? AND s.first_ts <= ? "
                "ORDER BY t.model", (since, until)):
            models.setdefault((agent, session), []).append(str(model))
    figures = {row.key: row for row in reader.stats(since, until, "session")}
    out = []
    for agent, session, version, pid, first, last in seen:
        row = figures.get(f"{agent}/{session}")
        out.append(SessionSummary(
            agent=str(agent), session_id=str(session), version=version,
            models=tuple(models.get((agent, session), ())), started_at=float(first),
            last_active_at=float(last), pid=pid,
            requests=row.requests if row else 0,
            tokens=sum(row.tokens.values()) if row else 0,
            cost_usd=row.cost_usd if row else None,
            tool_calls=row.tool_calls if row else 0,
            tool_failures=row.tool_failures if row else 0))
    return out


def read_steps(path: Path, agent: str, session_id: str,
               limit: int = LAST_STEPS) -> list[SessionStep]:
    """The session's last requests and tool calls, newest first (span copies left out)."""
    if not path.exists():
        return []
    with _connect(path) as db:
        found = db.execute(
            "SELECT ts, kind, data FROM events WHERE agent = ? AND session_id = ? "
            "AND kind IN ('request', 'tool_call') ORDER BY ts DESC LIMIT ?",
            (agent, session_id, limit * 3)).fetchall()
    steps = []
    for ts, kind, raw in found:
        data = json.loads(raw)
        if (data.get("source") or "metric") == "span":
            continue
        if kind == "request":
            error = data.get("error_class")
            steps.append(SessionStep(float(ts), "request", str(data.get("model") or "-"),
                                     error is None, "ok" if error is None else str(error),
                                     float(data.get("duration_ms") or 0.0)))
        else:
            ok = bool(data.get("success"))
            steps.append(SessionStep(float(ts), "tool_call", str(data.get("tool") or "-"), ok,
                                     "ok" if ok else "failed",
                                     float(data.get("duration_ms") or 0.0)))
        if len(steps) >= limit:
            break
    return steps
