"""The daemon's side of agent telemetry: settings from config, budgets, report context, status."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import sentry_sdk
import structlog

from crash_reports.common import sqlite
from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import read_regular
from crash_reports.common.reserve import DiskReserve
from daemon.agents.budget import budgets, periods
from daemon.agents.decoding.counters import OtlpCounter
from daemon.agents.decoding.identity import agent_for_watch
from daemon.agents.linking.matching import process_context
from daemon.agents.settings import budgets_from
from daemon.agents.store.today import AGENTS_REFRESH_SECONDS, AgentToday, read_agents_today
from daemon.agents.trust.policy import WatchedTrees
from daemon.config.schema import Config, OtlpSettings
from daemon.runtime.agent_telemetry import AgentTelemetry
from daemon.status.snapshot import BudgetUse, OtlpStatus
from daemon.watch.monitor import TrackedProcess
from daemon.watch.proc.sampler import TickSample

log = structlog.get_logger(component="agents.link")

BUDGET_CHECK_SECONDS = 60.0


class AgentLink:
    """Runs the OTLP receiver and answers the daemon's questions about agents."""

    def __init__(self, config: Config, db_path: Path, budget_state_path: Path,
                 reserve: DiskReserve | None = None) -> None:
        self.otlp = config.otlp
        self.budgets = budgets_from(config.budgets)
        self.watched_agents = frozenset(agent_for_watch(w.name) for w in config.watches)
        self.telemetry = open_telemetry(self.otlp, db_path, reserve)
        self.budget_state_path = budget_state_path
        self.budget_states = _load_budget_states(budget_state_path)
        self._next_budget_check = float("-inf")  # monotonic
        self._spent_usd: dict[str, float] = {}
        self._today: tuple[float, list[AgentToday]] = (float("-inf"), [])
        self.error: str | None = None

    def set_budgets(self, config: Config) -> None:
        """Use the [[budget]] tables of a reloaded config (listeners stay as they are)."""
        self.budgets = budgets_from(config.budgets)
        self.watched_agents = frozenset(agent_for_watch(w.name) for w in config.watches)
        self._next_budget_check = float("-inf")

    def start(self) -> None:
        """Start the writer and the receiver; a port in use is logged, not fatal."""
        try:
            self.telemetry.start()
        except OSError as exc:
            listen = self.otlp.listen
            self.error = f"cannot listen on {listen.host}:{listen.port}: {exc.strerror or exc}"
            log.error("otlp.listen_failed", error=self.error)
            return

    def stop(self) -> None:
        """Stop receiving and write what is queued."""
        self.telemetry.stop()

    def note_watched(self, sample: TickSample) -> None:
        """Tell the receiver which process trees the tick watched ([otlp] trust)."""
        self.telemetry.admission.set_watched(watched_trees(sample))

    def context_for(self, tracked: TrackedProcess, now: float) -> dict[str, Any] | None:
        """What the agent behind a watched process was doing, and how it was matched
        (``pid`` or ``agent+time``: see matching.py)."""
        try:
            return process_context(
                self.telemetry.reader, tracked.watch, tracked.pid, tracked.last.member_pids,
                tracked.last.create_time or tracked.first_seen, now)
        except Exception as exc:  # a report goes out without agent context rather than not at all
            log.warning("otlp.context_failed", pid=tracked.pid, error=repr(exc))
        return None

    def check_budgets(self, client: sentry_sdk.Client | None, now: float, clock: float) -> None:
        """Log each budget threshold crossed once per period; spool an event at 100 %.

        ``now`` (wall) places the periods; ``clock`` (monotonic) paces the checks to one
        per BUDGET_CHECK_SECONDS whatever the wall clock does.
        """
        if not self.budgets or clock < self._next_budget_check:
            return
        self._next_budget_check = clock + BUDGET_CHECK_SECONDS
        changed = False
        for budget in self.budgets:
            key = f"{budget.agent}|{budget.period}"
            since = periods.period_start(budget.period, now)
            spent = self.telemetry.reader.spend_usd(budget.agent, since, now)
            self._spent_usd[key] = spent
            state, crossings = budgets.check(budget, spent, self.budget_states.get(key), now)
            if state != self.budget_states.get(key):
                self.budget_states[key] = state
                changed = True
            for crossing in crossings:
                log.warning("budget.crossed", agent=crossing.agent, period=crossing.period,
                            percent=crossing.threshold_percent,
                            spent_usd=round(crossing.spent_usd, 4), limit_usd=crossing.limit_usd)
                if crossing.threshold_percent >= 100 and client is not None:
                    event = budgets.sentry_event(crossing, now)
                    client.capture_event(event, scope=sentry_sdk.Scope(client=client))  # type: ignore[arg-type]
        if changed:
            _save_budget_states(self.budget_state_path, self.budget_states)

    def budget_use(self) -> tuple[BudgetUse, ...]:
        """Each budget with what was spent at the last check (for status, /metrics, `top`)."""
        return tuple(BudgetUse(b.agent, b.period, b.limit_usd,
                               self._spent_usd.get(f"{b.agent}|{b.period}"))
                     for b in self.budgets)

    def today(self, now: float) -> list[AgentToday]:
        """Per agent figures for today, refreshed at most every AGENTS_REFRESH_SECONDS."""
        at, cached = self._today
        if now - at < AGENTS_REFRESH_SECONDS:
            return cached
        try:
            fresh = read_agents_today(self.telemetry.reader, self.budgets,
                                      self._spent_usd, now, keep=self.watched_agents)
        except sqlite3.Error as exc:  # the views go without agents rather than stop the tick
            log.warning("agents.today_failed", error=str(exc))
            fresh = cached
        self._today = (now, fresh)
        return fresh

    def status(self) -> OtlpStatus:
        """Receiver state and counters for ``status``."""
        if self.error:
            return OtlpStatus(up=False, error=self.error)
        if not self.otlp.listen.enabled:
            return OtlpStatus(up=False, note="disabled in [otlp]")
        if not self.telemetry.receiver.running:
            return OtlpStatus(up=False, note="not started")
        stats = self.telemetry.stats()
        points = stats.by_labels(OtlpCounter.POINTS)
        dropped = (stats.total(OtlpCounter.REQUESTS_REFUSED)
                   + stats.total(OtlpCounter.POINTS_DROPPED)
                   + stats.total(OtlpCounter.CONNECTIONS_DROPPED)
                   + sum(n for (_, outcome), n in points.items() if outcome != "accepted"))
        evicted = {kind: n for (kind,), n in stats.by_labels(OtlpCounter.EVICTED).items() if n}
        return OtlpStatus(
            up=True, listen=f"{self.otlp.listen.host}:{self.telemetry.receiver.port}",
            points_accepted=sum(n for (_, outcome), n in points.items() if outcome == "accepted"),
            dropped_or_refused=dropped, evicted=evicted or None)


def watched_trees(sample: TickSample) -> WatchedTrees:
    """Every watched root and every orphan still counted under its agent, with its watch,
    and every member pid (pure).

    >>> from daemon.watch.proc.sampler import TreeSample
    >>> tree = TreeSample("bot", 7, (7, 70), "bot", 0.0, 1, 0.0, 1, 0.0, 2, member_pids=(9,))
    >>> trees = watched_trees(TickSample(0.0, 0.0, {"bot": [tree]}, 1))
    >>> trees.roots, trees.members
    ({(7, 70): 'bot'}, (7, 9))
    """
    roots: dict[tuple[int, int], str] = {}
    members: list[int] = []
    for trees in sample.by_watch.values():
        for tree in trees:
            roots[tree.key] = tree.watch
            members += (tree.pid, *tree.member_pids)
    for orphans in sample.orphans.values():
        for orphan in orphans:
            roots.setdefault(orphan.key, orphan.watch)
            members.append(orphan.pid)
    return WatchedTrees(roots, tuple(members))


def open_telemetry(settings: OtlpSettings, db_path: Path,
                   reserve: DiskReserve | None = None) -> AgentTelemetry:
    """Open the event store; a corrupt one is moved aside (kept, never deleted) for a fresh one."""
    try:
        return AgentTelemetry(settings, db_path, reserve)
    except (sqlite3.DatabaseError, sqlite.CorruptDatabaseError) as exc:
        if sqlite.is_busy(exc):
            raise  # held by another process: its file, not a damaged one
        sqlite.move_aside_logged(db_path, exc, event="agents.store_corrupt")
        return AgentTelemetry(settings, db_path, reserve)


def _load_budget_states(path: Path) -> dict[str, budgets.BudgetState]:
    try:
        raw = json.loads(read_regular(path, 4 * 1024 * 1024))
        return {key: budgets.BudgetState(value["period_key"], frozenset(value["fired"]))
                for key, value in raw.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # Losing it only means this period's budget warnings may be logged once more.
        log.warning("budget.state_unreadable", path=str(path), error=repr(exc))
        return {}


def _save_budget_states(path: Path, states: dict[str, budgets.BudgetState]) -> None:
    data = {
        key: {"period_key": state.period_key, "fired": sorted(state.fired)}
        for key, state in states.items()
    }
    try:
        write_atomic(path, json.dumps(data).encode())
    except OSError as exc:
        log.error("budget.state_write_failed", error=str(exc))
