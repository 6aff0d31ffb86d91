"""The [guard] table's keys, declared as ``schema.py`` declares the others (see its top)."""


from __future__ import annotations

from dataclasses import dataclass

from daemon.config.keys import DAY, count, duration, flag, number

_COUNT = (1, 1_000_000)


@dataclass(frozen=True, kw_only=True)
class GuardSettings:
    """The [guard] table: rules over a watched tree and its agent's telemetry that raise a
    report of their own kind (daemon/guard/). Rates and windows in seconds."""

    enabled: bool = flag(True, doc="Run the guard's rules.")
    block: bool = flag(False, doc="`budget check --hook` exits 2 in an active tool_loop or "
                       "cost_surge.")
    fork_storm_processes: int = count(200, range=(2, 1_000_000),
                                      doc="New processes in one tree that make a fork storm.")
    fork_storm_window_seconds: float = duration(60.0, range=(0.1, DAY),
                                                toml="fork_storm_window",
                                                doc="... within this long.")
    tool_loop_calls: int = count(10, range=(2, 1_000_000),
                                 doc="One session making the same tool call this "
                                 "often in a row loops.")
    tool_loop_window_seconds: float = duration(600.0, range=(0.1, 7 * DAY),
                                               toml="tool_loop_window",
                                               doc="... within this long.")
    error_storm_errors: int = count(20, range=(1, 1_000_000),
                                    doc="Failed model requests of one agent that "
                                    "make an error storm.")
    error_storm_window_seconds: float = duration(300.0, range=(0.1, DAY),
                                                 toml="error_storm_window",
                                                 doc="... within this long.")
    cost_surge_usd_per_hour: float = number(30.0, range=(0.000001, 1e9),
                                            doc="A session spending faster than this surges.")
    cost_surge_tokens_per_hour: float = number(5_000_000.0, range=(1, 1e15),
                                               doc="The same in tokens, for sessions with no "
                                               "cost figure.")
    cost_surge_window_seconds: float = duration(120.0, range=(1.0, DAY),
                                                toml="cost_surge_window",
                                                doc="The window the rate is measured over.")
    idle_spin_cpu_percent: float = number(50.0, range=(0.1, 100_000.0), toml="idle_spin_cpu",
                                          doc="CPU percent of a tree whose agent sends "
                                          "nothing that makes an idle spin.")
    idle_spin_window_seconds: float = duration(300.0, range=(0.1, 7 * DAY),
                                               toml="idle_spin_window",
                                               doc="... for this long.")
    idle_spin_fallback_window_seconds: float = duration(
        1800.0, range=(0.1, 30 * DAY), toml="idle_spin_fallback_window",
        doc="... for this long on CPU alone, with telemetry off (at least idle_spin_window).")
    version_regression_factor: float = number(3.0, range=(1.01, 1000.0),
                                              doc="An agent version whose idle CPU or RSS "
                                              "growth is this many times the previous one's "
                                              "regressed.")
    version_regression_use_seconds: float = duration(3600.0, range=(1.0, 365 * DAY),
                                                     toml="version_regression_use",
                                                     doc="Use of a version before it is compared.")
    max_subjects: int = count(1_000, range=_COUNT, doc="Trees, sessions or agents each rule "
                              "remembers (least recently seen dropped).")
