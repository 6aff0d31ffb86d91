"""The server's rate limits kept on disk, so a restart or a `reports flush` during a 429
window does not send again before the server allows it (wall-clock times: they outlive
the process)."""

from __future__ import annotations

import json
from pathlib import Path

import structlog

from crash_reports.common.atomic import write_atomic
from crash_reports.common.files import read_regular

log = structlog.get_logger(component="delivery")

RATE_LIMITS_FILE = "rate_limits.json"


def load_rate_limits(path: Path, target: str | None, now: float) -> dict[str, float]:
    """Rate limits a server imposed on ``target`` that have not expired yet."""
    try:
        data = json.loads(read_regular(path, 1024 * 1024))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("target") != target:
        return {}  # limits of another server (the DSN changed) do not apply
    limits = data.get("limits")
    if not isinstance(limits, dict):
        return {}
    return {str(category): float(until) for category, until in limits.items()
            if isinstance(until, int | float) and until > now}


def save_rate_limits(path: Path, target: str | None, limits: dict[str, float]) -> None:
    """Keep the server's rate limits on disk (best effort: a failure is logged)."""
    try:
        write_atomic(path, json.dumps({"target": target, "limits": limits}).encode())
    except OSError as exc:
        log.warning("flush.rate_limits_not_saved", error=str(exc))
