"""The [guard] table: behaviour rules over watched trees and their agents' telemetry.

Every default is ``schema.GuardSettings``'s; every range is in ``schema.RANGES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daemon.config.schema import GuardSettings

if TYPE_CHECKING:
    from daemon.config.parse import _Table


def parse_guard(table: _Table) -> GuardSettings:
    """The [guard] table (pure); ConfigError naming the key for a bad value."""
    d = GuardSettings
    settings = GuardSettings(
        enabled=table.get_bool("enabled", d.enabled),
        block=table.get_bool("block", d.block),
        fork_storm_processes=table.get_int("fork_storm_processes", d.fork_storm_processes),
        fork_storm_window_seconds=table.get_duration("fork_storm_window",
                                                     d.fork_storm_window_seconds),
        tool_loop_calls=table.get_int("tool_loop_calls", d.tool_loop_calls),
        tool_loop_window_seconds=table.get_duration("tool_loop_window",
                                                    d.tool_loop_window_seconds),
        error_storm_errors=table.get_int("error_storm_errors", d.error_storm_errors),
        error_storm_window_seconds=table.get_duration("error_storm_window",
                                                      d.error_storm_window_seconds),
        cost_surge_usd_per_hour=table.get_number("cost_surge_usd_per_hour",
                                                 d.cost_surge_usd_per_hour),
        cost_surge_tokens_per_hour=table.get_number("cost_surge_tokens_per_hour",
                                                    d.cost_surge_tokens_per_hour),
        cost_surge_window_seconds=table.get_duration("cost_surge_window",
                                                     d.cost_surge_window_seconds),
        idle_spin_cpu_percent=table.get_number("idle_spin_cpu", d.idle_spin_cpu_percent),
        idle_spin_window_seconds=table.get_duration("idle_spin_window",
                                                    d.idle_spin_window_seconds),
        idle_spin_fallback_window_seconds=table.get_duration(
            "idle_spin_fallback_window", d.idle_spin_fallback_window_seconds),
        version_regression_factor=table.get_number("version_regression_factor",
                                                   d.version_regression_factor),
        version_regression_use_seconds=table.get_duration("version_regression_use",
                                                          d.version_regression_use_seconds),
        max_subjects=table.get_int("max_subjects", d.max_subjects),
    )
    if settings.idle_spin_fallback_window_seconds < settings.idle_spin_window_seconds:
        raise table.error("idle_spin_fallback_window", "must be at least idle_spin_window "
                          f"({settings.idle_spin_fallback_window_seconds:g}s < "
                          f"{settings.idle_spin_window_seconds:g}s)")
    table.reject_unknown()
    return settings


def describe_guard(guard: GuardSettings) -> dict[str, Any]:
    """The [guard] table as check-config shows it (key names as the file spells them)."""
    return {
        "enabled": guard.enabled,
        "block": guard.block,
        "fork_storm_processes": guard.fork_storm_processes,
        "fork_storm_window": guard.fork_storm_window_seconds,
        "tool_loop_calls": guard.tool_loop_calls,
        "tool_loop_window": guard.tool_loop_window_seconds,
        "error_storm_errors": guard.error_storm_errors,
        "error_storm_window": guard.error_storm_window_seconds,
        "cost_surge_usd_per_hour": guard.cost_surge_usd_per_hour,
        "cost_surge_tokens_per_hour": guard.cost_surge_tokens_per_hour,
        "cost_surge_window": guard.cost_surge_window_seconds,
        "idle_spin_cpu": guard.idle_spin_cpu_percent,
        "idle_spin_window": guard.idle_spin_window_seconds,
        "idle_spin_fallback_window": guard.idle_spin_fallback_window_seconds,
        "version_regression_factor": guard.version_regression_factor,
        "version_regression_use": guard.version_regression_use_seconds,
        "max_subjects": guard.max_subjects,
    }
