"""APScheduler wiring only: one interval job for sampling, no overlap, missed runs coalesced.

APScheduler 3 keeps a job's next run time in wall time and finds due jobs by comparing it
with ``datetime.now()``; between passes it waits with ``threading.Event.wait``, which is
monotonic. A wall-clock step therefore moves every due time by the step: an hour back, and
the tick waits an hour; forward, and a pass lists every run it "missed". ``SteadyScheduler``
moves every pending run time by each step it sees before (and after) a pass, so the schedule
follows the monotonic clock while the times APScheduler hands out stay wall time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from daemon.runtime.clock_steps import STEP_TOLERANCE_SECONDS, StepDetector

TICK_JOB_ID = "tick"


class SteadyScheduler(BackgroundScheduler):  # type: ignore[misc]  # APScheduler is untyped
    """A BackgroundScheduler whose jobs keep their monotonic rhythm across wall-clock steps."""

    def __init__(self, *args: Any, on_step: Callable[[float], None] | None = None,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, **kwargs: Any) -> None:
        self._steps = StepDetector()
        self._on_step = on_step
        self._wall = wall
        self._monotonic = monotonic
        super().__init__(*args, **kwargs)

    def _process_jobs(self) -> float | None:
        self._follow_clock()
        wait: float | None = super()._process_jobs()
        if self._follow_clock():
            return 0.0  # the clock stepped during the pass: look again, run times moved
        return wait

    def _follow_clock(self) -> bool:
        """Move every pending run time by the wall-clock step since the last look, if any."""
        before = self._monotonic()
        wall = self._wall()
        after = self._monotonic()
        if after - before > STEP_TOLERANCE_SECONDS / 2:
            return False  # descheduled between the readings: they do not pair; next pass
        step = self._steps.observe(wall, (before + after) / 2)
        if not step:
            return False
        shift = dt.timedelta(seconds=step)
        for job in self.get_jobs():
            if job.next_run_time is not None:
                self.modify_job(job.id, next_run_time=job.next_run_time + shift)
        if self._on_step is not None:
            self._on_step(step)
        return True


def make_scheduler(
    tick: Callable[[], None],
    interval_seconds: float,
    on_error: Callable[[BaseException | None, Any], None],
    on_missed: Callable[[], None] | None = None,
    on_clock_step: Callable[[float], None] | None = None,
) -> SteadyScheduler:
    """A scheduler with the tick job; the first tick runs as soon as it starts."""
    scheduler = SteadyScheduler(
        executors={"default": {"type": "threadpool", "max_workers": 1}},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=dt.UTC,
        on_step=on_clock_step,
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
