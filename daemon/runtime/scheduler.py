"""APScheduler wiring only: one interval job for sampling, no overlap, missed runs coalesced."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

TICK_JOB_ID = "tick"


def make_scheduler(
    tick: Callable[[], None],
    interval_seconds: float,
    on_error: Callable[[BaseException | None, Any], None],
    on_missed: Callable[[], None] | None = None,
) -> BackgroundScheduler:
    """A scheduler with the tick job; the first tick runs as soon as it starts."""
    scheduler = BackgroundScheduler(
        executors={"default": {"type": "threadpool", "max_workers": 1}},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=dt.UTC,
    )
    scheduler.add_job(
        tick,
        "interval",
        seconds=interval_seconds,
        id=TICK_JOB_ID,
        next_run_time=dt.datetime.now(dt.UTC),
        misfire_grace_time=max(1, int(interval_seconds * 2)),
    )

    def listener(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            on_error(event.exception, event.traceback)
        elif on_missed is not None:
            on_missed()

    scheduler.add_listener(listener, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler


def reschedule(scheduler: BackgroundScheduler, interval_seconds: float) -> None:
    """Change the tick interval of a running scheduler."""
    scheduler.reschedule_job(TICK_JOB_ID, trigger="interval", seconds=interval_seconds)
